"""What one metadata agent is told."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from neutrino.dataplane.ownership import OwnerTag


@dataclass(frozen=True, slots=True)
class MetadataConfig:
    """``backend``: where proxies forward (``unix:/path`` for Neutrino's own backend, or Nova's
    metadata API ``http://host:8775``); ``secret_file``: the 0600 file holding
    ``metadata_proxy_shared_secret``; ``namespace_prefix``: the DHCP agent's (``qdhcp-`` names)."""

    host: str
    state_dir: Path
    backend: str
    secret_file: Path
    namespace_prefix: str = ""
    owner: OwnerTag | None = None

    def __post_init__(self) -> None:
        if self.owner is None:
            object.__setattr__(self, "owner", OwnerTag(self.host))

    @property
    def owner_tag(self) -> OwnerTag:
        assert self.owner is not None
        return self.owner
