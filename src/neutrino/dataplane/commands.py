"""Running an iproute2 program in a network namespace (``nsenter --net``), for what pyroute2 does
not cover well: tc qdiscs, classes and u32 filters, proxy neighbour entries."""

from __future__ import annotations

import asyncio
from pathlib import Path

from neutrino.contract.names import checked_namespace_name
from neutrino.dataplane.netlink import NamespaceNotFound, NetlinkDriverError


async def run_in(netns_dir: Path, netns: str | None, *argv: str, tolerate: tuple[str, ...] = (),
                 error: type[NetlinkDriverError] = NetlinkDriverError) -> str:
    """The program's output; ``error`` when it fails with a message none of ``tolerate`` is part of."""
    if netns is not None:
        path = netns_dir / checked_namespace_name(netns)
        if not path.exists():
            raise NamespaceNotFound(netns)
        argv = ("nsenter", f"--net={path}", *argv)
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    text = err.decode().strip()
    if proc.returncode and not any(t in text for t in tolerate):
        raise error(f"{' '.join(argv)} failed: {text}")
    return out.decode()


__all__ = ["run_in"]
