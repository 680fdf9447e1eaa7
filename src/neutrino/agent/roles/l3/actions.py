"""The kernel changes the l3 planner asks for, as frozen data; ``role.L3Kernel.run`` carries them out.

Every action names the router namespace it changes. The namespace, the router ports' veths
(``EnsurePortDevice``), their addresses and device removal are the agent's shared actions
(``neutrino.agent.actions``), as the dhcp role builds the same in its namespaces.
"""

from __future__ import annotations

from dataclasses import dataclass

from neutrino.agent.actions import AddAddress, EnsureNamespace, EnsurePortDevice, RemoveAddress, RemoveDevice
from neutrino.agent.roles.l3.qos import ShapeGateway

__all__ = ["Action", "AddAddress", "AddMultipathRoute", "AddRoute", "AnnounceAddress", "EnsureNamespace",
           "EnsurePortDevice", "EnsureRadvd", "LoadNat", "LoadNdpFilter", "ProxyNeighbour", "RemoveAddress", "RemoveDevice", "RemoveNamespace",
           "RemoveNat", "RemoveNdpFilter", "RemoveRoute", "SetSysctl", "ShapeGateway", "StopRadvd",
           "UnproxyNeighbour"]


@dataclass(frozen=True, slots=True)
class SetSysctl:
    netns: str
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class AddRoute:
    netns: str
    destination: str
    gateway: str
    device: str | None = None


@dataclass(frozen=True, slots=True)
class RemoveRoute:
    netns: str
    destination: str


@dataclass(frozen=True, slots=True)
class LoadNat:
    netns: str
    router_id: str
    body: str


@dataclass(frozen=True, slots=True)
class RemoveNat:
    netns: str
    router_id: str


@dataclass(frozen=True, slots=True)
class AnnounceAddress:
    """Gratuitous ARP for a floating IP that just came onto ``device``, so upstream neighbours
    (the external network's gateway, other routers) send its traffic here at once."""

    netns: str
    device: str
    address: str


@dataclass(frozen=True, slots=True)
class AddMultipathRoute:
    """An extra route whose destination has several nexthops: one ECMP route over all of them."""

    netns: str
    destination: str
    gateways: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EnsureRadvd:
    """radvd runs in the router's namespace with this configuration (reloaded if it changed)."""

    netns: str
    router_id: str
    config: str


@dataclass(frozen=True, slots=True)
class StopRadvd:
    netns: str
    router_id: str


@dataclass(frozen=True, slots=True)
class EnsureKeepalived:
    """keepalived runs the HA router's VRRP instance in its namespace with this configuration
    (reloaded if it changed)."""

    netns: str
    router_id: str
    config: str


@dataclass(frozen=True, slots=True)
class StopKeepalived:
    netns: str
    router_id: str


@dataclass(frozen=True, slots=True)
class ProxyNeighbour:
    """``device`` answers neighbour solicitations for ``address`` (an NDP proxy)."""

    netns: str
    device: str
    address: str


@dataclass(frozen=True, slots=True)
class UnproxyNeighbour:
    netns: str
    device: str
    address: str


@dataclass(frozen=True, slots=True)
class LoadNdpFilter:
    """The router's ``ip6 neutrino-ndp`` table (``ndp_proxy.py``) becomes this body."""

    netns: str
    body: str


@dataclass(frozen=True, slots=True)
class RemoveNdpFilter:
    netns: str


@dataclass(frozen=True, slots=True)
class RemoveNamespace:
    netns: str


Action = (EnsureNamespace | SetSysctl | RemoveDevice | EnsurePortDevice | AddAddress | RemoveAddress | AddRoute
          | AddMultipathRoute | RemoveRoute | LoadNat | RemoveNat | AnnounceAddress | EnsureRadvd | StopRadvd
          | EnsureKeepalived | StopKeepalived | RemoveNamespace | ShapeGateway | ProxyNeighbour | UnproxyNeighbour
          | LoadNdpFilter | RemoveNdpFilter)
