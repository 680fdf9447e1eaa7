"""From the compiled tables and what the kernel holds to one ``nft -f`` script (pure).

The kernel is read as :class:`~neutrino.dataplane.nftables.NftTable`: chains with their rule count
and last comment (the compiler's digest), set and map elements. A chain whose digest or rule count
differs is flushed and rewritten; set and map elements are added and deleted one by one, so a
membership change is one element; only a table that is missing or whose base chains hook
differently is rebuilt whole. The script is one transaction: packets see the old or the new rules.
An empty plan means the kernel is already right; a restarted agent then writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from neutrino.agent.roles.firewall.compile import ChainSpec, MapSpec, TableSpec
from neutrino.dataplane.nftables import NftTable


@dataclass(frozen=True, slots=True)
class TablePlan:
    """``script`` ("" when nothing differs); ``changes``: how many objects it touches (chains,
    elements, sets, maps; a rebuild counts every object); ``removed``: whether anything that
    allowed traffic may have gone (rules rewritten, elements deleted), so conntrack needs a sweep."""

    script: str
    changes: int
    removed: bool
    rebuilt: bool


def _hook_decl(chain: ChainSpec) -> str:
    kind, hook, prio = (chain.hook or "").split()
    return f" {{ type {kind} hook {hook} priority {prio}; policy accept; }}"


def _rules(prefix: str, chain: ChainSpec) -> list[str]:
    lines = [f"add rule {prefix} {chain.name} {rule}" for rule in chain.rules[:-1]]
    lines.append(f'add rule {prefix} {chain.name} {chain.rules[-1]} comment "{chain.comment}"')
    return lines


def _key(key: str) -> str:
    return key if key.isdigit() else f'"{key}"'


def _elements(values: list[str]) -> str:
    return "{ " + ", ".join(values) + " }"


def _map_elements(spec: MapSpec, keys: list[str]) -> str:
    return _elements([f"{_key(k)} : {spec.elements[k]}" for k in keys])


def rebuild(table: TableSpec) -> TablePlan:
    """The whole table, replaced in one transaction (created if absent)."""
    prefix = f"{table.family} {table.name}"
    lines = [f"table {prefix}", f"delete table {prefix}", f"add table {prefix}"]
    regular = [c for c in table.chains.values() if c.hook is None]
    base = [c for c in table.chains.values() if c.hook is not None]
    lines += [f"add chain {prefix} {c.name}" for c in regular]
    for s in table.sets.values():
        lines.append(f"add set {prefix} {s.name} {{ type {s.type}; flags interval; }}")
        if s.elements:
            lines.append(f"add element {prefix} {s.name} {_elements(sorted(s.elements))}")
    for m in table.maps.values():
        lines.append(f"add map {prefix} {m.name} {{ {m.declaration}; }}")
    for c in regular:
        lines += _rules(prefix, c)
    for m in table.maps.values():
        if m.elements:
            lines.append(f"add element {prefix} {m.name} {_map_elements(m, sorted(m.elements))}")
    for c in base:
        lines.append(f"add chain {prefix} {c.name}{_hook_decl(c)}")
        lines += _rules(prefix, c)
    count = len(table.chains) + sum(len(s.elements) + 1 for s in table.sets.values()) \
        + sum(len(m.elements) + 1 for m in table.maps.values())
    return TablePlan("\n".join(lines) + "\n", count, True, True)


def _chain_ok(want: ChainSpec, have: object) -> bool:
    return (getattr(have, "hook", None) == want.hook and getattr(have, "rule_count", -1) == len(want.rules)
            and getattr(have, "last_comment", None) == want.comment)


def plan_table(want: TableSpec, have: NftTable | None) -> TablePlan:
    """The script that makes ``have`` into ``want``, touching only what differs."""
    if have is None or any(name in have.chains and have.chains[name].hook != chain.hook
                           for name, chain in want.chains.items() if chain.hook is not None):
        return rebuild(want)
    prefix = f"{want.family} {want.name}"
    add_decl: list[str] = []
    add_elems: list[str] = []
    rewrite: list[str] = []
    map_changes: list[str] = []
    deletes: list[str] = []
    changes = 0
    removed = False

    for name, s in want.sets.items():
        current = have.sets.get(name)
        if current is None:
            add_decl.append(f"add set {prefix} {name} {{ type {s.type}; flags interval; }}")
            current = frozenset()
            changes += 1
        extra, missing = sorted(current - s.elements), sorted(s.elements - current)
        if missing:
            add_elems.append(f"add element {prefix} {name} {_elements(missing)}")
        if extra:
            deletes.append(f"delete element {prefix} {name} {_elements(extra)}")
            removed = True
        changes += len(extra) + len(missing)

    new_base: list[ChainSpec] = []
    for name, chain in want.chains.items():
        current_chain = have.chains.get(name)
        if current_chain is None:
            changes += 1
            if chain.hook is None:
                add_decl.append(f"add chain {prefix} {name}")
                rewrite += _rules(prefix, chain)
            else:
                new_base.append(chain)
        elif not _chain_ok(chain, current_chain):
            changes += 1
            removed = True
            rewrite += [f"flush chain {prefix} {name}", *_rules(prefix, chain)]

    for name, m in want.maps.items():
        current_map: Mapping[str, str] | None = have.maps.get(name)
        if current_map is None:
            add_decl.append(f"add map {prefix} {name} {{ {m.declaration}; }}")
            current_map = {}
            changes += 1
        stale = sorted(k for k, v in current_map.items() if m.elements.get(k) != v)
        fresh = sorted(k for k, v in m.elements.items() if current_map.get(k) != v)
        if stale:
            map_changes.append(f"delete element {prefix} {name} {_elements([_key(k) for k in stale])}")
            removed = True
        if fresh:
            map_changes.append(f"add element {prefix} {name} {_map_elements(m, fresh)}")
        changes += len(set(stale) | set(fresh))

    for name in sorted(set(have.maps) - set(want.maps)):
        deletes.append(f"delete map {prefix} {name}")
        changes += 1
    for name in sorted(set(have.chains) - set(want.chains)):
        deletes.append(f"delete chain {prefix} {name}")
        changes += 1
        removed = True
    for name in sorted(set(have.sets) - set(want.sets)):
        deletes.append(f"delete set {prefix} {name}")
        changes += 1
    for chain in new_base:
        rewrite += [f"add chain {prefix} {chain.name}{_hook_decl(chain)}", *_rules(prefix, chain)]

    lines = [*add_decl, *add_elems, *rewrite, *map_changes, *deletes]
    return TablePlan("\n".join(lines) + "\n" if lines else "", changes, removed, False)


__all__ = ["TablePlan", "plan_table", "rebuild"]
