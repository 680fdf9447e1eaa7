"""Bandwidth limits per IPv4 address on one device (a router's ``qg-``: floating IPs, the gateway
IP), with ``tc`` (docs/kernel-probes.md, "Per-address bandwidth limits").

This kernel has no police action, so the limits shape: what the device sends from an address
goes through our HTB root qdisc (handle ``4e51:``), one class per address chosen by a u32 match on
the source, other traffic unclassified and so sent on unshaped; what it receives for an address
is redirected from its ingress qdisc by a u32 match on the destination to an IFB, whose HTB root
qdisc has the same classes matched on the destination, and handed back.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from neutrino.contract.names import checked_device_name
from neutrino.dataplane.commands import run_in
from neutrino.dataplane.tc import HANDLE, INGRESS, TcDriver, TcError

# u32 keys of an IPv4 header: 12 is the source address, 16 the destination.
SOURCE, DESTINATION = 12, 16
_RATE_UNITS = {"": 1, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4}
_SIZE_UNITS = {"": 1, "K": 1000, "M": 1000**2, "G": 1000**3}  # iproute2 6.1 prints "125Kb" for 125000
_CLASS = re.compile(r"class htb (\S+) .*?\brate (\d+(?:\.\d+)?)([KMGT]?)bit\b.*?\bburst (\d+(?:\.\d+)?)([KMG]?)b\b")


@dataclass(frozen=True, slots=True)
class ShapedAddress:
    """One address's HTB class as read back: rate in bit/s, burst in bytes."""

    address: str
    rate_bps: int
    burst_bytes: int


