"""nftables tables inside a network namespace, replaced whole and atomically, marked as ours.

A table is the unit: the caller renders its complete body, ``replace_table`` loads
"create, flush by deletion, define" as one ``nft -f`` transaction (the kernel swaps the rules in
one step, so packets never see a half-written table). The table's ``comment`` carries the owner's
mark and a digest of the body, so reading back what is loaded is one cheap ``nft -j list tables``
and an unchanged body costs no write.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from pathlib import Path

from neutrino.contract.names import checked_namespace_name
from neutrino.dataplane.netlink import NETNS_DIR, NamespaceNotFound, NetlinkDriverError
from neutrino.dataplane.ownership import OwnerTag

_TABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
_FAMILIES = ("ip", "ip6", "inet")


class NftablesError(NetlinkDriverError):
    pass


def body_digest(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()[:16]


class NftablesDriver:
    """Runs ``nft`` in a namespace (``nsenter --net``); one owner's tables only."""

    def __init__(self, owner: OwnerTag, netns_dir: Path = NETNS_DIR, nft: str = "nft") -> None:
        self.owner = owner
        self.netns_dir = netns_dir
        self.nft = nft

    def _mark(self, digest: str) -> str:
        return f"{self.owner.alias} {digest}"

    async def _run(self, netns: str | None, args: list[str], stdin: str | None = None) -> str:
        argv = [self.nft, *args]
        if netns is not None:
            path = self.netns_dir / checked_namespace_name(netns)
            if not path.exists():
                raise NamespaceNotFound(netns)
            argv = ["nsenter", f"--net={path}", *argv]
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
        if proc.returncode != 0:
            raise NftablesError(f"nft {' '.join(args)} in {netns or 'the root namespace'} failed: "
                                f"{err.decode().strip()}")
        return out.decode()

    @staticmethod
    def _check(family: str, table: str) -> None:
        if family not in _FAMILIES or not _TABLE_NAME.fullmatch(table):
            raise ValueError(f"invalid nftables table {family} {table}")

    async def table_digest(self, family: str, table: str, *, netns: str | None = None) -> str | None:
        """Digest of the body this owner last loaded into the table; None if absent or not ours.

        (``nft -j`` leaves table comments out before nftables 1.0.7: the text listing has them.)
        """
        self._check(family, table)
        data = json.loads(await self._run(netns, ["-j", "list", "tables"]) or "{}")
        if not any((item.get("table") or {}).get("family") == family and item["table"].get("name") == table
                   for item in data.get("nftables", ())):
            return None
        for line in (await self._run(netns, ["list", "table", family, table])).splitlines():
            text = line.strip()
            if text.startswith("comment "):
                comment = str(json.loads(text[len("comment "):]))
                prefix = self.owner.alias + " "
                return comment[len(prefix):] if comment.startswith(prefix) else None
        return None

    async def replace_table(self, family: str, table: str, body: str, *, netns: str | None = None) -> str:
        """Load ``body`` (chains and rules, without the ``table`` wrapper) as the whole table."""
        self._check(family, table)
        digest = body_digest(body)
        script = (f"table {family} {table}\ndelete table {family} {table}\n"
                  f"table {family} {table} {{\n  comment \"{self._mark(digest)}\"\n{body}\n}}\n")
        await self._run(netns, ["-f", "-"], stdin=script)
        if await self.table_digest(family, table, netns=netns) != digest:
            raise NftablesError(f"table {family} {table} in {netns} does not carry the loaded body")
        return digest

    async def remove_table(self, family: str, table: str, *, netns: str | None = None) -> None:
        """Delete the table; absent table or namespace is success."""
        self._check(family, table)
        try:
            await self._run(netns, ["-f", "-"], stdin=f"table {family} {table}\ndelete table {family} {table}\n")
        except NamespaceNotFound:
            return


__all__ = ["NftablesDriver", "NftablesError", "body_digest"]
