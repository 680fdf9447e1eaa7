"""The l2 role's desired state (``sync_state`` reply, docs/agent-contract.md §6.1) as frozen data.

Shared by the server (which builds it from the database) and the agent (which reconciles the
kernel to it); neither side passes nameless dicts past this seam.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    network_type: str
    segmentation_id: int | None
    physical_network: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"network_type": self.network_type, "segmentation_id": self.segmentation_id,
                "physical_network": self.physical_network}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SegmentInfo:
        return cls(data["network_type"], data.get("segmentation_id"), data.get("physical_network"))


@dataclass(frozen=True, slots=True)
class L2Port:
    port_id: str
    device: str
    network_id: str
    mac_address: str
    fixed_ips: tuple[tuple[str, str], ...]  # (subnet_id, ip_address)
    admin_state_up: bool
    device_owner: str
    segment: SegmentInfo
    mtu: int
    port_security_enabled: bool = True
    security_group_ids: tuple[str, ...] = ()
    allowed_address_pairs: tuple[tuple[str, str], ...] = ()  # (ip_address or cidr, mac_address)
    qos_policy_id: str | None = None
    revision: int = 0
    # The port's status as the server has it (ACTIVE, DOWN, BUILD...); None from an older server.
    status: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "port_id": self.port_id, "device": self.device, "network_id": self.network_id,
            "mac_address": self.mac_address,
            "fixed_ips": [{"subnet_id": s, "ip_address": ip} for s, ip in self.fixed_ips],
            "admin_state_up": self.admin_state_up, "device_owner": self.device_owner,
            "segment": self.segment.to_dict(), "mtu": self.mtu, "port_security_enabled": self.port_security_enabled,
            "security_group_ids": list(self.security_group_ids),
            "allowed_address_pairs": [{"ip_address": ip, "mac_address": mac} for ip, mac in self.allowed_address_pairs],
            "qos_policy_id": self.qos_policy_id, "revision": self.revision, "status": self.status,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> L2Port:
        return cls(
            port_id=data["port_id"], device=data["device"], network_id=data["network_id"],
            mac_address=data["mac_address"],
            fixed_ips=tuple((f["subnet_id"], f["ip_address"]) for f in data.get("fixed_ips", ())),
            admin_state_up=bool(data.get("admin_state_up", True)), device_owner=data.get("device_owner", ""),
            segment=SegmentInfo.from_dict(data["segment"]), mtu=int(data["mtu"]),
            port_security_enabled=bool(data.get("port_security_enabled", True)),
            security_group_ids=tuple(data.get("security_group_ids", ())),
            allowed_address_pairs=tuple((p["ip_address"], p.get("mac_address", ""))
                                        for p in data.get("allowed_address_pairs", ())),
            qos_policy_id=data.get("qos_policy_id"), revision=int(data.get("revision", 0)),
            status=data.get("status"))


@dataclass(frozen=True, slots=True)
class FdbEntry:
    mac_address: str
    ip_address: str | None
    tunneling_ip: str

    def to_dict(self) -> dict[str, Any]:
        return {"mac_address": self.mac_address, "ip_address": self.ip_address, "tunneling_ip": self.tunneling_ip}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FdbEntry:
        return cls(data["mac_address"], data.get("ip_address"), data["tunneling_ip"])


@dataclass(frozen=True, slots=True)
class L2Network:
    network_id: str
    segment: SegmentInfo
    mtu: int
    flood: tuple[str, ...] = ()        # underlay IPs of other hosts with ports on this network
    fdb: tuple[FdbEntry, ...] = ()     # l2 population: where each remote MAC lives

    def to_dict(self) -> dict[str, Any]:
        return {"network_id": self.network_id, "segment": self.segment.to_dict(), "mtu": self.mtu,
                "flood": list(self.flood), "fdb": [f.to_dict() for f in self.fdb]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> L2Network:
        return cls(data["network_id"], SegmentInfo.from_dict(data["segment"]), int(data["mtu"]),
                   tuple(data.get("flood", ())), tuple(FdbEntry.from_dict(f) for f in data.get("fdb", ())))


@dataclass(frozen=True, slots=True)
class L2State:
    host: str
    tunneling_ip: str | None
    ports: tuple[L2Port, ...] = ()
    networks: tuple[L2Network, ...] = ()
    generated_at: float = 0.0
    extra: Mapping[str, Any] = field(default_factory=dict)  # sections later roles add

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "role": "l2", "generated_at": self.generated_at,
                "tunneling_ip": self.tunneling_ip, "ports": [p.to_dict() for p in self.ports],
                "networks": [n.to_dict() for n in self.networks], **dict(self.extra)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> L2State:
        known = {"host", "role", "generated_at", "tunneling_ip", "ports", "networks"}
        return cls(data["host"], data.get("tunneling_ip"), tuple(L2Port.from_dict(p) for p in data.get("ports", ())),
                   tuple(L2Network.from_dict(n) for n in data.get("networks", ())),
                   float(data.get("generated_at", 0.0)), {k: v for k, v in data.items() if k not in known})