@dataclass(frozen=True, slots=True)
class AddressLimit:
    """A bandwidth limit on the IPv4 traffic of one address: rate and burst in kbit(/s)."""

    address: str
    rate_kbit: int
    burst_kbit: int

    def held_by(self, have: ShapedAddress) -> bool:
        """Whether the kernel's class is this limit (tc rounds the burst to its clock)."""
        want = self.burst_kbit * 1000 // 8
        return (have.address == self.address and have.rate_bps == self.rate_kbit * 1000
                and abs(have.burst_bytes - want) <= max(2048, want // 20))


@dataclass(frozen=True, slots=True)
class AddressShaping:
    """Per-address limits on one device as the kernel holds them: ``egress`` (what it sends),
    ``ingress`` (what it receives, through its IFB)."""

    egress: frozenset[ShapedAddress] = frozenset()
    ingress: frozenset[ShapedAddress] = frozenset()
    root: bool = False  # our HTB root qdisc is on the device
    redirect: bool = False  # an ingress qdisc is on the device


def parse_class_bursts(listing: str) -> dict[str, tuple[int, int]]:
    """``tc class show`` (text: iproute2 6.1 prints HTB classes as text even with ``-j``) as
    classid -> (rate bit/s, burst bytes)."""
    return {m[1]: (int(float(m[2]) * _RATE_UNITS[m[3]]), int(float(m[4]) * _SIZE_UNITS[m[5]]))
            for m in _CLASS.finditer(listing)}


def parse_u32_addresses(listing: list[dict[str, Any]], offset: int) -> dict[str, str]:
    """``tc -j filter show`` as address -> flowid (or the device a mirred action redirects to) of
    the u32 filters matching one full IPv4 address at ``offset``."""
    out = {}
    for f in listing:
        options = f.get("options") or {}
        match = options.get("match") or {}
        if f.get("kind") != "u32" or match.get("off") != offset or match.get("mask") != "ffffffff":
            continue
        target = options.get("flowid") or next(
            (a.get("to_dev") for a in options.get("actions") or () if a.get("kind") == "mirred"), None)
        if target:
            out[str(ipaddress.IPv4Address(int(match["value"], 16)))] = target
    return out


class AddressShaper:
    """Reads and sets the per-address limits of a device (``tc`` does the qdiscs and the IFB)."""

    def __init__(self, tc: TcDriver) -> None:
        self.tc = tc

    async def _run(self, netns: str | None, *argv: str) -> str:
        return await run_in(self.tc.netns_dir, netns, *argv, error=TcError)

    async def _classes(self, device: str, netns: str | None, offset: int) -> frozenset[ShapedAddress]:
        dev = checked_device_name(device)
        classes = parse_class_bursts(await self._run(netns, "tc", "class", "show", "dev", dev))
        filters = json.loads(await self._run(netns, "tc", "-j", "filter", "show", "dev", dev, "parent", HANDLE) or "[]")
        return frozenset(ShapedAddress(address, *classes[flowid])
                         for address, flowid in parse_u32_addresses(filters, offset).items() if flowid in classes)

    async def read(self, device: str, ifb: str, *, netns: str | None = None) -> AddressShaping:
        """What :meth:`shape` holds on ``device`` (and its ``ifb``), read back."""
        qdiscs = json.loads(await self._run(netns, "tc", "-j", "qdisc", "show") or "[]")

        def ours(dev: str) -> bool:
            return any(q.get("dev") == dev and q.get("kind") == "htb" and q.get("handle") == HANDLE for q in qdiscs)

        root, redirect = ours(device), any(q.get("dev") == device and q.get("kind") == "ingress" for q in qdiscs)
        egress = await self._classes(device, netns, SOURCE) if root else frozenset()
        ingress: frozenset[ShapedAddress] = frozenset()
        if redirect and ours(ifb):
            redirected = parse_u32_addresses(json.loads(await self._run(
                netns, "tc", "-j", "filter", "show", "dev", checked_device_name(device), "ingress") or "[]"),
                DESTINATION)
            ingress = frozenset(c for c in await self._classes(ifb, netns, DESTINATION)
                                if redirected.get(c.address) == ifb)
        return AddressShaping(egress, ingress, root, redirect)

    async def _htb(self, device: str, limits: Sequence[AddressLimit], offset: int, netns: str | None) -> None:
        dev = checked_device_name(device)
        await self.tc.clear_root(dev, netns=netns)
        await self._run(netns, "tc", "qdisc", "add", "dev", dev, "root", "handle", HANDLE, "htb")
        match = "src" if offset == SOURCE else "dst"
        for number, limit in enumerate(limits, start=1):
            classid = f"{HANDLE}{number:x}"
            rate, burst = f"{limit.rate_kbit}kbit", f"{limit.burst_kbit}kbit"
            await self._run(netns, "tc", "class", "add", "dev", dev, "parent", HANDLE, "classid", classid, "htb",
                            "rate", rate, "ceil", rate, "burst", burst, "cburst", burst)
            await self._run(netns, "tc", "filter", "add", "dev", dev, "parent", HANDLE, "protocol", "ip", "pref", "1",
                            "u32", "match", "ip", match, f"{ipaddress.IPv4Address(limit.address)}/32",
                            "flowid", classid)

    async def shape(self, device: str, ifb: str, egress: Sequence[AddressLimit], ingress: Sequence[AddressLimit], *,
                    netns: str | None = None) -> None:
        """Limit what ``device`` sends from each address of ``egress`` and what it receives for each
        of ``ingress`` (through ``ifb``); rebuilt as a whole, so nothing else stays."""
        if egress:
            await self._htb(device, egress, SOURCE, netns)
        else:
            await self.tc.clear_root(device, netns=netns)
        await self.tc.clear_ingress(device, netns=netns)
        if not ingress:
            await self.tc.remove_ifb(ifb, netns=netns)
            return
        await self.tc.ensure_ifb(ifb, netns=netns)
        await self._htb(ifb, ingress, DESTINATION, netns)
        dev = checked_device_name(device)
        await self._run(netns, "tc", "qdisc", "add", "dev", dev, "handle", INGRESS, "ingress")
        for limit in ingress:
            await self._run(netns, "tc", "filter", "add", "dev", dev, "parent", INGRESS, "protocol", "ip", "pref", "1",
                            "u32", "match", "ip", "dst", f"{ipaddress.IPv4Address(limit.address)}/32",
                            "action", "mirred", "egress", "redirect", "dev", checked_device_name(ifb))


__all__ = ["DESTINATION", "SOURCE", "AddressLimit", "AddressShaper", "AddressShaping", "ShapedAddress",
           "parse_class_bursts", "parse_u32_addresses"]
