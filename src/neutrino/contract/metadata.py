"""The metadata role's desired state (``sync_state`` reply, docs/agent-contract.md §6.4) as frozen data.

Per namespace this host serves metadata from (``qdhcp-`` of a network without a router that this
host's DHCP agent serves, ``qrouter-`` of a router this host's L3 agent hosts): the map from an
instance's source address to who it is, which the proxy in that namespace uses to sign its
requests (caller identified by (network or router, source IP) -> port -> device_id, as Neutron).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field


def sign(secret: str, instance_id: str) -> str:
    """``X-Instance-ID-Signature``: hex HMAC-SHA256 of the instance id with ``metadata_proxy_shared_secret``
    (what Neutron's metadata agent sends and Nova's metadata API verifies)."""
    return hmac.new(secret.encode(), instance_id.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class MetadataInstance:
    ip_address: str
    port_id: str
    device_id: str   # the instance (Nova's uuid)
    project_id: str


@dataclass(frozen=True, slots=True)
class MetadataNetwork:
    """Metadata through the DHCP namespace: a network without a router, served by this host's DHCP agent."""

    network_id: str
    instances: tuple[MetadataInstance, ...] = ()


@dataclass(frozen=True, slots=True)
class MetadataRouter:
    """Metadata through the router namespace: the instances on the router's internal networks.

    ``interfaces``: the router's internal ports (its ``qr-`` devices), where instances reach
    ``fe80::a9fe:a9fe``; ``ha``: an HA router, whose namespace has IPv6 off (keepalived owns the
    ``qr-`` addresses), so it serves metadata over IPv4 only."""

    router_id: str
    instances: tuple[MetadataInstance, ...] = ()
    interfaces: tuple[str, ...] = ()
    ha: bool = False


@dataclass(frozen=True, slots=True)
class MetadataState:
    host: str
    networks: tuple[MetadataNetwork, ...] = ()
    routers: tuple[MetadataRouter, ...] = ()
    generated_at: float = 0.0
    role: str = field(default="metadata", init=False)
