"""The dhcp role's kernel changes, as data (the planner returns them, ``role.run`` carries them out);
those the l3 role plans too are the agent's shared ones (``neutrino.agent.actions``)."""

from __future__ import annotations

from dataclasses import dataclass

from neutrino.agent.actions import AddAddress, EnsureNamespace, EnsurePortDevice, RemoveAddress, RemoveDevice
from neutrino.dataplane.dnsmasq import DnsmasqSpec

__all__ = ["Action", "AddAddress", "EnsureDnsmasq", "EnsureNamespace", "EnsurePortDevice", "RemoveAddress",
           "RemoveDevice", "RemoveNetwork"]


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
