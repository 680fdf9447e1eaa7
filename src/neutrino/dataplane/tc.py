"""Traffic shaping of a tap with ``tc``, and the IFB devices that shape what an instance sends.

What this kernel offers (kernel.md): tbf, htb, the ingress qdisc, the u32 classifier and the
mirred action with IFB; no police action, no matchall. So traffic *to* an instance is shaped by a
tbf root qdisc on its tap; traffic *from* it enters the host on the tap's ingress, where a u32
match-all filter redirects it to an IFB device whose tbf root qdisc shapes it, after which the IFB
hands it back to the tap's receive path (the bridge and the firewall still see it as the tap's).

Minimum bandwidth (egress guarantees): an htb root qdisc on the host's uplink device (the
physical interface of a flat network's bridge), a root class at the uplink's configured rate, one
class per guaranteed port (rate: its minimum, ceil: the uplink) and a default class for the rest.
Packets find their class by ``skb->priority``, which the qos role's bridge table sets per tap
(htb takes a priority naming one of its leaf classes as the class: no tc filter needed).

Our qdiscs carry the handle ``4e51:``, so what another program put on a device is never taken
for ours; the IFB devices carry the owner's interface alias, as every device Neutrino makes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neutrino.contract.names import checked_device_name
from neutrino.dataplane.commands import run_in
from neutrino.dataplane.netlink import NETNS_DIR, NetlinkDriverError
from neutrino.dataplane.ownership import OwnerTag

HANDLE = "4e51:"
# What tc says when there is no qdisc to delete (the wording differs by qdisc and version).
NO_QDISC = ("No such file", "Cannot find device", "Invalid handle", "Cannot delete qdisc", "Cannot find specified qdisc")
INGRESS = "ffff:"
LATENCY = "50ms"
ROOT_CLASS = 1  # 4e51:1, the uplink's rate; every other class is its child
DEFAULT_CLASS = 0xFFFF  # 4e51:ffff, traffic without a guarantee
_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_HTB_CLASS = re.compile(r"^class htb 4e51:([0-9a-f]+) .*?\brate (\d+)([KMGT]?)bit ceil (\d+)([KMGT]?)bit", re.M)


class TcError(NetlinkDriverError):
    pass


@dataclass(frozen=True, slots=True)
class Tbf:
    """A tbf qdisc as the kernel holds it: rate in bit/s, burst in bytes."""

    rate_bps: int
    burst_bytes: int


@dataclass(frozen=True, slots=True)
class HtbClass:
    """One class of our htb tree: rate and ceil in kbit/s."""

    rate_kbit: int
    ceil_kbit: int


@dataclass(frozen=True, slots=True)
class DeviceShaping:
    root: Tbf | None = None  # our tbf root qdisc
    ingress: bool = False  # an ingress qdisc (where the redirect to the IFB hangs)
    htb: bool = False  # our htb root qdisc (an uplink carrying minimum bandwidth guarantees)


def parse_qdiscs(listing: list[dict[str, Any]]) -> dict[str, DeviceShaping]:
    """``tc -j qdisc show`` as our shaping per device."""
    out: dict[str, DeviceShaping] = {}
    for q in listing:
        dev = q.get("dev")
        if not dev:
            continue
        current = out.get(dev, DeviceShaping())
        if q.get("kind") == "tbf" and q.get("handle") == HANDLE and q.get("root"):
            options = q.get("options") or {}
            current = DeviceShaping(Tbf(int(options.get("rate", 0)) * 8, int(options.get("burst", 0))),
                                    current.ingress, current.htb)
        elif q.get("kind") == "htb" and q.get("handle") == HANDLE and q.get("root"):
            current = DeviceShaping(current.root, current.ingress, True)
        elif q.get("kind") == "ingress":
            current = DeviceShaping(current.root, True, current.htb)
        out[dev] = current
    return out


def parse_htb_classes(listing: str) -> dict[int, HtbClass]:
    """``tc class show dev D`` (text: this iproute2 prints no JSON for classes) as our classes by minor."""
    return {int(m[1], 16): HtbClass(int(m[2]) * _UNITS[m[3]] // 1000, int(m[4]) * _UNITS[m[5]] // 1000)
            for m in _HTB_CLASS.finditer(listing)}


def priority_of(minor: int) -> str:
    """The class id a packet's ``skb->priority`` names to land in class ``minor`` of our htb."""
    return f"{HANDLE}{minor:x}"


def ifb_of(tap: str) -> str:
    """The IFB of a tap: the same 11 characters of the port id (``contract.names.ifb_name``)."""
    return "ifb" + tap[3:]


