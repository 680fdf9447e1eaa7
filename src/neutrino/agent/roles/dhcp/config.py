"""What one DHCP agent is told about its host."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from neutrino.agent.config import HostScoped
from neutrino.dataplane.ownership import OwnerTag


@dataclass(frozen=True, slots=True)
class DhcpConfig(HostScoped):
    """``netns``: where the host ends (``tap<port[:11]>``) of DHCP ports go, so the host's L2 role
    wires them into the network bridges exactly as instances' taps; None is the real root namespace.
    ``namespace_prefix`` keeps the ``qdhcp-`` namespaces of simulated hosts that serve the same
    network on one kernel apart. ``state_dir``: the dnsmasq files, one directory per network.
    ``dns_servers``: dnsmasq's upstream resolvers; empty means the host's /etc/resolv.conf."""

    host: str
    state_dir: Path
    netns: str | None = None
    namespace_prefix: str = ""
    dns_servers: tuple[str, ...] = field(default=())
    owner: OwnerTag | None = None

    def __post_init__(self) -> None:
        self.settle_host()
