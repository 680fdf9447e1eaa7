"""The device owners that IPAM treats differently from ordinary ports.

Values are Neutron's (``neutron_lib.constants``); clients filter on them, so they are contract.
"""

from __future__ import annotations

DHCP = "network:dhcp"
DISTRIBUTED = "network:distributed"
ROUTER_INTERFACE = "network:router_interface"
ROUTER_INTERFACE_DISTRIBUTED = "network:router_interface_distributed"
HA_REPLICATED_INTERFACE = "network:ha_router_replicated_interface"
ROUTER_CENTRALIZED_SNAT = "network:router_centralized_snat"
ROUTER_GATEWAY = "network:router_gateway"

# Router-side interfaces: they may take any address on an auto-address (SLAAC) subnet.
ROUTER_INTERFACE_OWNERS = (ROUTER_INTERFACE, HA_REPLICATED_INTERFACE, ROUTER_INTERFACE_DISTRIBUTED)
# ... plus the DVR SNAT port: these never get an implicit EUI-64 address and keep only what they ask.
ROUTER_INTERFACE_OWNERS_SNAT = ROUTER_INTERFACE_OWNERS + (ROUTER_CENTRALIZED_SNAT,)
# Ports allowed to hold an IPv6 subnet's network (subnet-router anycast) address.
ROUTER_PORT_OWNERS = ROUTER_INTERFACE_OWNERS_SNAT + (ROUTER_GATEWAY,)
# Ports that take the lowest free address instead of a random one (stable DHCP server addresses).
LOWEST_ADDRESS_OWNERS = (DHCP, DISTRIBUTED)
# Prefixes a subnet ``service_types`` entry must start with. Neutron-lib adds the compute prefix to
# its list with ``+=`` on a string, i.e. each of its characters, so any type starting with one of
# "compute:"'s letters is accepted too; neutron-tempest-plugin relies on it (``test:type_1``).
SERVICE_TYPE_PREFIXES = ("network:", "neutron:", "compute:", *"compute:")
