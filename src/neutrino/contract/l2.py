"""The l2 role's desired state (``sync_state`` reply, docs/agent-contract.md §6.1) as frozen data.

Shared by the server (which builds it from the database) and the agent (which reconciles the
kernel to it); neither side passes nameless dicts past this seam. On the wire through
:mod:`neutrino.contract.codec`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from neutrino.contract.codec import wire


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    network_type: str
    segmentation_id: int | None
    physical_network: str | None


@dataclass(frozen=True, slots=True)
class L2Port:
    port_id: str
    device: str
    network_id: str
    mac_address: str
    fixed_ips: tuple[tuple[str, str], ...] = field(metadata=wire(row=("subnet_id", "ip_address")))
    admin_state_up: bool = field(metadata=wire(absent=True))
    device_owner: str = field(metadata=wire(absent=""))
    segment: SegmentInfo
    mtu: int
    port_security_enabled: bool = True
    security_group_ids: tuple[str, ...] = ()
    # (ip_address or cidr, mac_address)
    allowed_address_pairs: tuple[tuple[str, str], ...] = field(
        default=(), metadata=wire(row=("ip_address", "mac_address")))
    qos_policy_id: str | None = None
    revision: int = 0
    # The port's status as the server has it (ACTIVE, DOWN, BUILD...); None from an older server.
    status: str | None = None


@dataclass(frozen=True, slots=True)
class FdbEntry:
    mac_address: str
    ip_address: str | None
    tunneling_ip: str


@dataclass(frozen=True, slots=True)
class L2Network:
    network_id: str
    segment: SegmentInfo
    mtu: int
    flood: tuple[str, ...] = ()        # underlay IPs of other hosts with ports on this network
    fdb: tuple[FdbEntry, ...] = ()     # l2 population: where each remote MAC lives


@dataclass(frozen=True, slots=True)
class L2State:
    host: str
    tunneling_ip: str | None
    ports: tuple[L2Port, ...] = ()
    networks: tuple[L2Network, ...] = ()
    generated_at: float = 0.0
    # Sections later roles add, carried at the top level of the reply.
    extra: Mapping[str, Any] = field(default_factory=dict, metadata=wire(rest=True))
    role: str = field(default="l2", init=False)
