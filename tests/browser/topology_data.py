"""A busy project made through the API: what the topology screenshot, test and benchmark draw."""

from __future__ import annotations

import uuid

import httpx

from tests.support.live_server import LiveServer
from tests.support.tenants import Persona


def build_topology(server: LiveServer, user: Persona, networks: int, ports_per_network: int) -> dict[str, int]:
    """Networks with a subnet each, ports on them (some grouped as instances), routers joining them."""
    api = httpx.Client(base_url=server.url + "/v2.0", headers={"x-auth-token": user.token}, timeout=120)
    try:
        nets = api.post("/networks", json={"networks": [{"name": f"net-{i:02d}"} for i in range(networks)]})
        nets.raise_for_status()
        net_ids = [n["id"] for n in nets.json()["networks"]]
        subnets = api.post("/subnets", json={"subnets": [
            {"network_id": nid, "cidr": f"10.{100 + i}.0.0/24", "ip_version": 4, "name": f"sub-{i:02d}"}
            for i, nid in enumerate(net_ids)]})
        subnets.raise_for_status()
        sub_ids = [s["id"] for s in subnets.json()["subnets"]]
        ports = []
        for i, nid in enumerate(net_ids):
            for j in range(ports_per_network):
                vm = f"{i:04d}{j // 2:04d}-0000-4000-8000-000000000000"  # two ports per instance
                ports.append({"network_id": nid, "name": f"p{i}-{j}", "device_owner": "compute:nova",
                              "device_id": f"{uuid.UUID(int=int(vm.replace('-', ''), 16))}"})
        api.post("/ports", json={"ports": ports}).raise_for_status()
        for r in range(max(1, networks // 5)):
            router = api.post("/routers", json={"router": {"name": f"router-{r}"}}).json()["router"]
            for sid in sub_ids[r * 5:(r + 1) * 5]:
                api.put(f"/routers/{router['id']}/add_router_interface", json={"subnet_id": sid}).raise_for_status()
        return {"networks": networks, "ports": len(ports)}
    finally:
        api.close()
