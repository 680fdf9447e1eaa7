"""One object of the qos role: what the kernel holds -> the actions that make it right (pure).

Objects: ``("table", "bridge")`` (the ``neutrino-qos`` bridge table whose prerouting chain jumps,
per tap, to the chain that sets its DSCP mark), ``("table", "pps")`` (the ``neutrino-pps`` bridge
table: packet rate limits) and ``("port", tap)`` (the tap's tbf root qdisc: what the instance
receives; its IFB with a tbf and the tap's ingress redirect: what the instance sends; its DSCP
element; its packet rate chains). Directions are the instance's, as in the API.

Packet rate limits (qos-pps): this kernel has no tc police action (kernel.md), but nftables'
``limit rate over N/second burst B packets drop`` works on bridged frames (docs/kernel-probes.md).
A limit's token bucket lives in its rule, so every port has its own chains: ``pps-out-<tap>``,
entered from ``prerouting`` by the frame's input tap (what the instance sends), and
``pps-in-<tap>``, entered from ``postrouting`` by its output tap (what it receives). The rule's
comment carries rate and burst, so a read tells whether the chain is right.

Minimum bandwidth guarantees are one more object, ``("minbw", "uplinks")``: see :mod:`.uplink`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from neutrino.agent.roles.qos import uplink
from neutrino.agent.roles.qos.uplink import Guarantees, MinbwKernel, UplinkAction
from neutrino.contract.qos import BandwidthLimit, PacketRateLimit, QosPort
from neutrino.dataplane.tc import DeviceShaping, Tbf, ifb_of

TABLE = "neutrino-qos"
PPS_TABLE = "neutrino-pps"
Key = tuple[str, str]
MIN_BURST_PACKETS = 10
# (API direction, chain prefix, map, hook, the frame's device match)
PPS_DIRECTIONS = (("egress", "pps-out-", "pps_from", "prerouting", "iifname"),
                  ("ingress", "pps-in-", "pps_to", "postrouting", "oifname"))


@dataclass(frozen=True, slots=True)
class QosKernel:
    shaping: Mapping[str, DeviceShaping] = field(default_factory=dict)
    ifbs: frozenset[str] = frozenset()
    table: bool = False
    dscp: Mapping[str, str] = field(default_factory=dict)  # tap -> "goto dscp-<mark>"
    pps_table: bool = False
    pps_chains: Mapping[str, str | None] = field(default_factory=dict)  # chain -> its last rule's comment
    pps_maps: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # map -> tap -> "jump <chain>"
    minbw: MinbwKernel = field(default_factory=MinbwKernel)


@dataclass(frozen=True, slots=True)
class SetTbf:
    device: str
    rate_kbit: int
    burst_kbit: int


@dataclass(frozen=True, slots=True)
class ClearRoot:
    device: str


@dataclass(frozen=True, slots=True)
class EnsureIfb:
    name: str


@dataclass(frozen=True, slots=True)
class Redirect:
    device: str
    ifb: str


@dataclass(frozen=True, slots=True)
class ClearIngress:
    device: str


@dataclass(frozen=True, slots=True)
class RemoveIfb:
    name: str


@dataclass(frozen=True, slots=True)
class NftScript:
    text: str


@dataclass(frozen=True, slots=True)
class PpsScript:
    """An ``nft -f`` script of the ``neutrino-pps`` table (run only while that table exists)."""

    text: str


Action = SetTbf | ClearRoot | EnsureIfb | Redirect | ClearIngress | RemoveIfb | NftScript | PpsScript | UplinkAction
Desired = QosPort | Guarantees | str


def burst_kbit(limit: BandwidthLimit) -> int:
    """The burst to configure: the rule's, else 80% of the rate (Neutron's Linux bridge default)."""
    return limit.burst_kbit


def _tbf_right(have: Tbf | None, limit: BandwidthLimit) -> bool:
    if have is None or have.rate_bps != limit.max_kbps * 1000:
        return False
    want = burst_kbit(limit) * 1000 // 8
    return abs(have.burst_bytes - want) <= max(2048, want // 20)  # tc rounds the burst to its clock


def table_script(owner: str) -> str:
    return (f"table bridge {TABLE}\ndelete table bridge {TABLE}\n"
            f'add table bridge {TABLE} {{ comment "{owner}"; }}\n'
            f"add map bridge {TABLE} dscp_ports {{ type ifname : verdict; }}\n"
            f"add chain bridge {TABLE} prerouting {{ type filter hook prerouting priority -150; policy accept; }}\n"
            f"add rule bridge {TABLE} prerouting iifname vmap @dscp_ports\n")


def dscp_script(tap: str, mark: int | None, current: str | None) -> str:
    lines = []
    if current is not None:
        lines.append(f'delete element bridge {TABLE} dscp_ports {{ "{tap}" }}')
    if mark is not None:
        chain = f"dscp-{mark}"
        lines += [f"add chain bridge {TABLE} {chain}", f"flush chain bridge {TABLE} {chain}",
                  f"add rule bridge {TABLE} {chain} ether type ip ip dscp set {mark}",
                  f"add rule bridge {TABLE} {chain} ether type ip6 ip6 dscp set {mark}",
                  f'add element bridge {TABLE} dscp_ports {{ "{tap}" : goto {chain} }}']
    return "\n".join(lines) + "\n"


def pps_burst(limit: PacketRateLimit) -> int:
    """Packets the bucket holds: the rule's burst, else 80% of a second's packets (as the bandwidth
    default), never fewer than a few packets."""
    return max(MIN_BURST_PACKETS, limit.max_burst_kpps * 1000 or int(limit.max_kpps * 1000 * 0.8))


def pps_comment(limit: PacketRateLimit) -> str:
    return f"pps:{limit.max_kpps * 1000}:{pps_burst(limit)}"


def pps_table_script(owner: str) -> str:
    p = f"bridge {PPS_TABLE}"
    lines = [f"table {p}", f"delete table {p}", f'add table {p} {{ comment "{owner}"; }}']
    for _, _, map_name, hook, match in PPS_DIRECTIONS:
        lines += [f"add map {p} {map_name} {{ type ifname : verdict; }}",
                  f"add chain {p} {hook} {{ type filter hook {hook} priority -160; policy accept; }}",
                  f"add rule {p} {hook} {match} vmap @{map_name}"]
    return "\n".join(lines) + "\n"


def pps_script(tap: str, port: QosPort | None, actual: QosKernel) -> str:
    """What makes the tap's packet rate chains and elements right ("" when they are)."""
    p = f"bridge {PPS_TABLE}"
    lines: list[str] = []
    for direction, prefix, map_name, _, _ in PPS_DIRECTIONS:
        limit = (port.egress_pps if direction == "egress" else port.ingress_pps) if port else None
        chain = prefix + tap
        element = (actual.pps_maps.get(map_name) or {}).get(tap)
        if limit is None:
            if element is not None:
                lines.append(f'delete element {p} {map_name} {{ "{tap}" }}')
            if chain in actual.pps_chains:
                lines.append(f"delete chain {p} {chain}")
            continue
        comment = pps_comment(limit)
        if chain not in actual.pps_chains:
            lines.append(f"add chain {p} {chain}")
        if actual.pps_chains.get(chain) != comment:
            lines += [f"flush chain {p} {chain}",
                      f"add rule {p} {chain} limit rate over {limit.max_kpps * 1000}/second burst "
                      f'{pps_burst(limit)} packets drop comment "{comment}"']
        if element != f"jump {chain}":
            if element is not None:
                lines.append(f'delete element {p} {map_name} {{ "{tap}" }}')
            lines.append(f'add element {p} {map_name} {{ "{tap}" : jump {chain} }}')
    return "\n".join(lines) + "\n" if lines else ""


