"""How a port's address is chosen: probing keeps it low and cheap, the exact scan decides near full.

``services/allocations.py`` probes a few candidate addresses by primary key instead of reading
every used address of the subnet; these tests pin what users see of that, on every backend.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from neutrino.services.allocations import probe_bands
from tests.db.api_client import Api, error_type, issue_token
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.asyncio(loop_scope="function")


@pytest_asyncio.fixture(loop_scope="function")
async def admin(any_backend_server: LiveServer) -> AsyncIterator[Api]:
    """Admin client; each test deletes the network it made (ports first) even when it fails."""
    async with httpx.AsyncClient(timeout=60) as client:
        token = await issue_token(client, any_backend_server.url, any_backend_server.clouds_yaml, "neutrino-admin")
        api = Api(client, [any_backend_server.url], token)
        api.networks = []  # type: ignore[attr-defined]
        try:
            yield api
        finally:
            for net_id in api.networks:  # type: ignore[attr-defined]
                ports = (await api.get(f"/v2.0/ports?network_id={net_id}&fields=id")).json()["ports"]
                await asyncio.gather(*(api.delete(f"/v2.0/ports/{port['id']}") for port in ports))
                await api.delete(f"/v2.0/networks/{net_id}")


async def _network_with_subnet(api: Api, cidr: str, **subnet: object) -> tuple[dict, dict]:
    net = await api.created("network", {"name": f"choice-{uuid.uuid4().hex[:8]}"})
    api.networks.append(net["id"])  # type: ignore[attr-defined]
    sub = await api.created("subnet", {"network_id": net["id"], "ip_version": 4, "cidr": cidr,
                                       "enable_dhcp": False, **subnet})
    return net, sub


def _addresses(port: dict) -> list[str]:
    return [ip["ip_address"] for ip in port["fixed_ips"]]


def test_probe_bands_cover_a_large_pool_in_doubling_bands_lowest_first() -> None:
    bands = probe_bands(65533, random.Random(1), window=1000, per_band=8, max_bands=9)

    limits = [(0, 1000), (1000, 2000), (2000, 4000), (4000, 8000), (8000, 16000), (16000, 32000),
              (32000, 64000), (64000, 65533)]
    assert len(bands) == len(limits)
    for offsets, (low, high) in zip(bands, limits, strict=True):
        assert len(offsets) == len(set(offsets)) == 8
        assert all(low <= o < high for o in offsets)


def test_probe_bands_list_every_offset_of_a_small_pool_and_stop_at_max_bands() -> None:
    [only] = probe_bands(13, random.Random(2), window=1000, per_band=16)
    assert sorted(only) == list(range(13))
    ipv6 = probe_bands(2 ** 64, random.Random(3), window=1000, per_band=8, max_bands=9)
    assert len(ipv6) == 9 and max(ipv6[-1]) < 2 ** 64 and min(ipv6[-1]) >= 128000


async def test_ports_on_a_large_sparse_pool_get_random_low_addresses(admin: Api) -> None:
    _, sub = await _network_with_subnet(admin, "10.91.0.0/16")
    body = {"ports": [{"network_id": sub["network_id"]} for _ in range(40)]}
    response = await admin.post("/v2.0/ports", body)
    assert response.status_code == 201, response.text

    offsets = [int(ipaddress.ip_address(a)) - int(ipaddress.ip_address("10.91.0.2"))
               for port in response.json()["ports"] for a in _addresses(port)]
    assert len(set(offsets)) == 40
    assert all(0 <= o < 1000 for o in offsets)  # among the first 1000 of the pool, as Neutron picks
    assert len({o // 100 for o in offsets}) > 3  # and spread over them, not handed out in sequence


async def test_one_port_asking_twice_on_one_subnet_gets_two_different_addresses(admin: Api) -> None:
    _, sub = await _network_with_subnet(admin, "10.92.0.0/29")  # pool .2-.6: five addresses
    port = await admin.created("port", {"network_id": sub["network_id"],
                                        "fixed_ips": [{"subnet_id": sub["id"]}] * 5})

    assert sorted(_addresses(port)) == [f"10.92.0.{i}" for i in range(2, 7)]


async def test_dhcp_ports_get_the_lowest_free_address(admin: Api) -> None:
    _, sub = await _network_with_subnet(admin, "10.93.0.0/24")
    await admin.created("port", {"network_id": sub["network_id"], "fixed_ips": [{"ip_address": "10.93.0.2"}]})

    first = await admin.created("port", {"network_id": sub["network_id"], "device_owner": "network:dhcp"})
    second = await admin.created("port", {"network_id": sub["network_id"], "device_owner": "network:dhcp"})

    assert _addresses(first) == ["10.93.0.3"] and _addresses(second) == ["10.93.0.4"]


async def test_nearly_full_pool_hands_out_exactly_the_last_free_addresses_then_fails(admin: Api) -> None:
    _, sub = await _network_with_subnet(admin, "10.94.0.0/26")  # pool .2-.62: more than one probe batch
    last_free = {"10.94.0.7", "10.94.0.40", "10.94.0.62"}
    fill = [f"10.94.0.{i}" for i in range(2, 63) if f"10.94.0.{i}" not in last_free]
    response = await admin.post("/v2.0/ports", {"ports": [
        {"network_id": sub["network_id"], "fixed_ips": [{"ip_address": ip}]} for ip in fill]})
    assert response.status_code == 201, response.text

    got = {_addresses(await admin.created("port", {"network_id": sub["network_id"]}))[0] for _ in range(3)}
    full = await admin.post("/v2.0/ports", {"port": {"network_id": sub["network_id"]}})

    assert got == last_free
    assert error_type(full) == (409, "IpAddressGenerationFailure")


async def test_an_address_freed_on_a_full_pool_is_handed_out_again(admin: Api) -> None:
    _, sub = await _network_with_subnet(admin, "10.95.0.0/28")
    ports = [await admin.created("port", {"network_id": sub["network_id"]}) for _ in range(13)]
    assert error_type(await admin.post("/v2.0/ports", {"port": {"network_id": sub["network_id"]}})) == (
        409, "IpAddressGenerationFailure")

    freed = ports[5]
    assert (await admin.delete(f"/v2.0/ports/{freed['id']}")).status_code == 204
    again = await admin.created("port", {"network_id": sub["network_id"]})

    assert _addresses(again) == _addresses(freed)
