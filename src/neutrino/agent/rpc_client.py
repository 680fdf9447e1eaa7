"""The agent side of the agent contract: typed calls to the server over the bus."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from neutrino.bus.interface import Bus
from neutrino.contract.rpc import SERVER_TARGET


class AgentRpcClient:
    """One host's view of the server; every call names the host so the server can check it."""

    def __init__(self, bus: Bus, host: str, *, timeout: float = 30.0) -> None:
        self.bus = bus
        self.host = host
        self.timeout = timeout

    @property
    def heartbeat_timeout(self) -> float:
        """How long a heartbeat waits for its reply unless the agent backs off (at most 10 s)."""
        return min(self.timeout, 10.0)

    async def report_state(self, state: Mapping[str, Any], timeout: float | None = None) -> dict[str, Any]:
        return await self.bus.call(SERVER_TARGET, "report_state", {"host": self.host, **state},
                                   timeout or self.heartbeat_timeout)

    async def sync_state(self, role: str) -> dict[str, Any]:
        return await self.bus.call(SERVER_TARGET, "sync_state", {"host": self.host, "role": role}, self.timeout * 2)

    async def get_devices_details(self, devices: Sequence[str]) -> dict[str, Any]:
        return await self.bus.call(SERVER_TARGET, "get_devices_details", {"host": self.host, "devices": list(devices)},
                                   self.timeout)

    async def update_device_up(self, device: str) -> dict[str, Any]:
        return await self.bus.call(SERVER_TARGET, "update_device_up", {"host": self.host, "device": device}, self.timeout)

    async def update_device_list(self, devices_up: Sequence[str], devices_down: Sequence[str]) -> dict[str, Any]:
        return await self.bus.call(SERVER_TARGET, "update_device_list", {"host": self.host, "devices_up": list(devices_up),
                                                                  "devices_down": list(devices_down)}, self.timeout)

    async def update_device_down(self, device: str) -> dict[str, Any]:
        return await self.bus.call(SERVER_TARGET, "update_device_down", {"host": self.host, "device": device},
                                   self.timeout)

    async def update_floatingip_statuses(self, statuses: Mapping[str, str]) -> dict[str, Any]:
        """The l3 role's floating IPs as it realised them (``ACTIVE``/``DOWN``/``ERROR`` by id)."""
        return await self.bus.call(SERVER_TARGET, "update_floatingip_statuses",
                                   {"host": self.host, "statuses": dict(statuses)}, self.timeout)

    async def update_router_statuses(self, statuses: Mapping[str, str]) -> dict[str, Any]:
        """The l3 role's routers as it wired them (``ACTIVE``/``ERROR`` by id)."""
        return await self.bus.call(SERVER_TARGET, "update_router_statuses",
                                   {"host": self.host, "statuses": dict(statuses)}, self.timeout)

    async def update_ha_router_states(self, states: Mapping[str, str]) -> dict[str, Any]:
        """The l3 role's HA routers' VRRP states here (``active``/``standby`` by router id)."""
        return await self.bus.call(SERVER_TARGET, "update_ha_router_states",
                                   {"host": self.host, "states": dict(states)}, self.timeout)

    async def provisioning_complete(self, role: str, devices: Sequence[str]) -> dict[str, Any]:
        """This host's ``role`` finished these ports (tap names); the server activates the ready ones."""
        return await self.bus.call(SERVER_TARGET, "provisioning_complete",
                                   {"host": self.host, "role": role, "devices": list(devices)}, self.timeout)

    async def dhcp_ready_on_ports(self, ports: Sequence[tuple[str, str, Sequence[str]]]) -> dict[str, Any]:
        """This host's DHCP role serves these ports (``(port id, MAC, addresses)`` as its state named
        them): the server lifts their DHCP provisioning block (Neutron's ``dhcp_ready_on_ports``)."""
        return await self.bus.call(SERVER_TARGET, "dhcp_ready_on_ports",
                                   {"host": self.host, "ports": [[p, mac, list(ips)] for p, mac, ips in ports]},
                                   self.timeout)
