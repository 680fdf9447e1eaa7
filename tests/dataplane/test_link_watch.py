"""The agent process's shared link watch: one subscription per namespace, every role hears every event."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from kernel_scratch import Scratch, ip

from neutrino.agent.link_watch import LinkWatches
from neutrino.dataplane.netlink import LinkEvent, NetlinkDriver

pytestmark = pytest.mark.kernel


@dataclass
class Listener:
    events: list[LinkEvent] = field(default_factory=list)
    lost: int = 0
    restored: int = 0

    def link_event(self, event: LinkEvent) -> None:
        self.events.append(event)

    def watch_lost(self) -> None:
        self.lost += 1

    def watch_restored(self) -> None:
        self.restored += 1


async def test_two_roles_share_one_watch_and_both_hear_each_event_after_the_mirror_has_it(
    scratch: Scratch, driver: NetlinkDriver
) -> None:
    netns = scratch.namespace("watch")
    ip("netns", "add", netns)
    watches = LinkWatches(driver)
    first, second = Listener(), Listener()
    watch = watches.get(netns)
    assert watches.get(netns) is watch  # one per namespace, whoever asks
    seen_in_mirror: list[bool] = []

    class Checking(Listener):
        def link_event(self, event: LinkEvent) -> None:
            super().link_event(event)
            seen_in_mirror.append(watch.mirror.get(event.name) is not None or event.event == "removed")

    third = Checking()
    for listener in (first, second, third):
        watch.subscribe(listener)
    await watch.start()
    await watch.start()  # a second role starting it changes nothing
    try:
        assert watch.live and watch.mirror.get("lo") is not None  # the snapshot is in before start returns
        bridge = scratch.device("brw")
        await driver.ensure_bridge(bridge, netns=netns, mtu=1400)
        try:
            async with asyncio.timeout(10):
                while not all(any(e.name == bridge and e.event == "added" for e in x.events)
                              for x in (first, second, third)):
                    await asyncio.sleep(0.01)
        except TimeoutError:
            raise AssertionError([(e.name, e.event) for e in first.events]) from None
        assert [e.name for e in first.events] == [e.name for e in second.events]
        assert all(seen_in_mirror)
        assert watch.mirror.get(bridge) is not None
    finally:
        await watches.stop()
    assert (first.lost, second.lost) == (1, 1) and not watch.live
