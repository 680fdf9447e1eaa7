"""Helpers for kernel tests: unique names with guaranteed cleanup, iproute2 as an independent view,
ping, and waiting for link events."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field

from neutrino.contract.names import checked_device_name, checked_namespace_name
from neutrino.dataplane.netlink import LinkEvent, LinkWatch


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run iproute2 `ip` (an independent view of the kernel for setup and assertions)."""
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=20)


async def run_in_namespace(netns: str, *argv: str, timeout: float = 15) -> subprocess.CompletedProcess[bytes]:
    process = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", netns, *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return subprocess.CompletedProcess(list(argv), process.returncode or 0, stdout, stderr)


async def ping(netns: str, address: str, deadline_seconds: int = 5) -> subprocess.CompletedProcess[bytes]:
    """Ping until the first reply or the deadline: waits on connectivity, never a fixed sleep."""
    return await run_in_namespace(netns, "ping", "-n", "-c", "1", "-w", str(deadline_seconds), address)


async def next_event(
    watch: LinkWatch, matches: Callable[[LinkEvent], bool], timeout: float = 5.0
) -> tuple[LinkEvent, list[LinkEvent]]:
    """The first event that matches, and every event seen before it."""
    seen: list[LinkEvent] = []
    async with asyncio.timeout(timeout):
        async for event in watch:
            if matches(event):
                return event, seen
            seen.append(event)
    raise AssertionError(f"watch ended before a matching event; saw {seen}")


@dataclass
class Scratch:
    """Unique names for one test, and the namespaces to delete after it."""

    suffix: str
    namespaces: list[str] = field(default_factory=list)

    def namespace(self, role: str) -> str:
        name = checked_namespace_name(f"ntest-{self.suffix}-{role}")
        self.namespaces.append(name)
        return name

    def device(self, role: str) -> str:
        return checked_device_name(f"{role}{self.suffix}")

    def cleanup(self) -> None:
        for name in self.namespaces:
            # Processes a test started inside its own namespace (ping) would keep it alive.
            pids = ip("netns", "pids", name, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), 9)
                except (ProcessLookupError, ValueError):
                    pass
            ip("netns", "delete", name, check=False)


def new_scratch() -> Scratch:
    # 6 hex characters: device names like "tap" + suffix + 2 stay well under 15 characters.
    return Scratch(suffix=secrets.token_hex(3))
