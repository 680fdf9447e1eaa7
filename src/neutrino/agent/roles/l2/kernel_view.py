"""The l2 role's view of the kernel: the links of the host namespace and the FDB of its VXLAN devices.

Reading every link with a netlink dump costs about a millisecond per link (pyroute2 decodes every
attribute), so a host with a thousand taps would spend over a second per resync just looking. The
role therefore uses the process's shared link watch (``neutrino.agent.link_watch``) and its
:class:`LinkMirror`: the watch's snapshot, updated by every link event
after it (the watch re-reads by itself when the kernel drops events). The mirror can lag the
kernel only by the events still queued on the watch socket; a plan made from such a view asks only
for idempotent changes the driver finds already done, or for wiring that the pending event's own
handling also does, so lag costs calls, never correctness. A full dump still refreshes the mirror
now and then (see the role). FDB entries have no such event feed here; see :class:`FdbMemory`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from neutrino.dataplane.netlink import Link, LinkNotFound, NetlinkDriver


@dataclass(frozen=True, slots=True)
class KernelView:
    """The actual state the planner compares with the desired one.

    ``links`` are the devices of the host namespace by name. ``fdb`` holds, per VXLAN device that
    was read, the (MAC, remote VTEP) pairs of its entries that have a remote destination; a device
    absent from it has no such entries as far as the planner is concerned.
    """

    links: Mapping[str, Link]
    fdb: Mapping[str, frozenset[tuple[str, str]]] = field(default_factory=dict)
    # The planner's memo of how each network lies on these links (a thousand taps of one network
    # are planned against one layout, not a thousand equal ones).
    layouts: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)


async def read_links(driver: NetlinkDriver, *, netns: str | None) -> dict[str, Link]:
    """Every link of the namespace, from a fresh dump."""
    return {link.name: link for link in await driver.list_links(netns=netns)}


async def read_fdb(
    driver: NetlinkDriver, devices: Iterable[str], *, netns: str | None, concurrency: int = 8
) -> dict[str, frozenset[tuple[str, str]]]:
    """The remote-destination FDB entries of each device; a device that vanished is left out."""
    gate = asyncio.Semaphore(concurrency)

    async def one(device: str) -> tuple[str, frozenset[tuple[str, str]]] | None:
        async with gate:
            try:
                entries = await driver.list_fdb(device, netns=netns)
            except LinkNotFound:
                return None
        return device, frozenset((e.mac, str(e.dst)) for e in entries if e.dst is not None)

    found = await asyncio.gather(*(one(device) for device in sorted(set(devices))))
    return dict(item for item in found if item is not None)


class FdbMemory:
    """The remote-destination FDB entries of our VXLAN devices, as last read or changed by us.

    Reading one device's FDB with the driver dumps every FDB entry of the namespace (each tap adds
    its own multicast entries), which costs a third of a second on a host with a thousand taps; so
    the role remembers instead of re-reading on every resync. The memory is trusted only while the
    link watch runs: the watch makes it forget a device the moment that device is removed or
    (re)created, so nothing remembered outlives the device it was about. Our VXLAN devices do not
    learn, so besides us only an operator writes these entries, and the periodic full read (see
    the role) catches that.
    """

    def __init__(self) -> None:
        self._known: dict[str, frozenset[tuple[str, str]]] = {}

    def get(self, device: str) -> frozenset[tuple[str, str]] | None:
        return self._known.get(device)

    def learn(self, device: str, entries: frozenset[tuple[str, str]]) -> None:
        self._known[device] = entries

    def add(self, device: str, mac: str, dst: str) -> None:
        if device in self._known:
            self._known[device] = self._known[device] | {(mac, dst)}

    def discard(self, device: str, mac: str, dst: str) -> None:
        if device in self._known:
            self._known[device] = self._known[device] - {(mac, dst)}

    def forget(self, device: str) -> None:
        self._known.pop(device, None)

    def forget_all(self) -> None:
        self._known.clear()
