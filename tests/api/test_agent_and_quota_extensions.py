"""agent_sort_key, agent-resources-synced and quota-check-limit-default on a live server: agents sort by
any attribute but ``configurations`` and show whether their resources reached placement (never, here:
None); quota limits below current usage are refused unless forced, as with the ``openstack`` CLI.
"""

from __future__ import annotations

import subprocess

import httpx
import pytest

from tests.api.test_rbac_quotas_cli import OPENSTACK
from tests.support.live_server import LiveServer
from tests.support.neutron_http import api, created, neutron_error, ok
from tests.support.tenants import IdentityAdmin


def test_extensions_are_listed(adm: httpx.Client) -> None:
    listed = {e["alias"] for e in ok(adm.get("/extensions"), "extensions")}
    assert {"agent_sort_key", "agent-resources-synced", "quota-check-limit-default"} <= listed


@pytest.mark.parametrize("key", ["alive", "availability_zone", "resources_synced", "host", "agent_type",
                                 "heartbeat_timestamp", "started_at", "created_at", "binary", "topic"])
def test_agents_sort_by_every_attribute_but_configurations(adm: httpx.Client, key: str) -> None:
    asc = ok(adm.get("/agents", params={"sort_key": key, "sort_dir": "asc"}), "agents")
    desc = ok(adm.get("/agents", params={"sort_key": key, "sort_dir": "desc"}), "agents")
    assert sorted(a["id"] for a in asc) == sorted(a["id"] for a in desc)
    if key in ("host", "agent_type", "binary", "topic", "created_at"):
        values = [a[key] for a in asc]
        assert values == sorted(values) and [a[key] for a in desc] == sorted(values, reverse=True)


def test_sorting_agents_by_configurations_is_refused(adm: httpx.Client) -> None:
    neutron_error(adm.get("/agents", params={"sort_key": "configurations", "sort_dir": "asc"}), 400,
                  "HTTPBadRequest")


def test_agents_say_their_resources_are_not_synced_to_placement(live_server: LiveServer, adm: httpx.Client) -> None:
    agents = ok(adm.get("/agents"), "agents")
    assert agents, "the all-in-one server runs an agent"
    assert all(a["resources_synced"] is None for a in agents)  # no placement here: never reported
    assert ok(adm.get(f"/agents/{agents[0]['id']}"), "agent")["resources_synced"] is None


def test_a_quota_below_usage_is_refused_unless_forced(live_server: LiveServer, adm: httpx.Client) -> None:
    identity = IdentityAdmin(live_server)
    name, project_id = identity.project("qcl")
    try:
        net = created(adm.post("/networks", json={"network": {"project_id": project_id}}), "network")
        refused = subprocess.run([OPENSTACK, "--os-cloud", "neutrino-admin", "quota", "set", "--networks", "0",
                                  project_id], env=live_server.env(), text=True, capture_output=True,
                                 timeout=120)
        assert refused.returncode != 0
        assert "must be greater than or equal to already used 1" in refused.stderr
        assert ok(adm.get(f"/quotas/{project_id}"), "quota")["network"] != 0
        neutron_error(adm.put(f"/quotas/{project_id}", json={"quota": {"network": 0}}), 400, "HTTPBadRequest")
        forced = ok(adm.put(f"/quotas/{project_id}", json={"quota": {"network": 0, "force": True}}), "quota")
        assert forced["network"] == 0
        # A member may not change quotas at all.
        member = identity.persona("member", (name, project_id), prefix="qcl")
        with api(live_server, member) as client:
            neutron_error(client.put(f"/quotas/{project_id}", json={"quota": {"network": 5}}), 403,
                          "PolicyNotAuthorized")
        identity.delete_user(member.user_id)
        adm.delete(f"/networks/{net['id']}")
    finally:
        adm.delete(f"/quotas/{project_id}")
        identity.delete_project(project_id)
        identity.close()
