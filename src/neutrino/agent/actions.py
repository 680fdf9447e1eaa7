"""Actions more than one role plans: defined once so that every role means the same by them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RemoveDevice:
    """A device of ours that nothing desired needs any more.

    ``netns``: where it is; None is the role's host namespace (its configuration's ``netns``).
    ``network_id``: the network it served, when the planner knows it.
    """

    name: str
    netns: str | None = None
    network_id: str | None = None
