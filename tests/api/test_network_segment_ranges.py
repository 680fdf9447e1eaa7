"""network-segment-range on live servers: the admin manages ranges with ``openstack network segment
range``; the configured ranges are the read-only defaults; a project's range gives its tenant networks
their VNIs and no other project's, concurrent creates never share one; the errors tempest checks and
members seeing no range.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.test_port_extensions import World as CliWorld
from tests.support.live_server import LiveServer, start_server
from tests.support.neutron_http import api, created, neutron_error, ok
from tests.support.project_network import projects_with_network
from tests.support.tenants import two_member_projects


@pytest.fixture(scope="module")
def cli(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliWorld]:
    with projects_with_network(live_server, tmp_path_factory.mktemp("nsr") / "clouds.yaml", "nsr") as w:
        yield CliWorld(w.a, w.b, w.adm, {**live_server.env(), "OS_CLIENT_CONFIG_FILE": str(w.clouds)},
                       w.network_id)


def test_listed_with_the_configured_ranges_as_read_only_defaults(cli: CliWorld) -> None:
    assert "network-segment-range" in {e["alias"] for e in ok(cli.a.get("/extensions"), "extensions")}
    defaults = ok(cli.adm.get("/network_segment_ranges", params={"default": "true"}), "network_segment_ranges")
    assert {(r["network_type"], r["physical_network"], r["minimum"], r["maximum"], r["shared"]) for r in defaults} \
        == {("vxlan", None, 1, 65535, True), ("vlan", "physnet1", 1000, 2999, True)}
    vlan = next(r for r in defaults if r["network_type"] == "vlan")
    assert len(vlan["available"]) + len(vlan["used"]) == 2000
    # An id filter that is no UUID matches nothing (neutron-tempest-plugin lists ``?id=33``).
    assert ok(cli.adm.get("/network_segment_ranges", params={"id": "33"}), "network_segment_ranges") == []
    assert [r["id"] for r in ok(cli.adm.get("/network_segment_ranges", params={"id": vlan["id"]}),
                                "network_segment_ranges")] == [vlan["id"]]
    neutron_error(cli.adm.put(f"/network_segment_ranges/{vlan['id']}", json={"network_segment_range": {
        "minimum": 1001}}), 400, "NetworkSegmentRangeDefaultReadOnly")
    neutron_error(cli.adm.delete(f"/network_segment_ranges/{vlan['id']}"), 400,
                  "NetworkSegmentRangeDefaultReadOnly")
    # Members see none and make none.
    assert ok(cli.a.get("/network_segment_ranges"), "network_segment_ranges") == []
    neutron_error(cli.a.get(f"/network_segment_ranges/{vlan['id']}"), 404, "NetworkSegmentRangeNotFound")
    neutron_error(cli.a.post("/network_segment_ranges", json={"network_segment_range": {
        "network_type": "vxlan", "minimum": 5, "maximum": 6}}), 403, "PolicyNotAuthorized")


def test_admin_manages_a_project_range_with_the_cli(cli: CliWorld) -> None:
    project = ok(cli.a.get(f"/networks/{cli.network_id}"), "network")["project_id"]
    made = cli.cli("neutrino-admin", "network", "segment", "range", "create", "--network-type", "vlan",
                   "--physical-network", "physnet9", "--minimum", "100", "--maximum", "109", "--private",
                   "--project", project, "nsr-range")
    try:
        shown = ok(cli.adm.get(f"/network_segment_ranges/{made['id']}"), "network_segment_range")
        assert (shown["name"], shown["shared"], shown["default"], shown["project_id"], shown["minimum"],
                shown["maximum"], shown["used"], shown["available"]) == \
            ("nsr-range", False, False, project, 100, 109, {}, list(range(100, 110)))
        cli.cli("neutrino-admin", "network", "segment", "range", "set", "--minimum", "102", "--maximum", "105",
                made["id"])
        shown = ok(cli.adm.get(f"/network_segment_ranges/{made['id']}"), "network_segment_range")
        assert (shown["minimum"], shown["maximum"], shown["available"]) == (102, 105, [102, 103, 104, 105])
        # Overlaps, bad bounds and unsupported types are refused.
        neutron_error(cli.adm.post("/network_segment_ranges", json={"network_segment_range": {
            "network_type": "vlan", "physical_network": "physnet9", "minimum": 105, "maximum": 107}}), 409,
            "NetworkSegmentRangeOverlaps")
        neutron_error(cli.adm.post("/network_segment_ranges", json={"network_segment_range": {
            "network_type": "vlan", "physical_network": "physnet9", "minimum": 300, "maximum": 200}}), 400,
            "InvalidInput")
        neutron_error(cli.adm.post("/network_segment_ranges", json={"network_segment_range": {
            "network_type": "vlan", "physical_network": "physnet9", "minimum": 300, "maximum": 5000}}), 400,
            "InvalidInput")
        neutron_error(cli.adm.post("/network_segment_ranges", json={"network_segment_range": {
            "network_type": "gre", "minimum": 1, "maximum": 5}}), 400, "NetworkSegmentRangeNetTypeNotSupported")
        neutron_error(cli.adm.post("/network_segment_ranges", json={"network_segment_range": {
            "network_type": "vxlan", "minimum": 1}}), 400, "HTTPBadRequest")
        neutron_error(cli.adm.put(f"/network_segment_ranges/{made['id']}", json={"network_segment_range": {
            "network_type": "vxlan"}}), 400, "HTTPBadRequest")
        assert [r["id"] for r in ok(cli.adm.get("/network_segment_ranges", params={
            "name": "nsr-range"}), "network_segment_ranges")] == [made["id"]]
    finally:
        cli.cli("neutrino-admin", "network", "segment", "range", "delete", made["id"])
    neutron_error(cli.adm.get(f"/network_segment_ranges/{made['id']}"), 404, "NetworkSegmentRangeNotFound")


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server whose whole VXLAN range is 200-209, so allocations are checked exactly."""
    server = start_server(tmp_path_factory.mktemp("nsr-small") / "state",
                          extra_config='[ml2]\nvni_ranges = ["200:209"]\n')
    try:
        yield server
    finally:
        server.stop()


