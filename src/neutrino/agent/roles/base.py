"""What every agent role is to the agent process: a named reconciler with a heartbeat identity."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from neutrino.bus.envelope import Envelope


class Role(Protocol):
    name: str          # "l2", "dhcp", "l3", "metadata"
    agent_type: str    # as the agents API shows it, e.g. "Linux bridge agent"
    binary: str        # e.g. "neutrino-linuxbridge-agent"
    topic: str         # e.g. "N/A", "dhcp_agent", "l3_agent"

    def configurations(self) -> Mapping[str, Any]:
        """Reported with every heartbeat (bridge mappings, tunnel IP, device counts...)."""
        ...

    async def start(self) -> None:
        """Begin watching the kernel; the first full resync follows."""
        ...

    async def resync(self) -> None:
        """Fetch the full desired state and reconcile the kernel to it; safe to run any time."""
        ...

    async def on_event(self, envelope: Envelope) -> None:
        """A change hint from the server; a role may resync at once or coalesce hints."""
        ...

    async def stop(self) -> None:
        """Stop watching; leave the data plane as it is (a restart must not disturb traffic)."""
        ...
