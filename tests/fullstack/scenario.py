"""What one test makes in a shared deployment (networks, instances), removed after it even on failure.

Tests share one deployment per session (bringing one up costs ~10 s), so each must leave it as it
found it: every network and instance made through a ``Scenario`` is deleted by ``close``, instances
first (``neutrino instance delete``, falling back to removing the namespace and port directly).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tests.fullstack.deployment import Deployment, Instance
from tests.fullstack.networking_api import ApiError


@dataclass(frozen=True, slots=True)
class InstanceSpec:
    label: str
    network_id: str
    host: str
    cloud: str = "neutrino-demo"
    fixed_ip: str | None = None


@dataclass
class Scenario:
    deployment: Deployment
    networks: list[str] = field(default_factory=list)
    instances: list[Instance] = field(default_factory=list)

    def network(self, label: str, cidr: str, *, cloud: str = "neutrino-demo", subnet: dict[str, Any] | None = None,
                **attrs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """A network with one IPv4 subnet (no DHCP: instances take their addresses statically)."""
        api = self.deployment.api(cloud)
        network = api.create_network(self.deployment.unique(label), **attrs)
        self.networks.append(network["id"])
        created = api.create_subnet(network["id"], cidr, self.deployment.unique(label),
                                    enable_dhcp=False, **(subnet or {}))
        return network, created

    def instance(self, label: str, network_id: str, host: str, *, cloud: str = "neutrino-demo",
                 fixed_ip: str | None = None, wait_active: bool = True) -> Instance:
        instance = self.deployment.create_instance(label, network_id, host, cloud=cloud, fixed_ip=fixed_ip,
                                                   wait_active=wait_active)
        self.instances.append(instance)
        return instance

    def instances_of(self, specs: Sequence[InstanceSpec]) -> list[Instance]:
        """Several instances created concurrently (each ``instance create`` is its own process), all ACTIVE."""
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = [pool.submit(self.instance, s.label, s.network_id, s.host, cloud=s.cloud, fixed_ip=s.fixed_ip)
                       for s in specs]
            return [future.result() for future in futures]

    def delete(self, instance: Instance) -> None:
        self.deployment.delete_instance(instance)
        self.instances.remove(instance)

    def close(self) -> None:
        admin = self.deployment.api()
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(self.deployment.forget_instance, self.instances))
        self.instances.clear()
        for network_id in reversed(self.networks):
            with contextlib.suppress(ApiError):
                for port in admin.ports(network_id=network_id):
                    admin.delete_port(port["id"])
                admin.delete_network(network_id)
        self.networks.clear()
