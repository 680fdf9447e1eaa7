"""What one L3 agent is told about its host: its name and the namespace that plays its root one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from neutrino.agent.config import HostScoped
from neutrino.dataplane.ownership import OwnerTag


@dataclass(frozen=True, slots=True)
class L3Config(HostScoped):
    """``netns``: where the host ends (``tap<port[:11]>``) of router ports go, so the host's L2 role
    wires them into the network bridges exactly as instances' taps; None is the real root namespace.
    Router namespaces (``<namespace_prefix>qrouter-<router>``) are global to the kernel: an HA
    router has one on each of its hosts, so simulated hosts sharing one kernel need a prefix each
    (the agent's ``namespace_prefix``). ``run_dir``: the host's files of the daemons it runs in
    router namespaces (radvd, keepalived), default ``/run/neutrino/<host>/l3``.
    ``ha_poll_seconds``: how often the VRRP state of HA routers is looked at (the primary virtual
    address on their ``ha-`` device), so a failover reaches the server within that."""

    host: str
    netns: str | None = None
    owner: OwnerTag | None = None
    run_dir: Path | None = None
    namespace_prefix: str = ""
    ha_poll_seconds: float = 0.5

    def __post_init__(self) -> None:
        self.settle_host()
        if self.run_dir is None:
            object.__setattr__(self, "run_dir", Path("/run/neutrino") / self.host / "l3")

    @property
    def daemon_dir(self) -> Path:
        assert self.run_dir is not None
        return self.run_dir
