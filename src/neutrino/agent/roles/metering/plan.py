"""The metering planner (pure): one router namespace's table against what was read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from neutrino.agent.roles.metering.actions import Action, AwaitNamespace, LoadMeters, RemoveMeters
from neutrino.agent.roles.metering.desired import RouterMeters, matches, script
from neutrino.dataplane.nftables import NftTable


@dataclass(frozen=True, slots=True)
class MeteringView:
    namespaces: frozenset[str] = frozenset()                      # this host's router namespaces
    tables: Mapping[str, NftTable] = field(default_factory=dict)  # namespace -> our table in it


def plan(netns: str, wish: RouterMeters | None, actual: MeteringView) -> tuple[Action, ...]:
    table = actual.tables.get(netns)
    if wish is None:
        return (RemoveMeters(netns),) if table is not None else ()
    if netns not in actual.namespaces:
        return (AwaitNamespace(netns),)
    if table is not None and matches(wish, table):
        return ()
    body, created = script(wish, table)
    return (LoadMeters(netns, body, created),)