def plan(key: Key, desired: Desired | None, actual: QosKernel) -> tuple[Action, ...]:
    kind, name = key
    if key == uplink.KEY:
        return uplink.plan_uplinks(desired if isinstance(desired, Guarantees) else None, actual.minbw)
    if kind == "table" and name == "pps":
        if desired is None:
            return (PpsScript(f"table bridge {PPS_TABLE}\ndelete table bridge {PPS_TABLE}\n"),) \
                if actual.pps_table else ()
        return () if actual.pps_table else (PpsScript(pps_table_script(str(desired))),)
    if kind == "table":
        if desired is None:
            return (NftScript(f"table bridge {TABLE}\ndelete table bridge {TABLE}\n"),) if actual.table else ()
        return () if actual.table else (NftScript(table_script(str(desired))),)
    port = desired if isinstance(desired, QosPort) else None
    tap, ifb = name, ifb_of(name)
    shaping = actual.shaping.get(tap, DeviceShaping())
    actions: list[Action] = []
    ingress = port.ingress if port else None  # to the instance: the tap's own root qdisc
    if ingress is not None:
        if not _tbf_right(shaping.root, ingress):
            actions.append(SetTbf(tap, ingress.max_kbps, burst_kbit(ingress)))
    elif shaping.root is not None:
        actions.append(ClearRoot(tap))
    egress = port.egress if port else None  # from the instance: the tap's ingress, shaped on the IFB
    if egress is not None:
        if ifb not in actual.ifbs:
            actions.append(EnsureIfb(ifb))
        if not _tbf_right(actual.shaping.get(ifb, DeviceShaping()).root, egress):
            actions.append(SetTbf(ifb, egress.max_kbps, burst_kbit(egress)))
        if not shaping.ingress or ifb not in actual.ifbs:  # a new IFB needs the redirect made again
            actions.append(Redirect(tap, ifb))
    else:
        if shaping.ingress and ifb in actual.ifbs:
            actions.append(ClearIngress(tap))
        if ifb in actual.ifbs:
            actions.append(RemoveIfb(ifb))
    mark = port.dscp_mark if port else None
    current = actual.dscp.get(tap)
    if current != (f"goto dscp-{mark}" if mark is not None else None):
        actions.append(NftScript(dscp_script(tap, mark, current)))
    pps = pps_script(tap, port, actual)
    if pps:
        actions.append(PpsScript(pps))
    return tuple(actions)


def owned(actual: QosKernel) -> set[Key]:
    keys: set[Key] = {("port", dev) for dev, s in actual.shaping.items() if dev.startswith("tap") and s.root}
    keys |= {("port", "tap" + ifb[3:]) for ifb in actual.ifbs}
    keys |= {("port", tap) for tap in actual.dscp}
    keys |= {("port", tap) for elements in actual.pps_maps.values() for tap in elements}
    keys |= {("port", chain.split("-", 2)[2]) for chain in actual.pps_chains if chain.startswith(("pps-out-", "pps-in-"))}
    if actual.table:
        keys.add(("table", "bridge"))
    if actual.pps_table:
        keys.add(("table", "pps"))
    if uplink.owned(actual.minbw):
        keys.add(uplink.KEY)
    return keys


__all__ = ["Action", "ClearIngress", "Desired", "ClearRoot", "EnsureIfb", "Key", "NftScript", "PPS_TABLE", "PpsScript", "QosKernel",
           "Redirect", "RemoveIfb", "SetTbf", "TABLE", "burst_kbit", "ifb_of", "owned", "plan", "pps_burst"]
