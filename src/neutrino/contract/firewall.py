"""The firewall role's desired state (``sync_state(host, "firewall")``) as frozen data.

One host's ports (every port bound there, trusted ones included, so the agent can tell "a tap the
cloud knows and trusts" from "a tap nobody told it about", which passes nothing), the security
groups those ports use with their rules, and the address sets the rules point at: the members of
each remote group (fixed IPs and allowed address pairs of its ports, wherever those are) and the
CIDRs of each address group; and the enabled network logs (``logging``) that cover the host's ports.
On the wire through :mod:`neutrino.contract.codec`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from neutrino.contract.codec import wire


@dataclass(frozen=True, slots=True)
class FirewallRule:
    """One security group rule, normalised by the server: ``protocol`` is the IP protocol number
    (None = any; the legacy name ``icmp`` in an IPv6 rule is already 58, as Neutron reads it)."""

    rule_id: str = field(metadata=wire(name="id"))
    direction: str  # "ingress" | "egress"
    ethertype: str  # "IPv4" | "IPv6"
    protocol: int | None = None
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None
    remote_group_id: str | None = None
    remote_address_group_id: str | None = None


@dataclass(frozen=True, slots=True)
class FirewallGroup:
    group_id: str = field(metadata=wire(name="id"))
    stateful: bool = True
    rules: tuple[FirewallRule, ...] = ()


@dataclass(frozen=True, slots=True)
class FirewallPort:
    """A port bound to the host. ``trusted``: a ``network:`` owner (router, DHCP...), which Neutron
    never filters; ``port_security_enabled`` false likewise passes everything."""

    port_id: str
    device: str
    network_id: str
    mac_address: str
    fixed_ips: tuple[str, ...] = ()
    # (ip address or CIDR, MAC)
    allowed_address_pairs: tuple[tuple[str, str], ...] = field(
        default=(), metadata=wire(row=("ip_address", "mac_address")))
    port_security_enabled: bool = True
    trusted: bool = False
    security_group_ids: tuple[str, ...] = ()
    network_type: str = ""
    physical_network: str | None = None
    revision: int = 0

    @property
    def filtered(self) -> bool:
        """Whether anything of this port is filtered at all."""
        return self.port_security_enabled and not self.trusted


@dataclass(frozen=True, slots=True)
class FirewallLog:
    """An enabled network log of security group events, with the host's ports it covers (resolved
    by the server as Neutron's log plugin does: its ``target_id`` port, else the ports of its group,
    else every port in a group of its project). ``security_group_id``: only the accepted connections
    of that group's rules are logged (None: of all the port's groups); drops are the port's."""

    log_id: str = field(metadata=wire(name="id"))
    project_id: str = ""
    event: str = "ALL"  # "ACCEPT" | "DROP" | "ALL"
    security_group_id: str | None = None
    port_ids: tuple[str, ...] = ()

    @property
    def accepts(self) -> bool:
        return self.event in ("ACCEPT", "ALL")

    @property
    def drops(self) -> bool:
        return self.event in ("DROP", "ALL")


@dataclass(frozen=True, slots=True)
class FirewallState:
    host: str
    ports: tuple[FirewallPort, ...] = ()
    groups: tuple[FirewallGroup, ...] = field(default=(), metadata=wire(name="security_groups"))
    # Remote group id -> addresses (IPs or CIDRs) of its member ports; address group id -> CIDRs.
    remote_groups: Mapping[str, Any] = field(default_factory=dict)
    address_groups: Mapping[str, Any] = field(default_factory=dict)
    logs: tuple[FirewallLog, ...] = ()
    generated_at: float = 0.0
    role: str = field(default="firewall", init=False)


__all__ = ["FirewallGroup", "FirewallLog", "FirewallPort", "FirewallRule", "FirewallState"]
