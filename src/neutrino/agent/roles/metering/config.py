"""What one metering agent is told."""

from __future__ import annotations

from dataclasses import dataclass, field

from neutrino.agent.config import HostScoped
from neutrino.dataplane.ownership import OwnerTag


@dataclass(frozen=True, slots=True)
class MeteringConfig(HostScoped):
    """``namespace_prefix``: the L3 agent's (``qrouter-`` names of simulated hosts); the intervals and
    ``granular_traffic_data`` are Neutron's metering agent options (``[metering]``)."""

    host: str
    namespace_prefix: str = ""
    measure_interval: float = 30.0
    report_interval: float = 300.0
    granular_traffic_data: bool = False
    owner: OwnerTag | None = None

    netns: None = field(default=None, init=False)  # counters live in the qrouter- namespaces, not a host one

    def __post_init__(self) -> None:
        self.settle_host()
