"""What the firewall role last applied, kept in memory so a change is planned without a listing (pure).

Listing the two tables costs seconds at 1000 ports (``nft`` 1.0.6 prints about 40,000 rules; see
docs/benchmarks.md), while a change touches one set, one group chain or one port. So the role
keeps an :class:`AppliedView`: the tables as the last full resync read them, advanced by every
object a round applied since (the same facts ``plan`` reads: chains with their hook, rule count
and digest comment; set and map elements). A keyed round plans against it; a full resync reads
the kernel again and starts a new view, so a hand edit is still found (and counted as drift) by
the next periodic resync. Anything the view cannot vouch for (a failed script, a rebuilt table)
drops it, and the next round reads the kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

from neutrino.agent.roles.firewall.compile import TABLE, ChainSpec, Ids
from neutrino.agent.roles.firewall.desired import (
    FAMILIES,
    LOG_CHAINS,
    LOGGED_GROUP_PREFIXES,
    PORT_MAPS,
    Key,
    Piece,
)
from neutrino.agent.roles.firewall.plan import PORT_CHAINS, KernelTables
from neutrino.dataplane.nftables import NftChain, NftTable


@dataclass
class _Table:
    comment: str | None
    chains: dict[str, NftChain]
    sets: dict[str, frozenset[str]]
    maps: dict[str, dict[str, str]]
    limits: set[str]

    def frozen(self, family: str) -> NftTable:
        # Shares the dicts: a view handed to a round must not be advanced while that round plans
        # (the reconciler runs rounds one at a time and advances the view after each).
        return NftTable(family, TABLE, self.comment, self.chains, self.sets, self.maps,
                        limits=frozenset(self.limits))


def _chain(family_chain: tuple[str, ChainSpec]) -> NftChain:
    chain = family_chain[1]
    return NftChain(chain.name, chain.hook, len(chain.rules), chain.comment)


class AppliedView:
    """Both ``neutrino-fw`` tables as this role last saw or made them."""

    def __init__(self, actual: KernelTables) -> None:
        self._tables: dict[str, _Table] = {}
        for family in FAMILIES:
            have = actual.table(family)
            if have is not None:
                self._tables[family] = _Table(have.comment, dict(have.chains), dict(have.sets),
                                              {name: dict(elements) for name, elements in have.maps.items()},
                                              set(have.limits))
        self._snapshot: KernelTables | None = None

    def tables(self) -> KernelTables:
        """The tables as a round plans against them (a new snapshot after any advance, so its
        lazily built index of port elements is never stale)."""
        if self._snapshot is None:
            frozen = {f: t.frozen(f) for f, t in self._tables.items()}
            self._snapshot = KernelTables(frozen.get("bridge"), frozen.get("inet"))
        return self._snapshot

    def ids(self) -> Ids:
        """The port marks and conntrack zones the tables hold (what the compiler must keep)."""
        bridge, inet = self._tables.get("bridge"), self._tables.get("inet")
        marks = (bridge.maps.get("port_marks") or {}) if bridge else {}
        zones = (inet.maps.get("zones") or {}) if inet else {}
        return Ids({k: int(v) for k, v in marks.items() if v.isdigit()},
                   {k: int(v) for k, v in zones.items() if v.isdigit()})

    def advance(self, key: Key, piece: Piece | None) -> None:
        """The kernel now holds ``piece`` for ``key`` (None: the object was removed)."""
        kind, name = key
        self._snapshot = None
        if kind == "table":
            if piece is None:
                self._tables.pop(name, None)
                return
            table = self._tables.setdefault(name, _Table(piece.comment, {}, {}, {}, set()))
            table.chains.update((c.name, _chain((f, c))) for f, c in piece.chains)
            for _, declared in piece.maps:
                table.maps.setdefault(declared.name, {})
            return
        inet = self._tables.get("inet")
        if kind == "set":
            if inet is not None:
                if piece is None:
                    inet.sets.pop(name, None)
                else:
                    inet.sets.update((s.name, s.elements) for s in piece.sets)
            return
        if kind == "group":
            if inet is not None and piece is None:
                for direction in ("in", "out"):
                    inet.chains.pop(f"grp-{name}-{direction}", None)
        if kind == "lgroup" and inet is not None and piece is None:
            for prefix in LOGGED_GROUP_PREFIXES:
                for direction in ("in", "out"):
                    inet.chains.pop(f"{prefix}{name}-{direction}", None)
        if kind == "log" and inet is not None:
            if piece is None:
                for chain_name in LOG_CHAINS:
                    inet.chains.pop(chain_name, None)
                inet.limits.clear()
            else:  # a new configuration's limit replaced the old one (``plan._limit_lines``)
                inet.limits.clear()
                inet.limits.update(n for n, _ in piece.limits)
        if kind == "port":  # its old elements go whatever comes (plan deletes them likewise)
            self._drop_port_elements(name, piece)
            if piece is None:
                for family, prefix in PORT_CHAINS:
                    table = self._tables.get(family)
                    if table is not None:
                        table.chains.pop(f"{prefix}{name}", None)
        if kind == "zone" and piece is None and inet is not None:
            (inet.maps.get("zones") or {}).pop(name, None)
        if piece is None:
            return
        for family, chain in piece.chains:
            table = self._tables.get(family)
            if table is not None:
                table.chains[chain.name] = _chain((family, chain))
        for family, map_name, element_key, value in piece.elements:
            table = self._tables.get(family)
            if table is not None:
                table.maps.setdefault(map_name, {})[element_key] = value

    def _drop_port_elements(self, device: str, piece: Piece | None) -> None:
        """The port's elements: keyed by its tap (bridge maps) or by its mark, old or new, jumping to
        its chains (inet maps). Looked up, not scanned: a round may advance a thousand ports."""
        jumps = (f"jump in-{device}", f"jump out-{device}")
        bridge, inet = self._tables.get("bridge"), self._tables.get("inet")
        marks = {k for f, _, k, _ in (piece.elements if piece else ()) if f == "inet"}
        if bridge is not None:
            old = (bridge.maps.get("port_marks") or {}).get(device)
            if old is not None:
                marks.add(old)
            for map_name in PORT_MAPS["bridge"]:
                (bridge.maps.get(map_name) or {}).pop(device, None)
        if inet is not None:
            for map_name in PORT_MAPS["inet"]:
                elements = inet.maps.get(map_name) or {}
                for mark in marks:
                    if elements.get(mark) in jumps:
                        del elements[mark]


__all__ = ["AppliedView"]
