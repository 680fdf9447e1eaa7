"""nftables tables inside a network namespace, replaced whole and atomically, marked as ours.

Two ways to write: ``replace_table`` (a whole table, for small tables such as a router's NAT) and
``apply_script`` (any ``nft -f`` script, one transaction: what a planner that changes one chain or
one set element emits). ``read_table`` reads a table back as :class:`NftTable` data (chains with
their rule count and the last rule's comment, set and map elements) for such a planner to diff.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neutrino.contract.names import checked_namespace_name
from neutrino.dataplane.netlink import NETNS_DIR, NamespaceNotFound, NetlinkDriverError
from neutrino.dataplane.ownership import OwnerTag

_TABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
_FAMILIES = ("ip", "ip6", "inet", "bridge")


class NftablesError(NetlinkDriverError):
    pass


@dataclass(frozen=True, slots=True)
class NftChain:
    """A chain as read back: its hook line (base chains), how many rules, the last rule's comment."""

    name: str
    hook: str | None = None  # e.g. "filter prerouting -200" for a base chain
    rule_count: int = 0
    last_comment: str | None = None


@dataclass(frozen=True, slots=True)
class NftTable:
    """A table as read back; set elements are strings as ``nft -j`` prints them, map elements
    ``key -> value`` with verdicts as ``"jump X"``/``"goto X"``/``"accept"``/``"drop"``."""

    family: str
    name: str
    comment: str | None = None
    chains: Mapping[str, NftChain] = field(default_factory=dict)
    sets: Mapping[str, frozenset[str]] = field(default_factory=dict)
    maps: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    counters: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # named counters: (packets, bytes)
    limits: frozenset[str] = frozenset()  # named limit objects


def _element_text(value: Any) -> str:
    """One set element or map key/value of ``nft -j`` output as the text nft itself accepts."""
    if isinstance(value, dict):
        if "prefix" in value:
            return f"{value['prefix']['addr']}/{value['prefix']['len']}"
        if "range" in value:
            low, high = value["range"]
            return f"{_element_text(low)}-{_element_text(high)}"
        if "elem" in value:
            return _element_text(value["elem"]["val"])
        for verdict in ("jump", "goto"):
            if verdict in value:
                return f"{verdict} {value[verdict]['target']}"
        for verdict in ("accept", "drop", "continue", "return"):
            if verdict in value:
                return verdict
        if "concat" in value:
            return " . ".join(_element_text(v) for v in value["concat"])
    return str(value)


def parse_table(listing: Mapping[str, Any], family: str, name: str) -> NftTable | None:
    """``nft -j list table`` output as :class:`NftTable` (None if the listing has no such table)."""
    found = False
    chains: dict[str, dict[str, Any]] = {}
    sets: dict[str, frozenset[str]] = {}
    maps: dict[str, dict[str, str]] = {}
    counters: dict[str, tuple[int, int]] = {}
    limits: set[str] = set()
    for item in listing.get("nftables", ()):
        if "table" in item and item["table"].get("family") == family and item["table"].get("name") == name:
            found = True
        elif "chain" in item:
            c = item["chain"]
            hook = f"{c['type']} {c['hook']} {c['prio']}" if "hook" in c else None
            chains[c["name"]] = {"hook": hook, "rule_count": 0, "last_comment": None}
        elif "set" in item:
            sets[item["set"]["name"]] = frozenset(_element_text(e) for e in item["set"].get("elem", ()))
        elif "map" in item:
            maps[item["map"]["name"]] = {_element_text(k): _element_text(v) for k, v in item["map"].get("elem", ())}
        elif "counter" in item:
            counters[item["counter"]["name"]] = (int(item["counter"]["packets"]), int(item["counter"]["bytes"]))
        elif "limit" in item:
            limits.add(item["limit"]["name"])
        elif "rule" in item:
            entry = chains.setdefault(item["rule"]["chain"], {"hook": None, "rule_count": 0, "last_comment": None})
            entry["rule_count"] += 1
            entry["last_comment"] = item["rule"].get("comment")
    if not found:
        return None
    return NftTable(family, name, None, {n: NftChain(n, **c) for n, c in chains.items()}, sets, maps, counters,
                    frozenset(limits))


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
        return (await self.table_digests(((family, table),), netns=netns))[(family, table)]

    async def table_digests(self, tables: Sequence[tuple[str, str]], *, netns: str | None = None
                            ) -> dict[tuple[str, str], str | None]:
        """:meth:`table_digest` of several tables of one namespace, listing its tables once."""
        for family, table in tables:
            self._check(family, table)
        data = json.loads(await self._run(netns, ["-j", "list", "tables"]) or "{}")
        present = {((item.get("table") or {}).get("family"), (item.get("table") or {}).get("name"))
                   for item in data.get("nftables", ())}
        return {(family, table): await self._digest_of(family, table, netns) if (family, table) in present else None
                for family, table in tables}

    async def _digest_of(self, family: str, table: str, netns: str | None) -> str | None:
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

    async def read_table(self, family: str, table: str, *, netns: str | None = None) -> NftTable | None:
        """The table as data, or None when it does not exist (or the namespace does not)."""
        self._check(family, table)
        try:
            listing = json.loads(await self._run(netns, ["-j", "list", "tables"]) or "{}")
        except NamespaceNotFound:
            return None
        if not any((item.get("table") or {}).get("family") == family and item["table"].get("name") == table
                   for item in listing.get("nftables", ())):
            return None
        return parse_table(json.loads(await self._run(netns, ["-j", "list", "table", family, table])), family, table)

    async def read_map(self, family: str, table: str, name: str, *, netns: str | None = None) -> dict[str, str]:
        """One map's elements (``{}`` if the table, the map or the namespace is absent): a cheap read,
        where listing a whole table with thousands of rules takes seconds with nft 1.0.6."""
        self._check(family, table)
        try:
            listing = json.loads(await self._run(netns, ["-j", "list", "map", family, table, name]) or "{}")
        except (NftablesError, NamespaceNotFound):
            return {}
        for item in listing.get("nftables", ()):
            if "map" in item:
                return {_element_text(k): _element_text(v) for k, v in item["map"].get("elem", ())}
        return {}

    async def read_counters(self, family: str, table: str, *, netns: str | None = None
                            ) -> dict[str, tuple[int, int]]:
        """The table's named counters as (packets, bytes), read without resetting them ({} if the
        table or the namespace is absent)."""
        self._check(family, table)
        try:
            listing = json.loads(await self._run(netns, ["-j", "list", "counters", "table", family, table]) or "{}")
        except (NftablesError, NamespaceNotFound):
            return {}
        return {item["counter"]["name"]: (int(item["counter"]["packets"]), int(item["counter"]["bytes"]))
                for item in listing.get("nftables", ()) if "counter" in item}

    async def apply_script(self, script: str, *, netns: str | None = None) -> None:
        """Run an ``nft -f`` script: one transaction, all of it or nothing."""
        await self._run(netns, ["-f", "-"], stdin=script)

    async def remove_table(self, family: str, table: str, *, netns: str | None = None) -> None:
        """Delete the table; absent table or namespace is success."""
        self._check(family, table)
        try:
            await self._run(netns, ["-f", "-"], stdin=f"table {family} {table}\ndelete table {family} {table}\n")
        except NamespaceNotFound:
            return


__all__ = ["NftChain", "NftTable", "NftablesDriver", "NftablesError", "body_digest", "parse_table"]
