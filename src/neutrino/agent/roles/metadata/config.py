"""What one metadata agent is told."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from neutrino.agent.config import HostScoped
from neutrino.dataplane.ownership import OwnerTag


@dataclass(frozen=True, slots=True)
class MetadataConfig(HostScoped):
    """``backend``: where proxies forward (``unix:/path`` for Neutrino's own backend, or Nova's
    metadata API ``http://host:8775``); ``secret_file``: the 0600 file holding
    ``metadata_proxy_shared_secret``; ``namespace_prefix``: the DHCP agent's (``qdhcp-`` names)."""

    host: str
    state_dir: Path
    backend: str
    secret_file: Path
    namespace_prefix: str = ""
    owner: OwnerTag | None = None

    netns: None = field(default=None, init=False)  # proxies run in the qdhcp- namespaces, not a host one

    def __post_init__(self) -> None:
        self.settle_host()
