"""Connection tracking entries of a namespace, read and deleted with the ``conntrack`` tool.

Kept apart from the nftables driver: rules decide what may start, entries are what already did,
and deleting an entry is how a removed rule stops a connection it had let in.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from neutrino.contract.names import checked_namespace_name
from neutrino.dataplane.netlink import NETNS_DIR, NamespaceNotFound, NetlinkDriverError


class ConntrackError(NetlinkDriverError):
    pass


class ConntrackDriver:
    def __init__(self, netns_dir: Path = NETNS_DIR, conntrack: str = "conntrack") -> None:
        self.netns_dir = netns_dir
        self.conntrack = conntrack

    async def _run(self, netns: str | None, args: list[str]) -> tuple[int, str, str]:
        argv = [self.conntrack, *args]
        if netns is not None:
            path = self.netns_dir / checked_namespace_name(netns)
            if not path.exists():
                raise NamespaceNotFound(netns)
            argv = ["nsenter", f"--net={path}", *argv]
        proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        return proc.returncode or 0, out.decode(), err.decode()

    async def list_extended(self, netns: str | None = None) -> str:
        """Every entry, ``-o extended`` (layer 3 and 4 names and numbers first)."""
        code, out, err = await self._run(netns, ["-L", "-o", "extended"])
        if code != 0:
            raise ConntrackError(f"conntrack -L in {netns or 'the root namespace'} failed: {err.strip()}")
        return out

    async def delete(self, *, zone: int, protocol: str, src: str, dst: str, sport: int | None = None,
                     dport: int | None = None, netns: str | None = None) -> int:
        """Delete the entries matching the original direction given; none left is success."""
        args = ["-D", "-w", str(zone), "-p", protocol, "-s", src, "-d", dst]
        if sport is not None and dport is not None:
            args += ["--sport", str(sport), "--dport", str(dport)]
        code, out, err = await self._run(netns, args)
        # conntrack exits 1 with "0 flow entries have been deleted" when the entry is already gone.
        if code != 0 and "0 flow entries" not in err:
            raise ConntrackError(f"conntrack {' '.join(args)} failed: {err.strip()}")
        return code


__all__ = ["ConntrackDriver", "ConntrackError"]
