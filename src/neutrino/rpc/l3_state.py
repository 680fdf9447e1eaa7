"""The l3 role's desired state (``sync_state`` reply, docs/agent-contract.md §6.3) as frozen data.

Shared by the server (which builds it from the database) and the agent (which reconciles the
router namespaces to it); neither side passes nameless dicts past this seam.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class RouterAddress:
    """One fixed IP of a router port, with what the router needs to know of its subnet."""

    subnet_id: str
    ip_address: str
    cidr: str
    gateway_ip: str | None = None

    @property
    def interface(self) -> str:
        """``ip/prefixlen`` as it goes on the device."""
        return f"{self.ip_address}/{self.cidr.rsplit('/', 1)[1]}"

    def to_dict(self) -> dict[str, Any]:
        return {"subnet_id": self.subnet_id, "ip_address": self.ip_address, "cidr": self.cidr,
                "gateway_ip": self.gateway_ip}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RouterAddress:
        return cls(data["subnet_id"], data["ip_address"], data["cidr"], data.get("gateway_ip"))


@dataclass(frozen=True, slots=True)
class RouterPort:
    """An interface (``qr-``) or gateway (``qg-``) port of a router."""

    port_id: str
    network_id: str
    mac_address: str
    mtu: int
    fixed_ips: tuple[RouterAddress, ...] = ()
    admin_state_up: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"port_id": self.port_id, "network_id": self.network_id, "mac_address": self.mac_address,
                "mtu": self.mtu, "fixed_ips": [f.to_dict() for f in self.fixed_ips],
                "admin_state_up": self.admin_state_up}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RouterPort:
        return cls(data["port_id"], data["network_id"], data["mac_address"], int(data["mtu"]),
                   tuple(RouterAddress.from_dict(f) for f in data.get("fixed_ips", ())),
                   bool(data.get("admin_state_up", True)))


@dataclass(frozen=True, slots=True)
class FloatingIp:
    """A floating IP associated with an address behind the router (1:1 NAT on the gateway)."""

    floatingip_id: str
    floating_ip_address: str
    fixed_ip_address: str
    fixed_port_id: str
    status: str = "DOWN"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.floatingip_id, "floating_ip_address": self.floating_ip_address,
                "fixed_ip_address": self.fixed_ip_address, "fixed_port_id": self.fixed_port_id,
                "status": self.status}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FloatingIp:
        return cls(data["id"], data["floating_ip_address"], data["fixed_ip_address"], data["fixed_port_id"],
                   data.get("status", "DOWN"))


@dataclass(frozen=True, slots=True)
class L3Router:
    router_id: str
    project_id: str
    admin_state_up: bool
    enable_snat: bool
    revision: int
    interfaces: tuple[RouterPort, ...] = ()
    gateway: RouterPort | None = None
    routes: tuple[tuple[str, str], ...] = ()  # (destination, nexthop)
    floating_ips: tuple[FloatingIp, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"router_id": self.router_id, "project_id": self.project_id, "admin_state_up": self.admin_state_up,
                "enable_snat": self.enable_snat, "revision": self.revision,
                "interfaces": [i.to_dict() for i in self.interfaces],
                "gateway": self.gateway.to_dict() if self.gateway is not None else None,
                "routes": [{"destination": d, "nexthop": n} for d, n in self.routes],
                "floating_ips": [f.to_dict() for f in self.floating_ips]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> L3Router:
        gateway = data.get("gateway")
        return cls(data["router_id"], data.get("project_id", ""), bool(data.get("admin_state_up", True)),
                   bool(data.get("enable_snat", True)), int(data.get("revision", 0)),
                   tuple(RouterPort.from_dict(i) for i in data.get("interfaces", ())),
                   RouterPort.from_dict(gateway) if gateway else None,
                   tuple((r["destination"], r["nexthop"]) for r in data.get("routes", ())),
                   tuple(FloatingIp.from_dict(f) for f in data.get("floating_ips", ())))


@dataclass(frozen=True, slots=True)
class L3State:
    host: str
    routers: tuple[L3Router, ...] = ()
    generated_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "role": "l3", "generated_at": self.generated_at,
                "routers": [r.to_dict() for r in self.routers]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> L3State:
        return cls(data["host"], tuple(L3Router.from_dict(r) for r in data.get("routers", ())),
                   float(data.get("generated_at", 0.0)))
