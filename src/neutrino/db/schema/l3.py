"""Tables of the L3 service plugin: routers, their ports, routes and conntrack helpers, floating IPs,
port forwardings.

Uniqueness that clients rely on is a constraint here, not only a check in code: one router per
attached port, one floating IP per (external network, fixed port, fixed address), one port
forwarding per (floating IP, protocol, external range) and per internal socket range.
The core code (``services/networks.py``, ``services/ports.py``) looks ``routers`` and
``floatingips`` up by name on the shared metadata, so those names and the columns ``id``,
``floating_network_id`` and ``fixed_port_id`` are contract.
"""

from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)

# routers.flavor_id names flavors: that table must be on the metadata whenever routers is
# (``metadata.create_all`` resolves every foreign key it sees).
from neutrino.db.schema import advanced  # noqa: F401
from neutrino.db.schema.base import bool_column, id_column, metadata, project_column, standard_columns

routers = Table(
    "routers", metadata,
    id_column(), project_column(), *standard_columns(),
    bool_column("admin_state_up", True),
    Column("status", String(16), nullable=False, default="ACTIVE"),
    # The gateway port (``network:router_gateway``, empty project) on the external network.
    Column("gw_port_id", String(36), ForeignKey("ports.id"), nullable=True),
    bool_column("enable_snat", True),
    bool_column("ha", False),
    bool_column("distributed", False),
    # Zones the router's L3 agents should be in (``router_availability_zone``); [] = anywhere.
    Column("availability_zone_hints", JSON, nullable=False),
    # ``l3-flavors``: the flavor the router was made with (never changed); None = the default.
    Column("flavor_id", String(36), ForeignKey("flavors.id"), nullable=True, index=True),
    # ``qos-gateway-ip``: the QoS policy of the gateway's external addresses.
    Column("qos_policy_id", String(36), ForeignKey("qos_policies.id"), nullable=True, index=True),
    # ``l3-ext-ndp-proxy``: whether the router answers neighbour solicitations for its NDP proxies.
    bool_column("enable_ndp_proxy", False),
)

routerports = Table(
    "routerports", metadata,
    Column("router_id", String(36), ForeignKey("routers.id", ondelete="CASCADE"), nullable=False, index=True),
    # A port belongs to at most one router: the key settles two concurrent attachments.
    Column("port_id", String(36), ForeignKey("ports.id", ondelete="CASCADE"), nullable=False),
    Column("port_type", String(255), nullable=False),
    PrimaryKeyConstraint("port_id"),
)

router_routes = Table(
    "router_routes", metadata,
    Column("router_id", String(36), ForeignKey("routers.id", ondelete="CASCADE"), nullable=False),
    Column("destination", String(64), nullable=False),
    Column("nexthop", String(64), nullable=False),
    PrimaryKeyConstraint("router_id", "destination", "nexthop"),
)

floatingips = Table(
    "floatingips", metadata,
    id_column(), project_column(), *standard_columns(),
    Column("floating_ip_address", String(64), nullable=False),
    Column("floating_network_id", String(36), ForeignKey("networks.id"), nullable=False, index=True),
    # The ``network:floatingip`` port that holds the address on the external network.
    Column("floating_port_id", String(36), ForeignKey("ports.id", ondelete="CASCADE"), nullable=False,
           unique=True),
    # Association: the internal port and address NATed to the floating address, and the router
    # that does it. Deleting the port ends the association (the service also clears the rest).
    Column("fixed_port_id", String(36), ForeignKey("ports.id", ondelete="SET NULL"), nullable=True, index=True),
    Column("fixed_ip_address", String(64), nullable=True),
    Column("router_id", String(36), ForeignKey("routers.id"), nullable=True, index=True),
    Column("status", String(16), nullable=False, default="DOWN"),
    # ``qos-fip``: the QoS policy of the floating address's traffic.
    Column("qos_policy_id", String(36), ForeignKey("qos_policies.id"), nullable=True, index=True),
    UniqueConstraint("floating_network_id", "fixed_port_id", "fixed_ip_address", name="uq_floatingips_fixed"),
)

