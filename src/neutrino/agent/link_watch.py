"""One kernel link-event watch per namespace, shared by every role of the agent process that needs it.

A netlink subscription costs a socket and the parse of every event; two roles watching the same
namespace would pay twice and could see the kernel in two different orders. ``SharedLinkWatch`` holds
the one subscription and a :class:`LinkMirror` of the namespace's links (the watch's snapshot plus
every event after it), and hands each event to its listeners in the order the kernel sent them.
When the subscription fails it is taken up again; listeners hear ``watch_lost`` (the mirror can no
longer be trusted) and ``watch_restored`` (catch up on what was missed, e.g. with a resync).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Iterator
from typing import Protocol

from neutrino.dataplane.netlink import Link, LinkEvent, NetlinkDriver

log = logging.getLogger(__name__)


class LinkMirror:
    """The links of one namespace: a watch snapshot plus every link event applied after it.

    Keyed by interface index, so a rename or a new device reusing a name is never confused with the
    old one.
    """

    def __init__(self) -> None:
        self._by_index: dict[int, Link] = {}

    def reset(self, links: Iterable[Link]) -> None:
        self._by_index = {link.index: link for link in links}

    def apply(self, event: LinkEvent) -> None:
        """Fold one event in. ``overflow`` is handled by the caller (reset from the watch's re-read)."""
        if event.event == "removed":
            self._by_index.pop(event.index, None)
        elif event.event in ("added", "changed") and event.link is not None:
            self._by_index[event.index] = event.link

    def links_by_name(self) -> dict[str, Link]:
        """A copy, safe to hold while events keep arriving."""
        return {link.name: link for link in self._by_index.values()}

    def get(self, name: str) -> Link | None:
        return next((link for link in self._by_index.values() if link.name == name), None)

    def __len__(self) -> int:
        return len(self._by_index)


class LinkListener(Protocol):
    def link_event(self, event: LinkEvent) -> None:
        """One event, after the mirror took it in (``overflow``: the mirror was re-read)."""
        ...

    def watch_lost(self) -> None:
        """The subscription failed (or stopped): until ``watch_restored`` the mirror is not live."""
        ...

    def watch_restored(self) -> None:
        """Subscribed again after a failure: events may have been missed."""
        ...


class SharedLinkWatch:
    """The link events of one namespace (None: the host's own) for every listener of the process."""

    def __init__(self, driver: NetlinkDriver, netns: str | None, *, retry_seconds: float = 1.0) -> None:
        self.driver = driver
        self.netns = netns
        self.mirror = LinkMirror()
        self.live = False
        self._retry_seconds = retry_seconds
        self._listeners: list[LinkListener] = []
        self._recorders: list[list[LinkEvent]] = []
        self._task: asyncio.Task[None] | None = None

    def subscribe(self, listener: LinkListener) -> None:
        if all(known is not listener for known in self._listeners):
            self._listeners.append(listener)

    def unsubscribe(self, listener: LinkListener) -> None:
        self._listeners = [known for known in self._listeners if known is not listener]

    async def start(self) -> None:
        """Subscribe; live (snapshot taken, events flowing) before this returns. Idempotent."""
        if self._task is not None:
            return
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(ready), name=f"link-watch-{self.netns or 'host'}")
        try:
            await ready
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._lose()

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[LinkEvent]]:
        """The events that arrive while the block runs (to lay them over a dump read meanwhile)."""
        during: list[LinkEvent] = []
        self._recorders.append(during)
        try:
            yield during
        finally:
            self._recorders.remove(during)

    def refresh(self, links: Iterable[Link], during: Iterable[LinkEvent]) -> None:
        """Reset the mirror from a fresh dump, with the events seen while it was read laid over it."""
        during = list(during)
        if self.live and not any(event.event == "overflow" for event in during):
            # (after an overflow the watch already reset the mirror from a fresher read)
            self.mirror.reset(links)
            for event in during:
                self.mirror.apply(event)

    async def settle(self) -> None:
        """Let the watch task fold in link events already queued on its socket (each wake-up is one
        poll of the socket, one read, and the parse of everything read)."""
        for _ in range(4):
            await asyncio.sleep(0)

    async def _run(self, ready: asyncio.Future[None]) -> None:
        while True:
            try:
                async with self.driver.watch_links(netns=self.netns) as watch:
                    self.mirror.reset(watch.snapshot)
                    self.live = True
                    if ready.done():
                        for listener in list(self._listeners):
                            listener.watch_restored()
                    else:
                        ready.set_result(None)
                    async for event in watch:
                        for recorder in self._recorders:
                            recorder.append(event)
                        if event.event == "overflow":
                            self.mirror.reset(watch.snapshot)
                        else:
                            self.mirror.apply(event)
                        for listener in list(self._listeners):
                            listener.link_event(event)
            except asyncio.CancelledError:
                self._lose()
                raise
            except Exception as exc:  # noqa: BLE001 - the watch must outlive kernel hiccups
                self._lose()
                if not ready.done():
                    ready.set_exception(exc)
                    return
                log.warning("link watch in %s failed, retrying: %s", self.netns or "the root namespace", exc)
                await asyncio.sleep(self._retry_seconds)

    def _lose(self) -> None:
        was_live, self.live = self.live, False
        if was_live:
            for listener in list(self._listeners):
                listener.watch_lost()


class LinkWatches:
    """The agent process's link watches, one per namespace, made when a role first asks for one."""

    def __init__(self, driver: NetlinkDriver, *, retry_seconds: float = 1.0) -> None:
        self._driver = driver
        self._retry_seconds = retry_seconds
        self._by_netns: dict[str | None, SharedLinkWatch] = {}

    def get(self, netns: str | None) -> SharedLinkWatch:
        watch = self._by_netns.get(netns)
        if watch is None:
            watch = self._by_netns[netns] = SharedLinkWatch(self._driver, netns, retry_seconds=self._retry_seconds)
        return watch

    async def stop(self) -> None:
        for watch in self._by_netns.values():
            await watch.stop()
