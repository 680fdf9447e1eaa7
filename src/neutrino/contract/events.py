"""Change events as agents receive them: hints that something changed, never the change itself.

The server publishes one per committed change (docs/agent-contract.md §5) on ``event.<resource>``
and, when the change concerns one host, also on ``event.<resource>.<host>``. ``host``,
``network_id`` and ``security_group_ids`` are additive: where a port is and which groups it is in,
so that an agent can skip what cannot concern it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from neutrino.contract.codec import wire

OPS = ("create", "update", "delete")


@dataclass(frozen=True, slots=True)
class ChangeHint:
    resource: str
    id: str
    op: str  # create | update | delete
    revision: int | None = None
    host: str | None = field(default=None, metadata=wire(omit_none=True))
    network_id: str | None = field(default=None, metadata=wire(omit_none=True))
    # A port's security groups after the change (and before it, when they changed): a firewall role
    # holding a group that names one of them as its remote group updates that group's addresses.
    security_group_ids: tuple[str, ...] | None = field(default=None, metadata=wire(omit_none=True))
