"""What every agent role is to the agent process: a named reconciler with a heartbeat identity."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from neutrino.agent.reconciler import Reconciler
from neutrino.bus.envelope import Envelope
from neutrino.contract import codec
from neutrino.contract.events import ChangeHint


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


class ReconcilingRole:
    """What every role built on :class:`~neutrino.agent.reconciler.Reconciler` shares.

    A role sets ``self.reconciler`` (over its own ``Target``), the four identity attributes of
    :class:`Role`, and overrides ``on_change`` to say which change hints concern it and how (the
    default asks for a debounced full resync). The agent process resyncs every role at start and
    periodically; the reconciler's own loop runs hints and retries in between.
    """

    name: str
    agent_type: str
    binary: str
    topic: str
    reconciler: Reconciler[Any, Any, Any, Any]

    def role_configurations(self) -> Mapping[str, Any]:
        """What the role adds to its heartbeat's ``configurations`` (counts, modes...)."""
        return {}

    def configurations(self) -> Mapping[str, Any]:
        return {**self.role_configurations(), "reconciler": self.reconciler.summary()}

    async def start(self) -> None:
        await self.reconciler.start(full=False)

    async def resync(self) -> None:
        await self.reconciler.full()

    async def on_event(self, envelope: Envelope) -> None:
        try:
            hint = codec.decode(ChangeHint, envelope.payload)
        except codec.DecodeError:
            self.reconciler.request_full()  # a server we cannot read: look at everything again
            return
        self.on_change(hint)

    def on_change(self, hint: ChangeHint) -> None:
        """A committed change on the server; the default resyncs (debounced) whatever it was."""
        self.reconciler.request_full()

    async def stop(self) -> None:
        """Stop the loop; the kernel is left as it is."""
        await self.reconciler.stop()
