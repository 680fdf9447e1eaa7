"""Security groups and anti-spoofing of one host's ports, compiled into two nftables tables (pure).

The kernel fact this design encodes (docs/architecture.md, kernel.md): the bridge family has no
connection tracking here, but ``br_netfilter`` runs bridged IP packets through the inet hooks,
where conntrack works, with the *bridge* as the input device. So:

* ``bridge neutrino-fw`` sees the tap ports. ``prerouting`` (priority -200, before br_netfilter's
  hooks at 0) sends a frame from a tap to its port's ``from-<tap>`` chain: anti-spoofing (MAC,
  ARP, IPv4, IPv6 sources; no DHCP server replies, no router advertisements) and the port's mark
  (``MARK_TAG | n``). ``forward`` (per output port, also per copy of a flood) overwrites the mark
  with the *receiving* port's. A tap that no map names passes nothing: fail closed.
* ``inet neutrino-fw``: ``raw`` sets the conntrack zone from the bridge (one zone per network, so
  two networks with the same addresses never share state); ``egress`` (prerouting, after
  conntrack) jumps by the sender's mark to ``out-<tap>``; ``ingress`` (forward) jumps by the
  receiver's mark to ``in-<tap>``. Rules that name a remote group or an address group match a
  named set (``sg-<group>-4``, ``ag-<group>-6``...), so a membership change is one set element.

Every chain ends in a rule whose comment carries a digest of the chain's rules, so a planner can
tell from a cheap read whether a chain is as compiled (see ``plan``). Ids that must not move while
traffic flows (port marks, zones) are allocated against the ones already in the kernel.

Network logs (``logging``) are compiled only for the ports they cover, so a host without logs has
the tables it had before logging existed. A port logging the accepted connections of a group
jumps to the group's logged twin (``lgrp-<group>-in``: the same matches, each jumping to
``lacc-<group>-in``, which logs the packet and accepts); a port logging drops ends its chains in
``ldrop-in``/``ldrop-out`` (log, then drop). Every log rule passes the one named limit of the
table first (``[network_log] rate_limit``/``burst_limit``, per agent as Neutron's), and logs to
NFLOG group ``LOG_GROUP`` with a prefix naming the action, direction and group; the packet's mark
names the port (see ``packetlog``). Only the first packet of a connection reaches a group's rules
on a stateful port (later ones are accepted as established), so each accepted connection is
logged once.

Compiling is memoised by value (the inputs are frozen records): a change recompiles only the
groups, ports and address sets whose inputs changed, so a host with 10,000 rules recompiles in
milliseconds, not seconds (the text of 10,000 rules is most of the cost; ``bench/firewall_bench.py``).
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from neutrino.contract.firewall import FirewallGroup, FirewallLog, FirewallPort, FirewallRule, FirewallState
from neutrino.contract.names import bridge_name
from neutrino.contract.names import eui64_link_local as eui64_link_local

T = TypeVar("T")
TABLE = "neutrino-fw"
MARK_TAG = 0x4E460000  # "NF": marks of this table, so foreign marks never jump into our chains
MARK_MAX = 0xFFFF
ZONE_MAX = 0xFFFF
PORT_PROTOCOLS = (6, 17, 33, 132, 136)  # tcp, udp, dccp, sctp, udplite: destination port at offset 2
ICMP, ICMPV6 = 1, 58
DHCP_V4 = (68, 67)  # (client, server)
DHCP_V6 = (546, 547)
ND_EGRESS = "nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-report, " \
            "mld-listener-done, mld2-listener-report"
ND_INGRESS = "nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-query, " \
             "mld-listener-report, mld-listener-done, mld2-listener-report"
LOG_GROUP = 0x4E46  # NFLOG group of the firewall's log rules (per namespace)
LOG_PREFIX = "nfw"


@dataclass(frozen=True, slots=True)
class LogLimit:
    """Packets per second the log rules may log, all together, and the burst above it."""

    rate: int = 100
    burst: int = 25

    @property
    def name(self) -> str:
        return f"nfw-log-{self.rate}-{self.burst}"

    @property
    def spec(self) -> str:
        return f"rate {self.rate}/second burst {self.burst} packets"


# Sent from the unspecified address before an instance has one (DAD, MLD): as Neutron allows.
UNSPECIFIED_SOURCE_TYPES = "nd-neighbor-solicit, mld-listener-report, mld2-listener-report"


@dataclass(frozen=True, slots=True)
class ChainSpec:
    name: str
    rules: tuple[str, ...]
    hook: str | None = None  # "filter prerouting -200" for a base chain

    @property
    def digest(self) -> str:
        return hashlib.sha256("\n".join((self.hook or "", *self.rules)).encode()).hexdigest()[:16]

    @property
    def comment(self) -> str:
        return f"nfw:{self.digest}"


@dataclass(frozen=True, slots=True)
class SetSpec:
    name: str
    type: str  # "ipv4_addr" | "ipv6_addr"
    elements: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class MapSpec:
    name: str
    declaration: str  # "type ifname : mark", "typeof iifname : ct zone", "type mark : verdict"
    elements: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TableSpec:
    family: str
    name: str
    chains: Mapping[str, ChainSpec]
    sets: Mapping[str, SetSpec]
    maps: Mapping[str, MapSpec]
    limits: Mapping[str, str] = field(default_factory=dict)  # named limit -> its spec


@dataclass(frozen=True, slots=True)
class Ids:
    """Port marks by tap and conntrack zones by bridge: what the kernel holds, or newly allocated."""

    marks: Mapping[str, int] = field(default_factory=dict)
    zones: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Compiled:
    bridge: TableSpec
    inet: TableSpec
    ids: Ids
    # Per filtered port: what the conntrack sweep needs to judge an entry (see ``conntrack``).
    policies: Mapping[str, PortPolicy]


@dataclass(frozen=True, slots=True)
class PortPolicy:
    device: str
    zone: int
    addresses: frozenset[str]  # the port's own IPs (fixed and allowed address pairs, CIDRs)
    stateful: bool
    rules: tuple[FirewallRule, ...]


# ---- ids --------------------------------------------------------------------------------------


def allocate(keys: Iterable[str], existing: Mapping[str, int], highest: int) -> dict[str, int]:
    """Give every key a number in 1..highest: the one it has (so traffic keeps its marks and zones
    across restarts and changes), else the smallest free one, in sorted key order.

    A number ``existing`` holds for a key that is gone is not free: the kernel still holds it for
    that key, whose removal (a delete of the element keyed by that number) may run after the new
    key's element is added in the same round, and would delete it. It becomes free once the kernel
    no longer holds it. A number two keys hold (a hand edit) stays with the first."""
    wanted = sorted(set(keys))
    out: dict[str, int] = {}
    kept: set[int] = set()
    for key in wanted:
        number = existing.get(key, 0)
        if 1 <= number <= highest and number not in kept:
            out[key] = number
            kept.add(number)
    taken = kept | set(existing.values())
    free = (n for n in range(1, highest + 1) if n not in taken)
    for key in wanted:
        if key not in out:
            try:
                out[key] = next(free)
            except StopIteration:
                raise ValueError(f"more than {highest} objects need an id") from None
    return out


def network_bridge(port: FirewallPort, bridge_mappings: Mapping[str, str], bridges: Iterable[str]) -> str:
    """The bridge a port's tap is in, as the l2 role lays it out: a mapped physical network whose
    device is a bridge (DevStack's br-ex) carries its taps itself, everything else has ``brq<net>``."""
    mapped = bridge_mappings.get(port.physical_network or "") if port.network_type in ("flat", "vlan") else None
    if mapped is not None and mapped in set(bridges):
        return mapped
    return bridge_name(port.network_id)


# ---- addresses --------------------------------------------------------------------------------


# Memo sizes: a few times the objects of a large host (1000 ports, 10,000 rules), so a change
# recompiles only what it touched; entries of objects gone age out.
_MEMO = 1 << 16


@functools.lru_cache(maxsize=_MEMO)
def _net(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text, strict=False)


def element(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    """A prefix as ``nft -j`` prints a set element: a host alone, a network with its length."""
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def address_elements(addresses: Iterable[str], version: int) -> frozenset[str]:
    """Addresses of one family, each covered one left out (an interval set refuses overlapping
    elements). Neighbours are *not* merged: a member joining or leaving stays one element."""
    return _address_elements(tuple(addresses), version)


@functools.lru_cache(maxsize=_MEMO)
def _address_elements(addresses: tuple[str, ...], version: int) -> frozenset[str]:
    nets = sorted({n for n in (_net(a) for a in addresses) if n.version == version}, key=lambda n: n.prefixlen)
    kept: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    covering: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []  # kept prefixes wider than a host
    for net in nets:  # widest first, so only a kept wider prefix can cover this one
        if not any(net.subnet_of(k) for k in covering):  # type: ignore[arg-type]
            kept.append(net)
            if net.prefixlen < net.max_prefixlen:
                covering.append(net)
    return frozenset(element(n) for n in kept)


def set_name(kind: str, group_id: str, version: int) -> str:
    return f"{kind}-{group_id}-{version}"


# ---- anti-spoofing (bridge family) ------------------------------------------------------------


def _pairs(port: FirewallPort) -> list[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network]]:
    """(MAC, prefix) the port may send from: its fixed IPs with its MAC, its address pairs."""
    mac = port.mac_address.lower()
    out = [(mac, _net(ip)) for ip in port.fixed_ips]
    out += [((pair_mac or mac).lower(), _net(ip)) for ip, pair_mac in port.allowed_address_pairs]
    return out


def spoof_chain(port: FirewallPort, mark: int) -> ChainSpec:
    """What a filtered port may send at all, before any security group is asked."""
    return _SPOOF_CHAINS.get(port.device, (port, mark), lambda: _spoof_chain(port, mark))


def _one_or_set(values: list[str]) -> str:
    # An anonymous set costs nft 1.0.6 a netlink round trip per set on every listing: one value
    # is compared plainly.
    return values[0] if len(values) == 1 else f"{{ {', '.join(values)} }}"


# What every filtered port's chains share, in chains of their own: constant anonymous sets repeated
# in a chain per port made listing the tables (the full resync) several times slower.
SPOOF_SHARED = (
    ChainSpec("spoof-head", (
        # No DHCP or DHCPv6 server answers and no router advertisements or redirects from instances.
        f"ether type ip udp sport {DHCP_V4[1]} drop",
        f"ether type ip6 udp sport {DHCP_V6[1]} drop",
        "ether type ip6 icmpv6 type { nd-router-advert, nd-redirect } drop",
        # An instance's DHCP client always passes (it has no address yet: source 0.0.0.0).
        f"ether type ip udp sport {DHCP_V4[0]} udp dport {DHCP_V4[1]} accept",
        "ether type arp arp saddr ip 0.0.0.0 accept",  # ARP probe (RFC 5227)
        "return")),
    ChainSpec("spoof-unspecified", (
        f"ether type ip6 ip6 saddr :: icmpv6 type {{ {UNSPECIFIED_SOURCE_TYPES} }} accept", "return")),
    ChainSpec("spoof-tail", ("ether type != { ip, ip6, arp } drop", "accept")),
)


def _spoof_chain(port: FirewallPort, mark: int) -> ChainSpec:
    pairs = _pairs(port)
    macs = sorted({port.mac_address.lower(), *(m for m, _ in pairs)})
    v4 = sorted({f"{m} . {element(n)}" for m, n in pairs if n.version == 4})
    v6 = sorted({f"{m} . {element(n)}" for m, n in pairs if n.version == 6}
                | {f"{m} . {eui64_link_local(m)}" for m in macs})
    rules = [
        f"meta mark set {mark:#x}",
        f"ether saddr != {_one_or_set(macs)} drop",
        "jump spoof-head",
    ]
    if v4:
        rules += [f"ether type arp arp saddr ether . arp saddr ip != {{ {', '.join(v4)} }} drop",
                  f"ether type ip ether saddr . ip saddr != {{ {', '.join(v4)} }} drop"]
    else:
        rules += ["ether type arp drop", "ether type ip drop"]
    rules += ["jump spoof-unspecified",
              f"ether type ip6 ether saddr . ip6 saddr != {{ {', '.join(v6)} }} drop",
              "goto spoof-tail"]
    return ChainSpec(f"from-{port.device}", tuple(rules))


# ---- security group rules (inet family) -------------------------------------------------------


@functools.lru_cache(maxsize=_MEMO)
def rule_match(rule: FirewallRule) -> str:
    """One rule as the nftables match of the packets it allows (without the verdict)."""
    v4 = rule.ethertype == "IPv4"
    fam = "ip" if v4 else "ip6"
    where = "saddr" if rule.direction == "ingress" else "daddr"
    parts = [f"meta nfproto {'ipv4' if v4 else 'ipv6'}"]
    if rule.remote_ip_prefix:
        net = _net(rule.remote_ip_prefix)
        if net.prefixlen:
            parts.append(f"{fam} {where} {element(net)}")
    elif rule.remote_group_id:
        parts.append(f"{fam} {where} @{set_name('sg', rule.remote_group_id, 4 if v4 else 6)}")
    elif rule.remote_address_group_id:
        parts.append(f"{fam} {where} @{set_name('ag', rule.remote_address_group_id, 4 if v4 else 6)}")
    proto = rule.protocol
    if proto in (ICMP, ICMPV6):
        keyword = "icmp" if proto == ICMP else "icmpv6"
        parts.append(f"meta l4proto {proto}")
        if rule.port_range_min is not None:
            parts.append(f"{keyword} type {rule.port_range_min}")
            if rule.port_range_max is not None:
                parts.append(f"{keyword} code {rule.port_range_max}")
    elif proto:  # 0 ("ip", "hopopt") means any, as in Neutron's drivers
        parts.append(f"meta l4proto {proto}")
        low, high = rule.port_range_min, rule.port_range_max
        if proto in PORT_PROTOCOLS and (low is not None or high is not None):
            low, high = low or high, high or low
            if (low, high) != (1, 65535):
                parts.append(f"th dport {low}" if low == high else f"th dport {low}-{high}")
    return " ".join(parts)


class _ById:
    """A memo of one value per id (a group's, a port's tap), reused while its input is the same
    record: an identity check first (the role's decoder hands back the records of unchanged groups
    and ports), where an lru_cache would hash a group of 200 rules on every compile."""

    def __init__(self) -> None:
        self._memo: dict[str, tuple[object, object]] = {}

    def get(self, key: str, given: object, make: Callable[[], T]) -> T:
        held = self._memo.get(key)
        if held is not None and (held[0] is given or held[0] == given):
            return held[1]  # type: ignore[return-value]
        value = make()
        self._memo[key] = (given, value)
        return value


_GROUP_CHAINS, _GROUP_SETS, _OWN_ADDRESSES, _SPOOF_CHAINS = _ById(), _ById(), _ById(), _ById()


def group_chains(group: FirewallGroup) -> tuple[ChainSpec, ChainSpec]:
    return _GROUP_CHAINS.get(group.group_id, group, lambda: _group_chains(group))


def _group_chains(group: FirewallGroup) -> tuple[ChainSpec, ChainSpec]:
    """``grp-<group>-in`` and ``grp-<group>-out``: the group's rules, shared by every port in the
    group (a rule change rewrites one chain, whatever the number of ports); a packet no rule
    accepts returns to the port's chain."""
    chains = []
    for direction, suffix in (("ingress", "in"), ("egress", "out")):
        lines: list[str] = []
        for rule in group.rules:
            line = rule_match(rule) + " accept"
            if rule.direction == direction and line not in lines:
                lines.append(line)
        chains.append(ChainSpec(f"grp-{group.group_id}-{suffix}", (*lines, "return")))
    return chains[0], chains[1]


def port_chains(port: FirewallPort, groups: Iterable[FirewallGroup], accept_logged: frozenset[str] = frozenset(),
                drop_logged: bool = False) -> tuple[ChainSpec, ChainSpec, bool]:
    """``in-<tap>`` and ``out-<tap>`` for a filtered port; whether it is stateful.

    Stateful (every group stateful, as the API guarantees groups are never mixed on a port):
    replies to what was allowed pass by conntrack, invalid packets drop. Stateless: every packet is
    judged by the rules alone, both ways. ND, MLD and the DHCP client always pass, as in Neutron.
    Then each of the port's groups is asked (a jump to its chain, or to its logged twin for the
    groups in ``accept_logged``); what none accepts is dropped (and logged first if ``drop_logged``).
    """
    return _port_chains(port.device, tuple((g.group_id, g.stateful) for g in groups), accept_logged, drop_logged)


@functools.lru_cache(maxsize=_MEMO)
def _port_chains(device: str, groups: tuple[tuple[str, bool], ...], accept_logged: frozenset[str] = frozenset(),
                 drop_logged: bool = False) -> tuple[ChainSpec, ChainSpec, bool]:
    stateful = all(s for _, s in groups)
    kind = "stateful" if stateful else "stateless"
    ingress = [f"jump common-in-{kind}"]
    egress = [f"jump common-out-{kind}"]
    for group_id in dict.fromkeys(g for g, _ in groups):
        chain = "lgrp" if group_id in accept_logged else "grp"
        ingress.append(f"jump {chain}-{group_id}-in")
        egress.append(f"jump {chain}-{group_id}-out")
    ingress.append("goto ldrop-in" if drop_logged else "drop")
    egress.append("goto ldrop-out" if drop_logged else "drop")
    return ChainSpec(f"in-{device}", tuple(ingress)), ChainSpec(f"out-{device}", tuple(egress)), stateful


def log_rule(limit: LogLimit, action: str, direction: str, group_id: str | None = None) -> str:
    prefix = " ".join((LOG_PREFIX, action, direction, *((group_id,) if group_id else ())))
    return f'limit name "{limit.name}" log group {LOG_GROUP} prefix "{prefix}"'


def logged_group_chains(group: FirewallGroup, limit: LogLimit) -> tuple[ChainSpec, ...]:
    """``lacc-<group>-in``/``-out`` (log, accept) and ``lgrp-<group>-in``/``-out``: the group's
    chains with every accept a jump to its ``lacc-`` chain. Those first: the others name them."""
    out = []
    for direction, suffix in (("ingress", "in"), ("egress", "out")):
        out.append(ChainSpec(f"lacc-{group.group_id}-{suffix}",
                             (log_rule(limit, "ACCEPT", direction, group.group_id), "accept")))
    for chain in group_chains(group):
        suffix = chain.name.rsplit("-", 1)[1]
        rules = tuple(r[:-len("accept")] + f"jump lacc-{group.group_id}-{suffix}" if r.endswith(" accept") else r
                      for r in chain.rules)
        out.append(ChainSpec("l" + chain.name, rules))
    return tuple(out)


def drop_log_chains(limit: LogLimit) -> tuple[ChainSpec, ChainSpec]:
    """Where a port that logs drops ends: log (within the limit), then drop."""
    return (ChainSpec("ldrop-in", (log_rule(limit, "DROP", "ingress"), "drop")),
            ChainSpec("ldrop-out", (log_rule(limit, "DROP", "egress"), "drop")))


def port_logging(state: FirewallState) -> dict[str, tuple[frozenset[str], bool]]:
    """Per filtered port's tap: the groups whose accepted connections are logged, and whether its
    drops are (only ports some enabled log covers)."""
    by_id = {p.port_id: p for p in state.ports if p.filtered}
    accepts: dict[str, set[str]] = {}
    drops: set[str] = set()
    for log in state.logs:
        for port_id in log.port_ids:
            port = by_id.get(port_id)
            if port is None:
                continue
            if log.drops:
                drops.add(port.device)
            if log.accepts:
                groups = accepts.setdefault(port.device, set())
                if log.security_group_id is None:
                    groups.update(port.security_group_ids)
                elif log.security_group_id in port.security_group_ids:
                    groups.add(log.security_group_id)
    return {d: (frozenset(accepts.get(d, ())), d in drops) for d in accepts.keys() | drops}


def logs_of(state_logs: Iterable[FirewallLog], port_id: str, action: str, group_id: str | None = None
            ) -> list[FirewallLog]:
    """The logs asking for this port's packets of this action (ACCEPT: of this group's rules)."""
    out = []
    for log in state_logs:
        if port_id not in log.port_ids:
            continue
        if action == "DROP" and log.drops:
            out.append(log)
        elif action == "ACCEPT" and log.accepts and (log.security_group_id in (None, group_id)):
            out.append(log)
    return out


def group_sets(group: FirewallGroup) -> frozenset[tuple[str, str, int]]:
    """The named sets a group's rules match: ``(kind, group id, IP version)``."""
    return _GROUP_SETS.get(group.group_id, group, lambda: _group_sets(group))


def _group_sets(group: FirewallGroup) -> frozenset[tuple[str, str, int]]:
    out: set[tuple[str, str, int]] = set()
    for rule in group.rules:
        version = 4 if rule.ethertype == "IPv4" else 6
        if rule.remote_group_id:
            out.add(("sg", rule.remote_group_id, version))
        elif rule.remote_address_group_id:
            out.add(("ag", rule.remote_address_group_id, version))
    return frozenset(out)


def _common_chains() -> tuple[ChainSpec, ...]:
    """What every port's ``in-``/``out-`` chain asks first (see ``port_chains``)."""
    out = []
    for stateful in (True, False):
        head_ct = ("ct state established,related accept",) if stateful else ()
        tail_ct = ("ct state invalid drop",) if stateful else ()
        kind = "stateful" if stateful else "stateless"
        out.append(ChainSpec(f"common-in-{kind}", (
            *head_ct,
            f"meta nfproto ipv4 udp sport {DHCP_V4[1]} udp dport {DHCP_V4[0]} accept",
            f"meta nfproto ipv6 udp sport {DHCP_V6[1]} udp dport {DHCP_V6[0]} accept",
            f"icmpv6 type {{ {ND_INGRESS} }} accept", *tail_ct, "return")))
        out.append(ChainSpec(f"common-out-{kind}", (
            *head_ct,
            f"meta nfproto ipv4 udp sport {DHCP_V4[0]} udp dport {DHCP_V4[1]} accept",
            f"meta nfproto ipv6 udp sport {DHCP_V6[0]} udp dport {DHCP_V6[1]} accept",
            f"icmpv6 type {{ {ND_EGRESS} }} accept", *tail_ct, "return")))
    return tuple(out)


COMMON_CHAINS = _common_chains()


# ---- the whole host ---------------------------------------------------------------------------


def compile_host(state: FirewallState, previous: Ids, *, bridge_mappings: Mapping[str, str] | None = None,
                 bridges: Iterable[str] = (), log_limit: LogLimit = LogLimit()) -> Compiled:
    """The two tables for the host's ports. ``previous``: the marks and zones the kernel holds."""
    mappings = bridge_mappings or {}
    bridge_list = list(bridges)
    ports = sorted({p.device: p for p in state.ports}.values(), key=lambda p: p.device)
    filtered = [p for p in ports if p.filtered]
    groups = {g.group_id: g for g in state.groups}
    port_bridge = {p.device: network_bridge(p, mappings, bridge_list) for p in ports}
    marks = allocate((p.device for p in filtered), {k: v & MARK_MAX for k, v in previous.marks.items()
                                                    if v & ~MARK_MAX == MARK_TAG}, MARK_MAX)
    zones = allocate(port_bridge.values(), previous.zones, ZONE_MAX)

    b_chains: dict[str, ChainSpec] = {}
    from_port: dict[str, str] = {}
    port_marks: dict[str, str] = {}
    for port in ports:
        if port.filtered:
            mark = MARK_TAG | marks[port.device]
            chain = spoof_chain(port, mark)
            b_chains[chain.name] = chain
            from_port[port.device] = f"goto {chain.name}"
            port_marks[port.device] = str(mark)
        else:
            from_port[port.device] = "goto trusted"
            port_marks[port.device] = "0"
    b_chains["trusted"] = ChainSpec("trusted", ("meta mark set 0x0", "accept"))
    b_chains.update((c.name, c) for c in SPOOF_SHARED)
    b_chains["prerouting"] = ChainSpec("prerouting", (
        "iifname vmap @from_port", 'iifname "tap*" drop'), "filter prerouting -200")
    b_chains["forward"] = ChainSpec("forward", (
        "meta mark set oifname map @port_marks accept", 'oifname "tap*" drop', "meta mark set 0x0 accept"),
        "filter forward -200")
    bridge_table = TableSpec("bridge", TABLE, b_chains, {}, {
        "from_port": MapSpec("from_port", "type ifname : verdict", from_port),
        "port_marks": MapSpec("port_marks", "type ifname : mark", port_marks)})

    i_chains: dict[str, ChainSpec] = {}
    egress_map: dict[str, str] = {}
    ingress_map: dict[str, str] = {}
    referenced: set[tuple[str, str, int]] = set()
    group_rules: dict[tuple[str, ...], tuple[FirewallRule, ...]] = {}  # by the port's group ids
    policies: dict[str, PortPolicy] = {}
    logging = port_logging(state) if state.logs else {}
    limits: dict[str, str] = {}
    if logging:
        limits[log_limit.name] = log_limit.spec
        i_chains.update((c.name, c) for c in drop_log_chains(log_limit))
    for port in filtered:
        port_groups = [groups[g] for g in port.security_group_ids if g in groups]
        accept_logged, drop_logged = logging.get(port.device, (frozenset(), False))
        for group in port_groups:
            if f"grp-{group.group_id}-in" not in i_chains:
                g_in, g_out = group_chains(group)
                i_chains[g_in.name], i_chains[g_out.name] = g_in, g_out
            if group.group_id in accept_logged and f"lgrp-{group.group_id}-in" not in i_chains:
                i_chains.update((c.name, c) for c in logged_group_chains(group, log_limit))
        chain_in, chain_out, stateful = port_chains(port, port_groups, accept_logged, drop_logged)
        i_chains[chain_in.name], i_chains[chain_out.name] = chain_in, chain_out
        mark = str(MARK_TAG | marks[port.device])
        ingress_map[mark], egress_map[mark] = f"jump {chain_in.name}", f"jump {chain_out.name}"
        group_key = tuple(g.group_id for g in port_groups)
        rules = group_rules.get(group_key)
        if rules is None:
            rules = group_rules[group_key] = tuple(r for g in port_groups for r in g.rules)
            for group in port_groups:
                referenced |= group_sets(group)
        own = _OWN_ADDRESSES.get(port.device, port, lambda p=port: frozenset(str(n) for _, n in _pairs(p)))
        policies[port.device] = PortPolicy(port.device, zones[port_bridge[port.device]], own, stateful, rules)
    i_chains.update((c.name, c) for c in COMMON_CHAINS)
    i_chains["raw"] = ChainSpec("raw", ("ct zone set iifname map @zones",), "filter prerouting -300")
    # One of our marks without its chain (an element removed by hand) fails closed, not open.
    ours = f"meta mark and {~MARK_MAX & 0xFFFFFFFF:#x} == {MARK_TAG:#x} drop"
    i_chains["egress"] = ChainSpec("egress", ("meta mark vmap @egress_ports", ours, "accept"), "filter prerouting 0")
    i_chains["ingress"] = ChainSpec("ingress", ("meta mark vmap @ingress_ports", ours, "accept"), "filter forward 0")
    sets: dict[str, SetSpec] = {}
    for kind, group_id, version in sorted(referenced):
        source = state.remote_groups if kind == "sg" else state.address_groups
        name = set_name(kind, group_id, version)
        sets[name] = SetSpec(name, "ipv4_addr" if version == 4 else "ipv6_addr",
                             address_elements(source.get(group_id, ()), version))
    inet_table = TableSpec("inet", TABLE, i_chains, sets, {
        "zones": MapSpec("zones", "typeof iifname : ct zone", {b: str(z) for b, z in zones.items()}),
        "egress_ports": MapSpec("egress_ports", "type mark : verdict", egress_map),
        "ingress_ports": MapSpec("ingress_ports", "type mark : verdict", ingress_map)}, limits)
    return Compiled(bridge_table, inet_table, Ids({d: MARK_TAG | m for d, m in marks.items()}, zones), policies)


__all__ = ["LOG_GROUP", "LOG_PREFIX", "LogLimit", "drop_log_chains", "logged_group_chains", "logs_of", "port_logging",
           "MARK_TAG", "TABLE", "ChainSpec", "group_chains", "Compiled", "Ids", "MapSpec", "PortPolicy", "SetSpec", "TableSpec",
           "address_elements", "allocate", "compile_host", "element", "eui64_link_local", "network_bridge",
           "port_chains", "rule_match", "set_name", "spoof_chain"]
