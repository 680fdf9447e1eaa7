"""Minimum bandwidth guarantees on a host's uplinks (pure): what the kernel holds -> the actions.

Neutron's Open vSwitch agent enforces only egress minimums, and only for ports of physical
(flat/VLAN) networks: a ``linux-htb`` QoS on the physical bridge's ports with one queue per port
(``min-rate`` the rule's ``min_kbps``), packets steered into their port's queue by the flows of the
integration bridge. Ingress minimums and minimum packet rates are Placement-only in every Neutron
driver (docs/architecture.md, "Minimum bandwidth").

The same here, with the uplink's capacity known: the operator states it as Neutron's agents do,
``resource_provider_bandwidths`` (``device:egress:ingress`` in kbit/s, ``[agent]``; Neutron's
``rp_tunnelled`` entry is the capacity of the tunnels' underlay, the interface holding the agent's
``tunnel_ip``: unlike Neutron's agents, VXLAN ports get their guarantee there, because the packet's
priority survives encapsulation, docs/kernel-probes.md). On a
configured uplink that carries at least one guarantee the role keeps an htb tree (``dataplane.tc``):
root class at the configured egress rate (the ceiling htb shares: set it at or below the real
link's rate, or the queue builds in the NIC where htb cannot order it), one class per guaranteed
port (rate: its minimum, ceil: the uplink) and a default class for everything else (rate: what the
guarantees leave, at least ``FLOOR_KBIT``). The bridge table ``neutrino-minbw`` maps each guaranteed
tap to its class through ``meta priority`` (the firewall role owns the packet mark).

One object holds all of it (``KEY``): class numbers are allocated per uplink, and the tap -> class
map is shared, so splitting per port would let two new ports take the same class in one round.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from neutrino.contract.names import checked_device_name
from neutrino.dataplane.tc import DEFAULT_CLASS, ROOT_CLASS, HtbClass, priority_of

TABLE = "neutrino-minbw"
MAP = "ports"
KEY = ("minbw", "uplinks")
TUNNELLED = "rp_tunnelled"  # Neutron's resource provider name for the tunnels' bandwidth
FLOOR_KBIT = 8  # the default class's rate when the guarantees take the whole uplink
FIRST_PORT_CLASS = 2


@dataclass(frozen=True, slots=True)
class UplinkBandwidth:
    """One ``resource_provider_bandwidths`` entry: the device's capacity per direction (kbit/s)."""

    egress_kbps: int | None = None
    ingress_kbps: int | None = None


def parse_resource_provider_bandwidths(entries: Iterable[str]) -> dict[str, UplinkBandwidth]:
    """``["eth1:20000:20000", "eth2::100000"]`` (Neutron's ``device:egress:ingress``, either
    direction may be left empty) as a mapping; a device given twice is an error."""
    out: dict[str, UplinkBandwidth] = {}
    for entry in entries:
        parts = entry.strip().split(":")
        if len(parts) != 3 or not parts[0].strip():
            raise ValueError(f"resource provider bandwidth {entry!r} is not 'device:egress:ingress'")
        device = checked_device_name(parts[0].strip())
        if device in out:
            raise ValueError(f"device {device!r} is given twice in resource_provider_bandwidths")
        values: list[int | None] = []
        for text in parts[1:]:
            text = text.strip()
            if text and (not text.isdigit() or int(text) <= 0):
                raise ValueError(f"resource provider bandwidth {entry!r}: {text!r} is not a positive kbit/s count")
            values.append(int(text) if text else None)
        out[device] = UplinkBandwidth(values[0], values[1])
    return out


@dataclass(frozen=True, slots=True)
class Uplink:
    """One uplink's wanted tree: its configured egress rate and its ports' guarantees."""

    device: str
    rate_kbit: int
    guarantees: tuple[tuple[str, int], ...]  # (tap, minimum kbit/s), sorted by tap

    @property
    def guaranteed_kbit(self) -> int:
        return sum(minimum for _, minimum in self.guarantees)


@dataclass(frozen=True, slots=True)
class Guarantees:
    """The desired value of ``KEY``."""

    owner: str
    uplinks: tuple[Uplink, ...]


@dataclass(frozen=True, slots=True)
class MinbwKernel:
    table: bool = False
    elements: Mapping[str, str] = field(default_factory=dict)  # tap -> "4e51:<minor>"
    trees: Mapping[str, Mapping[int, HtbClass]] = field(default_factory=dict)  # device with our htb root


@dataclass(frozen=True, slots=True)
class MinbwScript:
    """An ``nft -f`` script of the ``neutrino-minbw`` table."""

    text: str


@dataclass(frozen=True, slots=True)
class SetHtbRoot:
    device: str


@dataclass(frozen=True, slots=True)
class SetHtbClass:
    device: str
    minor: int
    rate_kbit: int
    ceil_kbit: int


