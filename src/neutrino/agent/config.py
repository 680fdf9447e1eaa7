"""What every role's settings have: the host, the namespace that plays its root one, the owner mark."""

from __future__ import annotations

from neutrino.contract.names import checked_namespace_name
from neutrino.dataplane.ownership import OwnerTag


class HostScoped:
    """Mixin for a role's frozen settings dataclass with ``host``, ``netns`` and ``owner`` fields.

    ``netns`` is the namespace that plays this host's root namespace: None is the real one.
    Fullstack tests simulate several hosts on one kernel by giving each agent its own. ``owner``
    marks what the role creates; it defaults to the host's tag. The dataclass's ``__post_init__``
    calls ``settle_host()``.
    """

    __slots__ = ()
    host: str
    netns: str | None
    owner: OwnerTag | None

    def settle_host(self) -> None:
        if self.owner is None:
            object.__setattr__(self, "owner", OwnerTag(self.host))
        if self.netns is not None:
            checked_namespace_name(self.netns)

    @property
    def owner_tag(self) -> OwnerTag:
        """The owner tag (never None after construction; typed for callers)."""
        assert self.owner is not None
        return self.owner
