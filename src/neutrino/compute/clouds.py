"""The Networking API as Nova uses it, through openstacksdk, with two sets of credentials.

Like Nova, the instance simulator acts as two parties: the *user* (whose project owns the port;
chosen as the ``openstack`` CLI does, from ``--os-cloud``/``OS_CLOUD`` or the ``OS_*`` variables,
with ``OS_CLIENT_CONFIG_FILE`` naming the clouds.yaml), and the *compute service* (the ``service``
role, the only non-admin allowed to set ``binding:host_id``; cloud ``neutrino-compute`` from the same
clouds.yaml unless ``--compute-cloud``/``NEUTRINO_COMPUTE_CLOUD`` says otherwise).

clouds.yaml is looked for in ``OS_CLIENT_CONFIG_FILE`` first, then the state directory (where
``neutrino up`` writes it), then openstacksdk's usual places; the first file found is used.

openstacksdk is blocking: every request runs in a worker thread, and its answers are converted to
frozen dataclasses here, so no SDK object or SDK exception leaves this module (failures become
:class:`~neutrino.compute.errors.CloudRequestFailed` naming the action and the cloud).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from neutrino.compute.errors import CloudRequestFailed
from neutrino.compute.vif import SubnetFacts

DEFAULT_COMPUTE_CLOUD = "neutrino-compute"
COMPUTE_CLOUD_VARIABLE = "NEUTRINO_COMPUTE_CLOUD"
# What Nova puts on the ports of its instances.
COMPUTE_DEVICE_OWNER = "compute:nova"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CloudChoice:
    """Which clouds to act as, and the clouds.yaml files to look in (after OS_CLIENT_CONFIG_FILE)."""

    # None: no cloud named; openstacksdk then reads the OS_* variables, as the openstack CLI does.
    user_cloud: str | None
    compute_cloud: str
    config_files: tuple[str, ...]


def choose_clouds(
    *, os_cloud: str | None, compute_cloud: str | None, environ: Mapping[str, str], state_dir: Path
) -> CloudChoice:
    """Decide the clouds from the command line, then the environment, then the defaults."""
    from openstack.config.loader import CONFIG_FILES

    return CloudChoice(
        user_cloud=os_cloud or environ.get("OS_CLOUD") or None,
        compute_cloud=compute_cloud or environ.get(COMPUTE_CLOUD_VARIABLE) or DEFAULT_COMPUTE_CLOUD,
        config_files=(str(state_dir / "clouds.yaml"), *CONFIG_FILES),
    )


# ---- plain data -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NetworkFacts:
    id: str
    name: str
    mtu: int | None
    subnet_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PortFacts:
    id: str
    name: str
    network_id: str
    project_id: str
    mac_address: str
    # ({"subnet_id": ..., "ip_address": ...}, ...) as the API returns them.
    fixed_ips: tuple[Mapping[str, str], ...]
    status: str
    device_owner: str
    device_id: str
    # Only shown to admin and service callers; None when hidden.
    binding_host_id: str | None
    binding_vif_type: str | None

    @property
    def ip_addresses(self) -> tuple[str, ...]:
        return tuple(ip["ip_address"] for ip in self.fixed_ips)


def _port(port: Any) -> PortFacts:
    return PortFacts(
        id=port.id,
        name=port.name or "",
        network_id=port.network_id,
        project_id=port.project_id or "",
        mac_address=port.mac_address,
        fixed_ips=tuple(
            {"subnet_id": ip["subnet_id"], "ip_address": ip["ip_address"]} for ip in port.fixed_ips or ()
        ),
        status=port.status or "",
        device_owner=port.device_owner or "",
        device_id=port.device_id or "",
        binding_host_id=port.binding_host_id,
        binding_vif_type=port.binding_vif_type,
    )


def _subnet(subnet: Any) -> SubnetFacts:
    return SubnetFacts(
        id=subnet.id,
        cidr=ipaddress.ip_network(subnet.cidr),
        gateway_ip=ipaddress.ip_address(subnet.gateway_ip) if subnet.gateway_ip else None,
        host_routes=tuple(
            (ipaddress.ip_network(r["destination"]), ipaddress.ip_address(r["nexthop"]))
            for r in subnet.host_routes or ()
        ),
        enable_dhcp=bool(subnet.is_dhcp_enabled),
    )


# ---- the client ---------------------------------------------------------------------------------------------


def _describe(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    details = getattr(exc, "details", None)
    if status and details:
        return f"{status} {details}"
    return str(exc) or type(exc).__name__


class NetworkingClient:
    """One authenticated connection (one cloud's credentials) to the Networking API."""

    def __init__(self, cloud: str | None, config_files: Sequence[str]) -> None:
        self.cloud = cloud
        self._config_files = list(config_files)
        self._connection: Any = None

    def _connect(self) -> Any:
        if self._connection is None:
            from openstack.config.loader import OpenStackConfig
            from openstack.connection import Connection

            config = OpenStackConfig(config_files=self._config_files)
            self._connection = Connection(config=config.get_one(cloud=self.cloud))
        return self._connection

    async def _call(self, action: str, request: Callable[[Any], T]) -> T:
        from keystoneauth1.exceptions import ClientException
        from openstack.exceptions import SDKException

        def run() -> T:
            return request(self._connect())

        try:
            return await asyncio.to_thread(run)
        except (SDKException, ClientException) as exc:
            detail = _describe(exc)
            if self.cloud is None and "auth" in detail.lower():
                detail += " (no cloud selected: pass --os-cloud or set OS_CLOUD, e.g. neutrino-demo)"
            raise CloudRequestFailed(action, self.cloud, detail) from exc

    async def find_network(self, name_or_id: str) -> NetworkFacts:
        network = await self._call(
            f"finding network {name_or_id!r}",
            lambda c: c.network.find_network(name_or_id, ignore_missing=False),
        )
        return NetworkFacts(network.id, network.name or "", network.mtu, tuple(network.subnet_ids or ()))

    async def find_subnet_id(self, name_or_id: str, network_id: str) -> str:
        subnet = await self._call(
            f"finding subnet {name_or_id!r}",
            lambda c: c.network.find_subnet(name_or_id, ignore_missing=False, network_id=network_id),
        )
        return str(subnet.id)

    async def find_security_group_id(self, name_or_id: str) -> str:
        group = await self._call(
            f"finding security group {name_or_id!r}",
            lambda c: c.network.find_security_group(name_or_id, ignore_missing=False),
        )
        return str(group.id)

    async def get_subnet(self, subnet_id: str) -> SubnetFacts:
        return _subnet(await self._call(f"reading subnet {subnet_id}", lambda c: c.network.get_subnet(subnet_id)))

    async def create_port(
        self,
        *,
        network_id: str,
        name: str,
        device_id: str,
        fixed_ips: Sequence[Mapping[str, str]] = (),
        security_group_ids: Sequence[str] = (),
        port_security: bool = True,
    ) -> PortFacts:
        attrs: dict[str, Any] = {
            "network_id": network_id,
            "name": name,
            "device_owner": COMPUTE_DEVICE_OWNER,
            "device_id": device_id,
        }
        if fixed_ips:
            attrs["fixed_ips"] = [dict(ip) for ip in fixed_ips]
        if security_group_ids:
            attrs["security_group_ids"] = list(security_group_ids)
        if not port_security:  # no groups, no anti-spoofing: the port passes everything (Neutron's meaning)
            attrs["port_security_enabled"] = False
        port = await self._call(f"creating the port of {name!r}", lambda c: c.network.create_port(**attrs))
        return _port(port)

    async def bind_port(self, port_id: str, host: str) -> PortFacts:
        """Set ``binding:host_id``, as Nova does once it has picked the host (admin/service only)."""
        port = await self._call(
            f"binding port {port_id} to host {host!r}",
            lambda c: c.network.update_port(port_id, binding_host_id=host),
        )
        return _port(port)

    async def get_port(self, port_id: str) -> PortFacts | None:
        from openstack.exceptions import NotFoundException

        def get(c: Any) -> Any:
            try:
                return c.network.get_port(port_id)
            except NotFoundException:
                return None

        port = await self._call(f"reading port {port_id}", get)
        return None if port is None else _port(port)

    async def list_compute_ports(self) -> tuple[PortFacts, ...]:
        ports = await self._call(
            "listing instance ports",
            lambda c: list(c.network.ports(device_owner=COMPUTE_DEVICE_OWNER)),
        )
        return tuple(_port(p) for p in ports)

    async def delete_port(self, port_id: str) -> None:
        """Delete the port; one that is already gone counts as deleted."""
        await self._call(f"deleting port {port_id}", lambda c: c.network.delete_port(port_id, ignore_missing=True))

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
