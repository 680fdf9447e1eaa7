"""One object of the firewall tables: what the kernel holds -> the nft script that makes it right (pure).

The kernel is read as :class:`~neutrino.dataplane.nftables.NftTable` per family: chains with their
rule count and last comment (the compiler's digest), set and map elements. A chain whose digest or
rule count differs is flushed and rewritten; set and map elements are added and deleted one by
one. Each object's actions are one ``nft -f`` script, so a port's mark and its chains change in
one transaction. ``()`` means the object is already right: a restarted agent writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from neutrino.agent.roles.firewall.compile import TABLE, ChainSpec, MapSpec, SetSpec
from neutrino.agent.roles.firewall.desired import (
    FAMILIES,
    LOG_CHAINS,
    LOGGED_GROUP_PREFIXES,
    PORT_MAPS,
    Key,
    Piece,
)
from neutrino.dataplane.nftables import NftTable

PORT_CHAINS = (("bridge", "from-"), ("inet", "in-"), ("inet", "out-"))


@dataclass(frozen=True, slots=True)
class NftScript:
    """One ``nft -f`` transaction. ``removes``: it takes away something that allowed traffic (a
    rewritten chain, a deleted element), so tracked connections must be judged again. ``rebuilt``:
    the whole table was replaced, so every other object must be looked at again."""

    text: str
    removes: bool = False
    rebuilt: bool = False


@dataclass(frozen=True, slots=True)
class KernelTables:
    """Both ``neutrino-fw`` tables as read back (None: absent). Treat as immutable: the index of
    port elements is built once, on first use (planning every port of a host must not scan the
    maps once per port: at 1000 ports that was ten seconds of a full resync)."""

    bridge: NftTable | None = None
    inet: NftTable | None = None
    _by_port: dict[str, list[tuple[str, str, str, str]]] = field(default_factory=dict, compare=False, repr=False)

    def table(self, family: str) -> NftTable | None:
        return self.bridge if family == "bridge" else self.inet

    def port_elements(self, device: str) -> list[tuple[str, str, str, str]]:
        """(family, map, key, delete line) of every element the tables hold for a port."""
        index = self._by_port
        if not index:
            index[""] = []  # built, even when empty
            for family in FAMILIES:
                have = self.table(family)
                if have is None:
                    continue
                for map_name in PORT_MAPS[family]:
                    for key, value in (have.maps.get(map_name) or {}).items():
                        if family == "bridge":
                            owner = key
                        elif value.startswith(("jump in-", "jump out-")):
                            owner = value.split("-", 1)[1]
                        else:
                            continue
                        index.setdefault(owner, []).append(
                            (family, map_name, key, f"delete element {_prefix(family)} {map_name} {{ {_key(key)} }}"))
        return index.get(device, []) if device else []


def _prefix(family: str) -> str:
    return f"{family} {TABLE}"


def _key(key: str) -> str:
    return key if key.isdigit() else f'"{key}"'


def _hook(chain: ChainSpec) -> str:
    kind, hook, prio = (chain.hook or "").split()
    return f" {{ type {kind} hook {hook} priority {prio}; policy accept; }}"


def _rules(family: str, chain: ChainSpec) -> list[str]:
    p = _prefix(family)
    lines = [f"add rule {p} {chain.name} {rule}" for rule in chain.rules[:-1]]
    lines.append(f'add rule {p} {chain.name} {chain.rules[-1]} comment "{chain.comment}"')
    return lines


def _chain_lines(family: str, chain: ChainSpec, have: NftTable | None) -> tuple[list[str], bool]:
    """(lines, rewrote): nothing if the chain is right, else (re)create it with its rules."""
    current = have.chains.get(chain.name) if have is not None else None
    if current is None:
        return [f"add chain {_prefix(family)} {chain.name}{_hook(chain) if chain.hook else ''}",
                *_rules(family, chain)], False
    if (current.hook, current.rule_count, current.last_comment) == (chain.hook, len(chain.rules), chain.comment):
        return [], False
    return [f"flush chain {_prefix(family)} {chain.name}", *_rules(family, chain)], True


def _set_decl(s: SetSpec) -> str:
    return f"add set {_prefix('inet')} {s.name} {{ type {s.type}; flags interval; }}"


def _map_decl(family: str, m: MapSpec) -> str:
    return f"add map {_prefix(family)} {m.name} {{ {m.declaration}; }}"


def _element_lines(elements: Iterable[tuple[str, str, str, str]], actual: KernelTables) -> tuple[list[str], bool]:
    lines: list[str] = []
    removes = False
    for family, map_name, key, value in elements:
        have = actual.table(family)
        current = (have.maps.get(map_name) or {}).get(key) if have is not None else None
        if current == value:
            continue
        if current is not None:
            lines.append(f"delete element {_prefix(family)} {map_name} {{ {_key(key)} }}")
            removes = True
        lines.append(f"add element {_prefix(family)} {map_name} {{ {_key(key)} : {value} }}")
    return lines, removes


def _script(lines: list[str], removes: bool = False, rebuilt: bool = False) -> tuple[NftScript, ...]:
    return (NftScript("\n".join(lines) + "\n", removes, rebuilt),) if lines else ()


def plan(key: Key, desired: Piece | None, actual: KernelTables) -> tuple[NftScript, ...]:
    """The script that makes one object right; ``()`` when it already is."""
    kind, name = key
    if kind == "table":
        return _plan_table(name, desired, actual.table(name))
    if desired is None:
        return _plan_removal(kind, name, actual)
    lines: list[str] = []
    removes = False
    for s in desired.sets:
        have = actual.inet.sets.get(s.name) if actual.inet is not None else None
        if have is None:
            lines.append(_set_decl(s))
            have = frozenset()
        extra, missing = sorted(have - s.elements), sorted(s.elements - have)
        if extra:  # first: a new element may cover an old one, and intervals must not overlap
            lines.append(f"delete element {_prefix('inet')} {s.name} {{ {', '.join(extra)} }}")
            removes = True
        if missing:
            lines.append(f"add element {_prefix('inet')} {s.name} {{ {', '.join(missing)} }}")
    for family, chain in desired.chains:
        chain_lines, rewrote = _chain_lines(family, chain, actual.table(family))
        lines += chain_lines
        removes = removes or rewrote
    element_lines, replaced = _element_lines(desired.elements, actual)
    lines += element_lines
    if kind == "port":  # a port's elements that no longer belong to it (its mark moved)
        wanted = {(f, m, k) for f, m, k, _ in desired.elements}
        stale = [line for f, m, k, line in _port_elements(name, actual) if (f, m, k) not in wanted]
        lines += stale
        replaced = replaced or bool(stale)
    if desired.limits:
        lines = _limit_lines(desired, actual, lines)
    return _script(lines, removes or replaced)


def _limit_lines(desired: Piece, actual: KernelTables, lines: list[str]) -> list[str]:
    """The named limits first, whenever the piece writes anything (``add`` of an existing limit with
    the same spec is a no-op) or one is missing; then, after its chains stop naming them, the
    limits of an earlier configuration."""
    have = actual.inet.limits if actual.inet is not None else frozenset()
    names = {n for n, _ in desired.limits}
    if not lines and names <= have:
        return lines
    stale = sorted(n for n in have if n.startswith(_LOG_LIMIT_PREFIX) and n not in names)
    return [*(f"add limit {_prefix('inet')} {n} {{ {spec}; }}" for n, spec in desired.limits), *lines,
            *(f"delete limit {_prefix('inet')} {n}" for n in stale)]


_LOG_LIMIT_PREFIX = "nfw-log-"


def _plan_table(family: str, desired: Piece | None, have: NftTable | None) -> tuple[NftScript, ...]:
    p = _prefix(family)
    if desired is None:
        return _script([f"delete table {p}"], True) if have is not None else ()
    regular = [c for f, c in desired.chains if c.hook is None]
    base = [c for f, c in desired.chains if c.hook is not None]
    if have is not None and any(c.name in have.chains and have.chains[c.name].hook != c.hook for c in base):
        # Hooked differently (an older layout): rebuild; the other objects follow in a full resync.
        return _script([f"delete table {p}", *_create(family, desired, regular, base)], True, True)
    if have is None:
        return _script(_create(family, desired, regular, base))
    lines = [_map_decl(family, m) for f, m in desired.maps if m.name not in have.maps]
    removes = False
    for chain in (*regular, *base):
        chain_lines, rewrote = _chain_lines(family, chain, have)
        lines += chain_lines
        removes = removes or rewrote
    return _script(lines, removes)


def _create(family: str, desired: Piece, regular: list[ChainSpec], base: list[ChainSpec]) -> list[str]:
    p = _prefix(family)
    comment = f' {{ comment "{desired.comment}"; }}' if desired.comment else ""
    lines = [f"add table {p}{comment}", *(_map_decl(family, m) for f, m in desired.maps)]
    for chain in regular:
        lines += [f"add chain {p} {chain.name}", *_rules(family, chain)]
    for chain in base:  # hooked last: the maps and chains they name exist by then
        lines += [f"add chain {p} {chain.name}{_hook(chain)}", *_rules(family, chain)]
    return lines


def _port_elements(device: str, actual: KernelTables) -> list[tuple[str, str, str, str]]:
    """(family, map, key, delete line) of every element the kernel holds for a port."""
    return actual.port_elements(device)


def _plan_removal(kind: str, name: str, actual: KernelTables) -> tuple[NftScript, ...]:
    if kind == "set":
        present = actual.inet is not None and name in actual.inet.sets
        return _script([f"delete set {_prefix('inet')} {name}"] if present else [], True)
    if kind == "group":
        chains = [f"grp-{name}-{d}" for d in ("in", "out")]
        present = [c for c in chains if actual.inet is not None and c in actual.inet.chains]
        return _script([f"delete chain {_prefix('inet')} {c}" for c in present], True)
    if kind == "lgroup":  # the chains that jump first, then their targets
        chains = [f"{prefix}{name}-{d}" for prefix in ("lgrp-", "lacc-") for d in ("in", "out")]
        present = [c for c in chains if actual.inet is not None and c in actual.inet.chains]
        return _script([f"delete chain {_prefix('inet')} {c}" for c in present], True)
    if kind == "log":
        inet = actual.inet
        if inet is None:
            return ()
        lines = [f"delete chain {_prefix('inet')} {c}" for c in LOG_CHAINS if c in inet.chains]
        lines += [f"delete limit {_prefix('inet')} {n}" for n in sorted(inet.limits) if n.startswith(_LOG_LIMIT_PREFIX)]
        return _script(lines, True)
    if kind == "zone":
        present = actual.inet is not None and name in (actual.inet.maps.get("zones") or {})
        return _script([f"delete element {_prefix('inet')} zones {{ {_key(name)} }}"] if present else [], True)
    lines = [line for _, _, _, line in _port_elements(name, actual)]
    for family, prefix in PORT_CHAINS:  # after the elements that jump to them
        have = actual.table(family)
        if have is not None and f"{prefix}{name}" in have.chains:
            lines.append(f"delete chain {_prefix(family)} {prefix}{name}")
    return _script(lines, True)


def owned(actual: KernelTables) -> set[Key]:
    """Every object of ours the kernel holds, so a full resync removes the ones nobody wants."""
    keys: set[Key] = set()
    for family in FAMILIES:
        have = actual.table(family)
        if have is None:
            continue
        keys.add(("table", family))
        for chain in have.chains:
            if family == "inet" and chain.startswith("grp-") and chain.endswith(("-in", "-out")):
                keys.add(("group", chain[len("grp-"):].rsplit("-", 1)[0]))
                continue
            if family == "inet" and chain.startswith(LOGGED_GROUP_PREFIXES) and chain.endswith(("-in", "-out")):
                keys.add(("lgroup", chain[len("lgrp-"):].rsplit("-", 1)[0]))
                continue
            if family == "inet" and chain in LOG_CHAINS:
                keys.add(("log", "inet"))
                continue
            for chain_family, prefix in PORT_CHAINS:
                if chain_family == family and chain.startswith(prefix):
                    keys.add(("port", chain[len(prefix):]))
        for map_name in PORT_MAPS[family]:
            for key, value in (have.maps.get(map_name) or {}).items():
                if family == "bridge":
                    keys.add(("port", key))
                elif value.startswith(("jump in-", "jump out-")):
                    keys.add(("port", value.split("-", 1)[1]))
    if actual.inet is not None:
        if any(n.startswith(_LOG_LIMIT_PREFIX) for n in actual.inet.limits):
            keys.add(("log", "inet"))
        keys.update(("set", name) for name in actual.inet.sets)
        keys.update(("zone", bridge) for bridge in actual.inet.maps.get("zones") or {})
    return keys


__all__ = ["KernelTables", "NftScript", "owned", "plan"]