portforwardings = Table(
    "portforwardings", metadata,
    id_column(),
    Column("floatingip_id", String(36), ForeignKey("floatingips.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("internal_port_id", String(36), ForeignKey("ports.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("internal_ip_address", String(64), nullable=False),
    Column("protocol", String(40), nullable=False),
    Column("internal_port_start", Integer, nullable=False),
    Column("internal_port_end", Integer, nullable=False),
    Column("external_port_start", Integer, nullable=False),
    Column("external_port_end", Integer, nullable=False),
    Column("description", String(255), nullable=False, default=""),
    UniqueConstraint("floatingip_id", "protocol", "external_port_start", "external_port_end",
                     name="uq_portforwardings_external"),
    UniqueConstraint("internal_port_id", "internal_ip_address", "protocol", "internal_port_start",
                     "internal_port_end", name="uq_portforwardings_internal"),
)

# Conntrack helpers of a router (``l3-conntrack-helper``): traffic of ``protocol`` to ``port`` through
# the router gets the kernel's ``helper`` (ftp, tftp, sip...), so its related connections pass.
conntrack_helpers = Table(
    "conntrack_helpers", metadata,
    id_column(),
    Column("router_id", String(36), ForeignKey("routers.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("protocol", String(40), nullable=False),
    Column("port", Integer, nullable=False),
    Column("helper", String(64), nullable=False),
    UniqueConstraint("router_id", "protocol", "port", "helper"),
)

# NDP proxies (``l3-ndp-proxy``): the router answers neighbour solicitations on its gateway for one
# IPv6 address of an internal port, so that address is reachable from the external network unrouted.
ndp_proxies = Table(
    "ndp_proxies", metadata,
    id_column(), project_column(), *standard_columns(),
    Column("router_id", String(36), ForeignKey("routers.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("port_id", String(36), ForeignKey("ports.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("ip_address", String(64), nullable=False),
    UniqueConstraint("router_id", "ip_address"),
)

# L3 HA (``l3-ha``): one HA network per project (Neutron's ``HA network tenant <project>``), a VRRP
# router id per HA router on it (unique per network: VRRP ids share the network's multicast
# group), and per (router, L3 agent) the HA port that joins the router's namespace on that agent's
# host to the others, with the VRRP state that agent last reported there.
ha_router_networks = Table(
    "ha_router_networks", metadata,
    Column("project_id", String(255), nullable=False),
    Column("network_id", String(36), ForeignKey("networks.id", ondelete="CASCADE"), nullable=False, unique=True),
    PrimaryKeyConstraint("project_id"),
)

ha_router_vrid_allocations = Table(
    "ha_router_vrid_allocations", metadata,
    Column("network_id", String(36), ForeignKey("networks.id", ondelete="CASCADE"), nullable=False),
    Column("vr_id", Integer, nullable=False),
    Column("router_id", String(36), ForeignKey("routers.id", ondelete="CASCADE"), nullable=False, unique=True),
    PrimaryKeyConstraint("network_id", "vr_id"),
)

ha_router_agent_port_bindings = Table(
    "ha_router_agent_port_bindings", metadata,
    Column("port_id", String(36), ForeignKey("ports.id", ondelete="CASCADE"), nullable=False),
    Column("router_id", String(36), ForeignKey("routers.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("l3_agent_id", String(36), ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
    # "active" / "standby" as the agent's VRRP instance is (Neutron's ha_state).
    Column("state", String(16), nullable=False),
    PrimaryKeyConstraint("port_id"),
    UniqueConstraint("router_id", "l3_agent_id"),
)

__all__ = ["routers", "routerports", "router_routes", "floatingips", "portforwardings", "conntrack_helpers",
           "ndp_proxies", "ha_router_networks", "ha_router_vrid_allocations", "ha_router_agent_port_bindings"]