class TcDriver:
    def __init__(self, owner: OwnerTag, netns_dir: Path = NETNS_DIR) -> None:
        self.owner = owner
        self.netns_dir = netns_dir

    async def _run(self, netns: str | None, *argv: str, tolerate: tuple[str, ...] = ()) -> str:
        return await run_in(self.netns_dir, netns, *argv, tolerate=tolerate, error=TcError)

    async def shaping(self, *, netns: str | None = None) -> dict[str, DeviceShaping]:
        return parse_qdiscs(json.loads(await self._run(netns, "tc", "-j", "qdisc", "show") or "[]"))

    async def owned_ifbs(self, *, netns: str | None = None) -> set[str]:
        links = json.loads(await self._run(netns, "ip", "-j", "-d", "link", "show", "type", "ifb") or "[]")
        return {link["ifname"] for link in links if self.owner.owns(link.get("ifalias"))}

    async def set_tbf(self, device: str, rate_kbit: int, burst_kbit: int, *, netns: str | None = None) -> None:
        """The device's root qdisc becomes our tbf (replaced in place: no gap without shaping)."""
        await self._run(netns, "tc", "qdisc", "replace", "dev", checked_device_name(device), "root", "handle", HANDLE,
                        "tbf", "rate", f"{rate_kbit}kbit", "burst", f"{burst_kbit}kbit", "latency", LATENCY)

    async def clear_root(self, device: str, *, netns: str | None = None) -> None:
        await self._run(netns, "tc", "qdisc", "del", "dev", checked_device_name(device), "root",
                        tolerate=NO_QDISC)

    async def ensure_ifb(self, name: str, *, netns: str | None = None) -> None:
        await self._run(netns, "ip", "link", "add", checked_device_name(name), "type", "ifb", tolerate=("File exists",))
        await self._run(netns, "ip", "link", "set", name, "alias", self.owner.alias, "up")

    async def remove_ifb(self, name: str, *, netns: str | None = None) -> None:
        await self._run(netns, "ip", "link", "del", checked_device_name(name), tolerate=("Cannot find device",))

    async def redirect_ingress(self, device: str, ifb: str, *, netns: str | None = None) -> None:
        """Everything the device receives goes through ``ifb`` first (u32 match-all, mirred)."""
        dev = checked_device_name(device)
        await self._run(netns, "tc", "qdisc", "replace", "dev", dev, "handle", INGRESS, "ingress")
        await self._run(netns, "tc", "filter", "replace", "dev", dev, "parent", INGRESS, "protocol", "all", "pref",
                        "1", "u32", "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev",
                        checked_device_name(ifb))

    async def device_with_address(self, address: str, *, netns: str | None = None) -> str | None:
        """The device holding ``address`` (a tunnel endpoint's: its encapsulated packets leave there)."""
        found = json.loads(await self._run(netns, "ip", "-j", "addr", "show", "to", address) or "[]")
        return next((str(link["ifname"]) for link in found if link.get("addr_info")), None)

    async def htb_classes(self, device: str, *, netns: str | None = None) -> dict[int, HtbClass]:
        return parse_htb_classes(await self._run(netns, "tc", "class", "show", "dev", checked_device_name(device),
                                                 tolerate=("Cannot find device",)))

    async def set_htb_root(self, device: str, *, netns: str | None = None) -> None:
        """The device's root qdisc becomes our htb; what no class claims goes to the default class."""
        await self._run(netns, "tc", "qdisc", "replace", "dev", checked_device_name(device), "root", "handle", HANDLE,
                        "htb", "default", f"{DEFAULT_CLASS:x}")

    async def set_htb_class(self, device: str, minor: int, rate_kbit: int, ceil_kbit: int, *,
                            netns: str | None = None) -> None:
        """Class ``minor`` (made or changed in place): the root class under the qdisc, others under it."""
        parent = HANDLE if minor == ROOT_CLASS else priority_of(ROOT_CLASS)
        await self._run(netns, "tc", "class", "replace", "dev", checked_device_name(device), "parent", parent,
                        "classid", priority_of(minor), "htb", "rate", f"{rate_kbit}kbit", "ceil", f"{ceil_kbit}kbit",
                        "quantum", "1514")

    async def delete_htb_class(self, device: str, minor: int, *, netns: str | None = None) -> None:
        await self._run(netns, "tc", "class", "del", "dev", checked_device_name(device), "classid", priority_of(minor),
                        tolerate=("No such file", "Cannot find device", "Invalid handle"))

    async def clear_ingress(self, device: str, *, netns: str | None = None) -> None:
        await self._run(netns, "tc", "qdisc", "del", "dev", checked_device_name(device), "handle", INGRESS, "ingress",
                        tolerate=NO_QDISC)


__all__ = ["DEFAULT_CLASS", "DeviceShaping", "HANDLE", "NO_QDISC", "HtbClass", "ROOT_CLASS", "Tbf", "TcDriver", "TcError", "ifb_of",
           "parse_htb_classes", "parse_qdiscs", "priority_of"]
