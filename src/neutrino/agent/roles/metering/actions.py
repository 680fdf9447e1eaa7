"""The metering role's kernel changes, as data."""

from __future__ import annotations

from dataclasses import dataclass

from neutrino.agent.actions import AwaitNamespace


@dataclass(frozen=True, slots=True)
class LoadMeters:
    """One ``nft -f`` transaction: counters and chains added or dropped, rule chains rewritten.
    Counters that stay keep their values (they are never re-created)."""

    netns: str
    script: str
    new_counters: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RemoveMeters:
    netns: str


Action = AwaitNamespace | LoadMeters | RemoveMeters