async def _create_networks(client: httpx.AsyncClient, count: int) -> list[httpx.Response]:
    return list(await asyncio.gather(*(client.post("/networks", json={"network": {"name": f"c{i}"}})
                                       for i in range(count))))


def test_a_project_range_is_its_own_and_concurrent_creates_never_share_a_vni(
        small: LiveServer, tmp_path: Path) -> None:
    identity, member, other, _ = two_member_projects(small, tmp_path / "clouds.yaml", "nsrs")
    a, b, adm = (api(small, p) for p in (member, other, identity.admin))
    try:
        mine = created(adm.post("/network_segment_ranges", json={"network_segment_range": {
            "name": "a-only", "network_type": "vxlan", "minimum": 200, "maximum": 205, "shared": False,
            "project_id": member.project_id}}), "network_segment_range")
        # Project b takes only what no project's range holds: 206-209, then nothing.
        async def b_creates() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=small.url + "/v2.0", headers={"X-Auth-Token": other.token},
                                         timeout=60) as client:
                return await _create_networks(client, 5)
        b_answers = asyncio.run(b_creates())
        made_b = [r.json()["network"]["id"] for r in b_answers if r.status_code == 201]
        refused = [r for r in b_answers if r.status_code != 201]
        assert len(made_b) == 4 and len(refused) == 1
        neutron_error(refused[0], 503, "NoNetworkAvailable")
        vnis_b = {ok(adm.get(f"/networks/{n}"), "network")["provider:segmentation_id"] for n in made_b}
        assert vnis_b == {206, 207, 208, 209}
        # Project a's six concurrent creates take its own six ids, each once.
        async def a_creates() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=small.url + "/v2.0", headers={"X-Auth-Token": member.token},
                                         timeout=60) as client:
                return await _create_networks(client, 6)
        made_a = [r.json()["network"]["id"] for r in asyncio.run(a_creates()) if r.status_code == 201]
        vnis_a = [ok(adm.get(f"/networks/{n}"), "network")["provider:segmentation_id"] for n in made_a]
        assert sorted(vnis_a) == [200, 201, 202, 203, 204, 205]
        shown = ok(adm.get(f"/network_segment_ranges/{mine['id']}"), "network_segment_range")
        assert shown["available"] == [] and shown["used"] == {str(v): member.project_id for v in range(200, 206)}
        # A range its project's networks use stays, and keeps their ids.
        neutron_error(adm.delete(f"/network_segment_ranges/{mine['id']}"), 409,
                      "NetworkSegmentRangeReferencedByProject")
        neutron_error(adm.put(f"/network_segment_ranges/{mine['id']}", json={"network_segment_range": {
            "maximum": 203}}), 409, "NetworkSegmentRangeReferencedByProject")
        for net in made_a + made_b:
            assert adm.delete(f"/networks/{net}").status_code == 204
        assert adm.delete(f"/network_segment_ranges/{mine['id']}").status_code == 204
    finally:
        for client in (a, b, adm):
            client.close()
        identity.retire(member, other)
