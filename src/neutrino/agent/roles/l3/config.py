"""What one L3 agent is told about its host: its name and the namespace that plays its root one."""

from __future__ import annotations

from dataclasses import dataclass

from neutrino.agent.config import HostScoped
from neutrino.dataplane.ownership import OwnerTag


@dataclass(frozen=True, slots=True)
class L3Config(HostScoped):
    """``netns``: where the host ends (``tap<port[:11]>``) of router ports go, so the host's L2 role
    wires them into the network bridges exactly as instances' taps; None is the real root namespace.
    Router namespaces (``qrouter-<router>``) are global to the kernel; router ids are unique, so
    simulated hosts sharing one kernel never collide on them."""

    host: str
    netns: str | None = None
    owner: OwnerTag | None = None

    def __post_init__(self) -> None:
        self.settle_host()
