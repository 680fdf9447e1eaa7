"""The frozen records that cross the IPAM seam.

Services build these from their rows and hand them to the pure functions of this package; nothing
here knows where the values came from. ``UNSET`` distinguishes "attribute absent from the request"
from an explicit ``null`` (``gateway_ip: null`` means "no gateway", absence means "the default").
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal, TypeAlias

IPV6_SLAAC = "slaac"
DHCPV6_STATEFUL = "dhcpv6-stateful"
DHCPV6_STATELESS = "dhcpv6-stateless"
IPV6_MODES = (DHCPV6_STATEFUL, DHCPV6_STATELESS, IPV6_SLAAC)
# Modes in which hosts build their own address from the prefix and their MAC (EUI-64).
AUTO_ADDRESS_MODES = (IPV6_SLAAC, DHCPV6_STATELESS)


class _Unset(enum.Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset.UNSET
"""Marks a request attribute that was not given at all (as opposed to given as ``null``)."""

Unset: TypeAlias = Literal[_Unset.UNSET]


def is_auto_address(ipv6_ra_mode: str | None, ipv6_address_mode: str | None) -> bool:
    """True for SLAAC / DHCPv6-stateless subnets, whose port addresses are EUI-64 derived.

    Either mode being an auto mode is enough, as in Neutron (an RA-only SLAAC subnet still makes
    hosts autoconfigure).
    """
    return ipv6_address_mode in AUTO_ADDRESS_MODES or ipv6_ra_mode in AUTO_ADDRESS_MODES


@dataclass(frozen=True, slots=True)
class SubnetInfo:
    """What IPAM needs to know about an existing subnet.

    ``allocation_pools`` are ``(start, end)`` address strings, inclusive, in stored order.
    """

    id: str
    network_id: str
    cidr: str
    ip_version: int
    gateway_ip: str | None = None
    allocation_pools: tuple[tuple[str, str], ...] = ()
    ipv6_address_mode: str | None = None
    ipv6_ra_mode: str | None = None
    service_types: tuple[str, ...] = ()
    enable_dhcp: bool = True
    subnetpool_id: str | None = None

    @property
    def is_auto_address(self) -> bool:
        return self.ip_version == 6 and is_auto_address(self.ipv6_ra_mode, self.ipv6_address_mode)


@dataclass(frozen=True, slots=True)
class FixedIp:
    """One address of a port: the ``fixed_ips`` entry as stored and shown."""

    subnet_id: str
    ip_address: str

    def as_dict(self) -> dict[str, str]:
        return {"subnet_id": self.subnet_id, "ip_address": self.ip_address}
