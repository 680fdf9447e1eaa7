"""Which tracked connections the current rules no longer allow (pure).

Neutron deletes the conntrack entries a removed rule allowed, so an established connection stops
with its rule, not at its next timeout. Here every entry of a filtered, stateful port's zone is
judged against the port's rules as compiled now (remote groups and address groups by their set
elements): an entry started towards the port needs an ingress rule admitting its source, protocol
and destination port; one started by the port an egress rule. What no rule admits is deleted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from neutrino.agent.roles.firewall.compile import (
    DHCP_V4,
    DHCP_V6,
    ICMP,
    ICMPV6,
    PORT_PROTOCOLS,
    PortPolicy,
    set_name,
)
from neutrino.contract.firewall import FirewallRule

_PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "sctp": 132, "dccp": 33, "udplite": 136}


@dataclass(frozen=True, slots=True)
class TrackedConnection:
    """The original direction of one conntrack entry."""

    zone: int
    protocol: int
    src: str
    dst: str
    sport: int | None = None
    dport: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None

    @property
    def protocol_name(self) -> str:
        names = {v: k for k, v in _PROTOCOLS.items()}
        return names.get(self.protocol, str(self.protocol))


def _number(fields: Mapping[str, str], key: str) -> int | None:
    return int(fields[key]) if key in fields else None


def parse_entries(text: str) -> list[TrackedConnection]:
    """``conntrack -L -o extended`` lines (``ipv4 2 tcp 6 117 ESTABLISHED src=... zone=3 ...``)."""
    out = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 4 or words[0] not in ("ipv4", "ipv6"):
            continue
        try:
            protocol = int(words[3])
        except ValueError:
            continue
        fields: dict[str, str] = {}
        for word in words[4:]:
            key, sep, value = word.partition("=")
            if sep and key not in fields:  # the first of each is the original direction
                fields[key] = value
        if "src" not in fields or "dst" not in fields:
            continue
        out.append(TrackedConnection(int(fields.get("zone", 0)), protocol, fields["src"], fields["dst"],
                                     *(_number(fields, key) for key in ("sport", "dport", "type", "code"))))
    return out


def _admits(rule: FirewallRule, conn: TrackedConnection, remote: str, sets: Mapping[str, frozenset[str]]) -> bool:
    address = ipaddress.ip_address(remote)
    if (rule.ethertype == "IPv4") != (address.version == 4):
        return False
    if rule.remote_ip_prefix:
        if address not in ipaddress.ip_network(rule.remote_ip_prefix, strict=False):
            return False
    elif rule.remote_group_id or rule.remote_address_group_id:
        kind, gid = ("sg", rule.remote_group_id) if rule.remote_group_id else ("ag", rule.remote_address_group_id)
        members = sets.get(set_name(kind, str(gid), address.version), frozenset())
        if not any(address in ipaddress.ip_network(m, strict=False) for m in members):
            return False
    if not rule.protocol:
        return True
    if rule.protocol != conn.protocol:
        return False
    if rule.protocol in (ICMP, ICMPV6):
        return ((rule.port_range_min is None or rule.port_range_min == conn.icmp_type)
                and (rule.port_range_max is None or rule.port_range_max == conn.icmp_code))
    if rule.protocol in PORT_PROTOCOLS and (rule.port_range_min is not None or rule.port_range_max is not None):
        low = rule.port_range_min or rule.port_range_max or 0
        high = rule.port_range_max or rule.port_range_min or 0
        return conn.dport is not None and low <= conn.dport <= high
    return True


def _always_allowed(conn: TrackedConnection) -> bool:
    return conn.protocol == 17 and (conn.sport, conn.dport) in (DHCP_V4, DHCP_V4[::-1], DHCP_V6, DHCP_V6[::-1])


def _inside(address: str, own: Iterable[str]) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip in ipaddress.ip_network(n, strict=False) for n in own)


def stale_connections(entries: Iterable[TrackedConnection], policies: Iterable[PortPolicy],
                      sets: Mapping[str, frozenset[str]]) -> list[TrackedConnection]:
    """The entries some stateful port's rules no longer admit (each listed once)."""
    by_zone: dict[int, list[PortPolicy]] = {}
    for policy in policies:
        if policy.stateful:
            by_zone.setdefault(policy.zone, []).append(policy)
    stale = []
    for conn in entries:
        if _always_allowed(conn):
            continue
        for policy in by_zone.get(conn.zone, ()):
            checks = []
            if _inside(conn.dst, policy.addresses):
                checks.append(("ingress", conn.src))
            if _inside(conn.src, policy.addresses):
                checks.append(("egress", conn.dst))
            if any(not any(r.direction == direction and _admits(r, conn, remote, sets) for r in policy.rules)
                   for direction, remote in checks):
                stale.append(conn)
                break
    return stale


__all__ = ["TrackedConnection", "parse_entries", "stale_connections"]
