"""The dhcp role's kernel changes, as data (the planner returns them, ``role.run`` carries them out)."""

from __future__ import annotations

from dataclasses import dataclass

from neutrino.dataplane.dnsmasq import DnsmasqSpec


@dataclass(frozen=True, slots=True)
class EnsureNamespace:
    netns: str


@dataclass(frozen=True, slots=True)
class EnsurePortDevice:
    netns: str
    device: str
    tap: str
    mac: str
    mtu: int


@dataclass(frozen=True, slots=True)
class RemoveDevice:
    netns: str
    name: str


@dataclass(frozen=True, slots=True)
class AddAddress:
    netns: str
    device: str
    cidr: str


@dataclass(frozen=True, slots=True)
class RemoveAddress:
    netns: str
    device: str
    cidr: str


@dataclass(frozen=True, slots=True)
class EnsureDnsmasq:
    netns: str
    spec: DnsmasqSpec


@dataclass(frozen=True, slots=True)
class RemoveNetwork:
    """Stop the network's dnsmasq, delete its files, its devices and (if any) its namespace."""

    network_id: str
    netns: str | None


Action = EnsureNamespace | EnsurePortDevice | RemoveDevice | AddAddress | RemoveAddress | EnsureDnsmasq | RemoveNetwork