@dataclass(frozen=True, slots=True)
class DeleteHtbClass:
    device: str
    minor: int


@dataclass(frozen=True, slots=True)
class ClearHtb:
    device: str


UplinkAction = MinbwScript | SetHtbRoot | SetHtbClass | DeleteHtbClass | ClearHtb


def table_script(owner: str) -> str:
    p = f"bridge {TABLE}"
    return (f"table {p}\ndelete table {p}\n"
            f'add table {p} {{ comment "{owner}"; }}\n'
            f"add map {p} {MAP} {{ type ifname : classid; }}\n"
            f"add chain {p} prerouting {{ type filter hook prerouting priority -150; policy accept; }}\n"
            f"add rule {p} prerouting meta priority set iifname map @{MAP}\n")


def _minor(value: str | None) -> int | None:
    if not value or not value.startswith("4e51:"):
        return None
    try:
        return int(value[5:], 16)
    except ValueError:
        return None


def allocate(uplink: Uplink, elements: Mapping[str, str]) -> dict[str, int]:
    """Each guaranteed tap's class: the one it has, else the lowest free one."""
    assigned: dict[str, int] = {}
    for tap, _ in uplink.guarantees:
        minor = _minor(elements.get(tap))
        if minor is not None and FIRST_PORT_CLASS <= minor < DEFAULT_CLASS and minor not in assigned.values():
            assigned[tap] = minor
    free = (m for m in range(FIRST_PORT_CLASS, DEFAULT_CLASS) if m not in set(assigned.values()))
    for tap, _ in uplink.guarantees:
        if tap not in assigned:
            assigned[tap] = next(free)
    return assigned


def wanted_classes(uplink: Uplink, assigned: Mapping[str, int]) -> dict[int, HtbClass]:
    rate = uplink.rate_kbit
    classes = {ROOT_CLASS: HtbClass(rate, rate),
               DEFAULT_CLASS: HtbClass(max(FLOOR_KBIT, rate - uplink.guaranteed_kbit), rate)}
    for tap, minimum in uplink.guarantees:
        classes[assigned[tap]] = HtbClass(min(minimum, rate), rate)
    return classes


def plan_uplinks(desired: Guarantees | None, actual: MinbwKernel) -> tuple[UplinkAction, ...]:
    if desired is None or not desired.uplinks:
        gone: list[UplinkAction] = [MinbwScript(f"table bridge {TABLE}\ndelete table bridge {TABLE}\n")] \
            if actual.table else []
        return (*gone, *(ClearHtb(device) for device in sorted(actual.trees)))
    actions: list[UplinkAction] = []
    assigned: dict[str, int] = {}
    tc: list[UplinkAction] = []
    for uplink in desired.uplinks:
        mine = allocate(uplink, actual.elements)
        assigned.update(mine)
        tree = actual.trees.get(uplink.device)
        if tree is None:
            tc.append(SetHtbRoot(uplink.device))
            tree = {}
        want = wanted_classes(uplink, mine)
        for minor in sorted(want, key=lambda m: (m != ROOT_CLASS, m)):  # the root class first: the others hang on it
            if tree.get(minor) != want[minor]:
                tc.append(SetHtbClass(uplink.device, minor, want[minor].rate_kbit, want[minor].ceil_kbit))
        tc += [DeleteHtbClass(uplink.device, minor) for minor in sorted(tree) if minor not in want]
    p = f"bridge {TABLE}"
    lines = [] if actual.table else [table_script(desired.owner).rstrip("\n")]
    elements = actual.elements if actual.table else {}
    lines += [f'delete element {p} {MAP} {{ "{tap}" }}' for tap, value in sorted(elements.items())
              if tap not in assigned or value != priority_of(assigned[tap])]
    lines += [f'add element {p} {MAP} {{ "{tap}" : {priority_of(minor)} }}' for tap, minor in sorted(assigned.items())
              if elements.get(tap) != priority_of(minor)]
    if lines:
        actions.append(MinbwScript("\n".join(lines) + "\n"))
    wanted_devices = {u.device for u in desired.uplinks}
    return (*actions, *tc, *(ClearHtb(device) for device in sorted(actual.trees) if device not in wanted_devices))


def owned(actual: MinbwKernel) -> bool:
    return actual.table or bool(actual.trees)


__all__ = ["ClearHtb", "DeleteHtbClass", "FLOOR_KBIT", "Guarantees", "KEY", "MAP", "MinbwKernel", "MinbwScript",
           "SetHtbClass", "SetHtbRoot", "TABLE", "TUNNELLED", "Uplink", "UplinkAction", "UplinkBandwidth", "allocate",
           "owned", "parse_resource_provider_bandwidths", "plan_uplinks", "table_script", "wanted_classes"]
