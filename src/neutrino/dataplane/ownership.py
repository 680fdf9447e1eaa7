"""How Neutrino marks the kernel objects it creates, so cleanup removes exactly those.

A name that follows the conventions in ``names`` is not proof of ownership (a real Neutron, or
another simulated host on the same kernel, uses the same names). So every device the netlink
driver creates or adopts carries an interface alias (IFLA_IFALIAS, what ``ip link show`` prints as
``alias``) of the form ``neutrino:<host>``. Namespaces cannot carry an alias themselves; the driver
marks a namespace through the alias of its loopback device instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ALIAS_PREFIX = "neutrino:"
# The kernel keeps at most IFALIASZ - 1 = 255 bytes of alias.
ALIAS_MAX_BYTES = 255
_HOST_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]*")


@dataclass(frozen=True, slots=True)
class OwnerTag:
    """The mark one Neutrino host puts on its kernel objects.

    ``host`` is the agent's host name (``binding:host_id``); simulated hosts sharing one kernel use
    different hosts and so never clean up each other's objects.
    """

    host: str

    def __post_init__(self) -> None:
        if not _HOST_PATTERN.fullmatch(self.host):
            raise ValueError(f"owner host {self.host!r} must be letters, digits and . _ @ + -")
        if len(self.alias.encode()) > ALIAS_MAX_BYTES:
            raise ValueError(f"owner host {self.host!r} is too long for an interface alias")

    @property
    def alias(self) -> str:
        """The interface alias written on every device this owner creates."""
        return ALIAS_PREFIX + self.host

    def owns(self, alias: str | None) -> bool:
        """True if a device with this alias was made by this owner."""
        return alias == self.alias


def owner_of(alias: str | None) -> OwnerTag | None:
    """The Neutrino owner an alias names, or None for a device Neutrino did not mark."""
    if not alias or not alias.startswith(ALIAS_PREFIX):
        return None
    try:
        return OwnerTag(alias[len(ALIAS_PREFIX) :])
    except ValueError:
        return None
