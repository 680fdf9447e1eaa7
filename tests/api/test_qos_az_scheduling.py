"""QoS policies and rules, availability zones and the DHCP/L3 scheduler endpoints, driven by the
``openstack`` CLI against a live server, with raw HTTP for exact status codes and error bodies.

Agents are real registrations: the server runs with its bus on a private vhost of the machine's
RabbitMQ, and the test reports the state of a DHCP agent and an L3 agent through the bus exactly as
an agent process would (``report_state``), so availability zones, ``network agent list`` and the
schedulers see agents the server learnt about itself. The vhost and the server are this module's
own and go away at the end, even on failure. CLI runs that do not depend on each other run
concurrently (each costs a Python start-up and a login).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from neutrino.agent.rpc_client import AgentRpcClient
from neutrino.bus.factory import build_bus
from tests.fullstack.broker import shared_broker_vhost
from tests.support.live_server import LiveServer, start_server
from tests.support.neutron_http import api, created, neutron_error, ok
from tests.support.tenants import IdentityAdmin, Persona, cloud_persona

# The rig's server talks to its agents over the machine's RabbitMQ: without a broker this module
# skips, and the run must say so (and fail) rather than lose QoS, AZ and scheduler coverage quietly.
pytestmark = pytest.mark.rabbitmq

# The CLI installed beside the interpreter running the tests (the project venv).
OPENSTACK = str(Path(sys.executable).parent / "openstack") if (Path(sys.executable).parent / "openstack").exists() else (shutil.which("openstack") or "openstack")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Cli:
    """Runs ``openstack`` commands against the module's server; independent ones concurrently."""

    env: dict[str, str]

    def run_all(self, commands: Sequence[Sequence[str]]) -> list[subprocess.CompletedProcess[str]]:
        procs = [(cmd, subprocess.Popen([OPENSTACK, "--os-cloud", cmd[0], *cmd[1:]], env=self.env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)) for cmd in commands]
        done = []
        for cmd, proc in procs:
            out, err = proc.communicate(timeout=120)
            done.append(subprocess.CompletedProcess([OPENSTACK, *cmd], proc.returncode, out, err))
        return done

    def run(self, *cmd: str) -> subprocess.CompletedProcess[str]:
        return self.run_all([cmd])[0]

    @staticmethod
    def json(result: subprocess.CompletedProcess[str]) -> Any:
        assert result.returncode == 0, f"{' '.join(result.args)} failed ({result.returncode}): {result.stderr}"
        return json.loads(result.stdout) if result.stdout.strip() else None


@dataclass
class Rig:
    server: LiveServer
    cli: Cli
    admin: Persona
    demo: Persona
    dhcp_agent_host: str
    l3_agent_host: str
    dhcp_zone: str
    l3_zone: str


async def _report_agents(url: str, reports: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """Register agents the way agent processes do: ``report_state`` over the server's bus."""
    bus = build_bus(url, sender=f"test-agents.{uuid.uuid4().hex[:6]}")
    await bus.start()
    try:
        for host, state in reports:
            answer = await AgentRpcClient(bus, host, timeout=20).report_state(state)
            assert answer["status"] in ("new", "alive", "revived"), answer
    finally:
        await bus.close()


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    with shared_broker_vhost() as url:
        tag = uuid.uuid4().hex[:6]
        # Agents stay alive (heartbeat-wise) for the whole module without re-reporting.
        config = (f'[bus]\nurl = "{url}"\n[agent]\nhost = "t{tag}"\nagent_down_time_seconds = 900\n')
        server = start_server(tmp_path_factory.mktemp("qos-az") / "state", extra_config=config)
        try:
            rig = Rig(server, Cli(server.env()), cloud_persona(server, "neutrino-admin"),
                      cloud_persona(server, "neutrino-demo"), f"dhcp-{tag}", f"l3-{tag}", f"zone-d-{tag}",
                      f"zone-r-{tag}")
            asyncio.run(_report_agents(url, [
                (rig.dhcp_agent_host, {"agent_type": "DHCP agent", "binary": "neutron-dhcp-agent", "topic": "dhcp_agent",
                                       "availability_zone": rig.dhcp_zone, "start_flag": True,
                                       "configurations": {"dhcp_driver": "dnsmasq"}}),
                (rig.l3_agent_host, {"agent_type": "L3 agent", "binary": "neutron-l3-agent", "topic": "l3_agent",
                                     "availability_zone": rig.l3_zone, "start_flag": True,
                                     "configurations": {"agent_mode": "legacy"}}),
            ]))
            yield rig
        finally:
            server.stop()


def agent_id(adm: httpx.Client, host: str) -> str:
    return str(ok(adm.get("/agents", params={"host": host}), "agents")[0]["id"])


# ---- QoS ---------------------------------------------------------------------------------------


def test_qos_policy_with_rules_made_and_read_with_the_cli(rig: Rig) -> None:
    cli = rig.cli
    name = unique("gold")
    policy = Cli.json(cli.run("neutrino-admin", "network", "qos", "policy", "create", "--description", "10 Mbit",
                              name, "-f", "json"))
    with api(rig.server, rig.admin) as adm:
        try:
            assert (policy["name"], policy["description"], policy["shared"], policy["is_default"]) == \
                (name, "10 Mbit", False, False)
            limit, dscp, types = cli.run_all([
                ("neutrino-admin", "network", "qos", "rule", "create", "--type", "bandwidth-limit",
                 "--max-kbps", "10000", "--max-burst-kbits", "800", "--egress", name, "-f", "json"),
                ("neutrino-admin", "network", "qos", "rule", "create", "--type", "dscp-marking", "--dscp-mark", "26",
                 name, "-f", "json"),
                ("neutrino-demo", "network", "qos", "rule", "type", "list", "-f", "json")])
            limit_rule, dscp_rule = Cli.json(limit), Cli.json(dscp)
            assert (limit_rule["max_kbps"], limit_rule["max_burst_kbps"], limit_rule["direction"]) == \
                (10000, 800, "egress")
            assert dscp_rule["dscp_mark"] == 26
            # What this backend supports: exactly the kinds its data plane enforces.
            assert sorted(t["Type"] for t in Cli.json(types)) == ["bandwidth_limit", "dscp_marking",
                                                                   "minimum_bandwidth", "packet_rate_limit"]

            again, ingress = cli.run_all([
                ("neutrino-admin", "network", "qos", "rule", "create", "--type", "bandwidth-limit",
                 "--max-kbps", "500", "--egress", name, "-f", "json"),
                ("neutrino-admin", "network", "qos", "rule", "create", "--type", "bandwidth-limit",
                 "--max-kbps", "2000", "--ingress", name, "-f", "json")])
            assert again.returncode != 0 and "conflicts with rule" in again.stderr, again.stderr
            assert Cli.json(ingress)["direction"] == "ingress"
            shown = ok(adm.get(f"/qos/policies/{policy['id']}"), "policy")
            rules = {(r["type"], r.get("direction")): r for r in shown["rules"]}
            assert set(rules) == {("bandwidth_limit", "egress"), ("bandwidth_limit", "ingress"),
                                  ("dscp_marking", None)}
            assert rules[("dscp_marking", None)] == {"id": dscp_rule["id"], "dscp_mark": 26,
                                                     "qos_policy_id": policy["id"], "type": "dscp_marking"}
            details = ok(adm.get("/qos/rule-types/bandwidth_limit"), "rule_type")
            drivers = details["drivers"]
            assert [d["enforced"] for d in drivers] == [True]  # the qos role shapes with tc
            assert {p["parameter_name"] for p in drivers[0]["supported_parameters"]} == \
                {"max_kbps", "max_burst_kbps", "direction"}

            # The same rule by alias, and the wire errors clients branch on.
            alias = ok(adm.get(f"/qos/alias_dscp_marking_rules/{dscp_rule['id']}"), "alias_dscp_marking_rule")
            assert (alias["dscp_mark"], alias["qos_policy_id"]) == (26, policy["id"])
            neutron_error(adm.post(f"/qos/policies/{policy['id']}/dscp_marking_rules",
                                   json={"dscp_marking_rule": {"dscp_mark": 27}}), 400, "HTTPBadRequest")
            neutron_error(adm.post(f"/qos/policies/{policy['id']}/minimum_bandwidth_rules",
                                   json={"minimum_bandwidth_rule": {"min_kbps": 20000}}), 409,
                          "QoSRuleParameterConflict")
            neutron_error(adm.get(f"/qos/policies/{policy['id']}/bandwidth_limit_rules/{dscp_rule['id']}"), 404,
                          "QosRuleNotFound")
        finally:
            adm.delete(f"/qos/policies/{policy['id']}")


def test_qos_policy_use_by_networks_and_ports_and_who_may_write(rig: Rig) -> None:
    with api(rig.server, rig.admin) as adm, api(rig.server, rig.demo) as demo:
        # QoS writes need the project's manager: a plain member may not make a policy.
        neutron_error(demo.post("/qos/policies", json={"policy": {"name": unique("nope")}}), 403,
                      "PolicyNotAuthorized", "create_policy is disallowed by policy")
        private = created(adm.post("/qos/policies", json={"policy": {"name": unique("private")}}), "policy")
        shared = created(adm.post("/qos/policies", json={"policy": {"name": unique("shared"), "shared": True}}),
                         "policy")
        made: list[str] = []
        try:
            # A policy the caller cannot see does not exist for it; a shared one may be used.
            neutron_error(demo.post("/networks", json={"network": {"name": unique("q"), "qos_policy_id": private["id"]}}),
                          404, "QosPolicyNotFound")
            assert ok(demo.get(f"/qos/policies/{shared['id']}"), "policy")["shared"] is True
            net = created(demo.post("/networks", json={"network": {"name": unique("q"),
                                                                   "qos_policy_id": shared["id"]}}), "network")
            made.append(net["id"])
            port = created(demo.post("/ports", json={"port": {"network_id": net["id"]}}), "port")
            assert (port["qos_policy_id"], port["qos_network_policy_id"]) == (None, shared["id"])
            neutron_error(demo.put(f"/ports/{port['id']}", json={"port": {"qos_policy_id": private["id"]}}), 404,
                          "QosPolicyNotFound")
            neutron_error(adm.delete(f"/qos/policies/{shared['id']}"), 409, "QosPolicyInUse",
                          f"QoS Policy {shared['id']} is used by network {net['id']}.")
            # Unsharing would strand the demo project's network: refused.
            neutron_error(adm.put(f"/qos/policies/{shared['id']}", json={"policy": {"shared": False}}), 409,
                          "RbacPolicyInUse")
            assert demo.delete(f"/ports/{port['id']}").status_code == 204
        finally:
            for net_id in made:
                adm.delete(f"/networks/{net_id}")
            for policy in (private, shared):
                assert adm.delete(f"/qos/policies/{policy['id']}").status_code == 204


def test_default_qos_policy_is_one_per_project_and_new_networks_take_it(rig: Rig) -> None:
    with api(rig.server, rig.admin) as adm:
        project = rig.admin.project_id
        first = created(adm.post("/qos/policies", json={"policy": {"name": unique("d1"), "is_default": True}}),
                        "policy")
        made: list[str] = []
        try:
            neutron_error(adm.post("/qos/policies", json={"policy": {"name": unique("d2"), "is_default": True}}),
                          409, "QoSPolicyDefaultAlreadyExists", f"A default QoS policy exists for project {project}.")
            net = created(adm.post("/networks", json={"network": {"name": unique("dflt")}}), "network")
            made.append(net["id"])
            assert net["qos_policy_id"] == first["id"]
            listed = ok(adm.get("/qos/policies", params={"is_default": "true", "project_id": project}), "policies")
            assert [p["id"] for p in listed] == [first["id"]]
        finally:
            for net_id in made:
                adm.delete(f"/networks/{net_id}")
            adm.delete(f"/qos/policies/{first['id']}")


def test_only_the_admin_shares_a_qos_policy(rig: Rig) -> None:
    """``create_policy:shared`` / ``update_policy:shared`` are admin-only: a project manager makes and
    renames policies but may not share one with every project (nor set the flag at all)."""
    identity = IdentityAdmin(rig.server)
    manager = identity.persona("manager", prefix="qosm")
    try:
        with api(rig.server, manager) as mgr, api(rig.server, rig.admin) as adm, api(rig.server, rig.demo) as demo:
            neutron_error(mgr.post("/qos/policies", json={"policy": {"name": unique("s"), "shared": True}}), 403,
                          "PolicyNotAuthorized", "create_policy is disallowed by policy")
            own = created(mgr.post("/qos/policies", json={"policy": {"name": unique("own")}}), "policy")
            try:
                assert own["shared"] is False and own["project_id"] == manager.project_id
                for shared in (True, False):
                    neutron_error(mgr.put(f"/qos/policies/{own['id']}", json={"policy": {"shared": shared}}), 403,
                                  "PolicyNotAuthorized", "update_policy is disallowed by policy")
                assert ok(mgr.put(f"/qos/policies/{own['id']}", json={"policy": {"name": "renamed"}}),
                          "policy")["name"] == "renamed"
                # Another project does not see it until the admin shares it.
                neutron_error(demo.get(f"/qos/policies/{own['id']}"), 404, "QosPolicyNotFound")
                assert ok(adm.put(f"/qos/policies/{own['id']}", json={"policy": {"shared": True}}),
                          "policy")["shared"] is True
                assert ok(demo.get(f"/qos/policies/{own['id']}"), "policy")["shared"] is True
            finally:
                adm.delete(f"/qos/policies/{own['id']}")
    finally:
        identity.delete_user(manager.user_id)
        identity.delete_project(manager.project_id)
        identity.close()


# ---- availability zones and schedulers -----------------------------------------------------------


def test_routers_take_availability_zone_hints_of_l3_agent_zones(rig: Rig) -> None:
    name = unique("az-router")
    router = Cli.json(rig.cli.run("neutrino-demo", "router", "create", "--availability-zone-hint", rig.l3_zone,
                                  name, "-f", "json"))
    with api(rig.server, rig.admin) as adm, api(rig.server, rig.demo) as demo:
        try:
            shown = ok(demo.get(f"/routers/{router['id']}"), "router")
            assert shown["availability_zone_hints"] == [rig.l3_zone]
            # Scheduled to the L3 agent of that zone, whose zone the router is now in.
            assert shown["availability_zones"] == [rig.l3_zone]
            assert [a["host"] for a in ok(adm.get(f"/routers/{router['id']}/l3-agents"), "agents")] == \
                [rig.l3_agent_host]
            # Zones must exist for routers: an unknown one, or a zone only DHCP agents are in, is 404.
            for zone in ("nowhere", rig.dhcp_zone):
                neutron_error(demo.post("/routers", json={"router": {"name": unique("az"),
                                                                     "availability_zone_hints": [zone]}}),
                              404, "AvailabilityZoneNotFound", f"AvailabilityZone {zone} could not be found.")
            neutron_error(demo.post("/routers", json={"router": {
                "availability_zone_hints": [f"zone-{i:03d}" for i in range(30)]}}), 400, "InvalidInput",
                "Invalid input for operation: Too many availability_zone_hints specified.")
            neutron_error(demo.put(f"/routers/{router['id']}", json={"router": {"availability_zone_hints": []}}),
                          400, "HTTPBadRequest", "Cannot update read-only attribute availability_zone_hints")
            neutron_error(demo.post("/routers", json={"router": {"availability_zones": [rig.l3_zone]}}), 400,
                          "HTTPBadRequest", "Attribute 'availability_zones' not allowed in POST")
            # Another project's router stays invisible, zones or not.
            private = created(adm.post("/routers", json={"router": {"name": unique("adm")}}), "router")
            neutron_error(demo.get(f"/routers/{private['id']}"), 404, "RouterNotFound")
            adm.delete(f"/routers/{private['id']}")
            plain = created(demo.post("/routers", json={"router": {"name": unique("plain")}}), "router")
            assert plain["availability_zone_hints"] == []
            assert ok(demo.get(f"/routers/{plain['id']}"), "router")["availability_zones"] == [rig.l3_zone]
            demo.delete(f"/routers/{plain['id']}")
            aliases = {e["alias"] for e in ok(demo.get("/extensions"), "extensions")}
            assert {"router_availability_zone", "availability_zone"} <= aliases
        finally:
            demo.delete(f"/routers/{router['id']}")




def test_availability_zones_come_from_the_agents_that_reported(rig: Rig) -> None:
    zones, agents = rig.cli.run_all([
        ("neutrino-demo", "availability", "zone", "list", "--network", "--long", "-f", "json"),
        ("neutrino-admin", "network", "agent", "list", "-f", "json")])
    rows = {(z["Zone Name"], z["Zone Resource"]): z["Zone Status"] for z in Cli.json(zones)}
    assert rows[(rig.dhcp_zone, "network")] == "available"
    assert rows[(rig.l3_zone, "router")] == "available"
    by_host = {a["Host"]: a for a in Cli.json(agents)}
    assert (by_host[rig.dhcp_agent_host]["Agent Type"], by_host[rig.dhcp_agent_host]["Availability Zone"]) == \
        ("DHCP agent", rig.dhcp_zone)
    assert by_host[rig.l3_agent_host]["Agent Type"] == "L3 agent"
    with api(rig.server, rig.demo) as demo:
        filtered = ok(demo.get("/availability_zones", params={"resource": "router", "state": "available"}),
                      "availability_zones")
        assert {"name": rig.l3_zone, "resource": "router", "state": "available"} in filtered
        assert all(z["resource"] == "router" for z in filtered)
        neutron_error(demo.post("/networks", json={"network": {"name": unique("az"),
                                                               "availability_zone_hints": [rig.l3_zone]}}),
                      404, "AvailabilityZoneNotFound")


def test_admin_hosts_a_network_on_a_dhcp_agent_with_the_cli(rig: Rig) -> None:
    cli = rig.cli
    name = unique("dhcp-net")
    with api(rig.server, rig.admin) as adm, api(rig.server, rig.demo) as demo:
        net = created(adm.post("/networks", json={"network": {"name": name}}), "network")
        dhcp = agent_id(adm, rig.dhcp_agent_host)
        try:
            assert ok(adm.get(f"/networks/{net['id']}/dhcp-agents"), "agents") == []  # no subnet: unscheduled
            added = cli.run("neutrino-admin", "network", "agent", "add", "network", "--dhcp", dhcp, name)
            assert added.returncode == 0, added.stderr
            hosted, hosting = cli.run_all([
                ("neutrino-admin", "network", "list", "--agent", dhcp, "-f", "json"),
                ("neutrino-admin", "network", "agent", "list", "--network", name, "-f", "json")])
            assert net["id"] in [n["ID"] for n in Cli.json(hosted)]
            assert [a["ID"] for a in Cli.json(hosting)] == [dhcp]
            assert ok(adm.get(f"/networks/{net['id']}"), "network")["availability_zones"] == [rig.dhcp_zone]

            neutron_error(adm.post(f"/agents/{dhcp}/dhcp-networks", json={"network_id": net["id"]}), 409,
                          "NetworkHostedByDHCPAgent")
            neutron_error(adm.post(f"/agents/{agent_id(adm, rig.l3_agent_host)}/dhcp-networks",
                                   json={"network_id": net["id"]}), 404, "InvalidDHCPAgent")
            for resp in (demo.get(f"/agents/{dhcp}/dhcp-networks"), demo.get(f"/networks/{net['id']}/dhcp-agents"),
                         demo.post(f"/agents/{dhcp}/dhcp-networks", json={"network_id": net["id"]})):
                neutron_error(resp, 403, "PolicyNotAuthorized")

            removed = cli.run("neutrino-admin", "network", "agent", "remove", "network", "--dhcp", dhcp, name)
            assert removed.returncode == 0, removed.stderr
            neutron_error(adm.delete(f"/agents/{dhcp}/dhcp-networks/{net['id']}"), 409, "NetworkNotHostedByDhcpAgent")

            # A DHCP-enabled subnet schedules the network by itself.
            created(adm.post("/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.77.0.0/24",
                                                          "ip_version": 4}}), "subnet")
            assert [a["id"] for a in ok(adm.get(f"/networks/{net['id']}/dhcp-agents"), "agents")] == [dhcp]
        finally:
            adm.delete(f"/networks/{net['id']}")


def test_routers_are_hosted_on_the_l3_agent_and_moved_with_the_cli(rig: Rig) -> None:
    cli = rig.cli
    name = unique("l3-router")
    with api(rig.server, rig.admin) as adm:
        router = created(adm.post("/routers", json={"router": {"name": name}}), "router")
        l3 = agent_id(adm, rig.l3_agent_host)
        try:
            hosting = Cli.json(cli.run("neutrino-admin", "network", "agent", "list", "--router", name, "-f", "json"))
            assert [a["ID"] for a in hosting] == [l3]  # scheduled when it was made
            removed = cli.run("neutrino-admin", "network", "agent", "remove", "router", "--l3", l3, name)
            assert removed.returncode == 0, removed.stderr
            assert ok(adm.get(f"/routers/{router['id']}/l3-agents"), "agents") == []
            added = cli.run("neutrino-admin", "network", "agent", "add", "router", "--l3", l3, name)
            assert added.returncode == 0, added.stderr
            assert [r["id"] for r in ok(adm.get(f"/agents/{l3}/l3-routers"), "routers")] == [router["id"]]
            neutron_error(adm.delete(f"/agents/{l3}/l3-routers/{uuid.uuid4()}"), 404, "RouterNotFound")
        finally:
            adm.delete(f"/routers/{router['id']}")


# ---- auto-allocated topology ---------------------------------------------------------------------


def test_auto_allocated_topology_is_made_on_first_request_and_taken_apart(rig: Rig) -> None:
    demo_project = rig.demo.project_id
    with api(rig.server, rig.admin) as adm, api(rig.server, rig.demo) as demo:
        neutron_error(demo.get(f"/auto-allocated-topology/{demo_project}"), 409, "AutoAllocationFailure",
                      "Deployment error: No default router:external network.")
        neutron_error(demo.get(f"/auto-allocated-topology/{rig.admin.project_id}"), 403, "NotAuthorized")
        external = created(adm.post("/networks", json={"network": {
            "name": unique("ext-default"), "router:external": True, "is_default": True}}), "network")
        pool = None
        try:
            created(adm.post("/subnets", json={"subnet": {"network_id": external["id"], "cidr": "198.51.100.0/24",
                                                          "ip_version": 4}}), "subnet")
            neutron_error(demo.get(f"/auto-allocated-topology/{demo_project}", params={"fields": "dry-run"}), 409,
                          "AutoAllocationFailure", "Deployment error: No default subnetpools defined.")
            pool = created(adm.post("/subnetpools", json={"subnetpool": {
                "name": unique("default-pool"), "prefixes": ["10.128.0.0/16"], "default_prefixlen": 26,
                "is_default": True, "shared": True}}), "subnetpool")

            check, made = rig.cli.run_all([
                ("neutrino-demo", "network", "auto", "allocated", "topology", "create", "--check-resources",
                 "-f", "json"),
                ("neutrino-demo", "network", "auto", "allocated", "topology", "create", "-f", "json")])
            assert check.returncode == 0, check.stderr
            topology = Cli.json(made)
            assert topology["project_id"] == demo_project
            again = ok(demo.get(f"/auto-allocated-topology/{demo_project}"), "auto_allocated_topology")
            assert again == {"id": topology["id"], "project_id": demo_project, "tenant_id": demo_project}

            network = ok(demo.get(f"/networks/{topology['id']}"), "network")
            assert (network["name"], network["admin_state_up"], len(network["subnets"])) == \
                ("auto_allocated_network", True, 1)
            subnet = ok(demo.get(f"/subnets/{network['subnets'][0]}"), "subnet")
            assert (subnet["subnetpool_id"], subnet["cidr"].split("/")[1]) == (pool["id"], "26")
            router = ok(demo.get("/routers", params={"name": "auto_allocated_router"}), "routers")[0]
            assert router["external_gateway_info"]["network_id"] == external["id"]
            interfaces = ok(demo.get("/ports", params={"device_id": router["id"],
                                                       "device_owner": "network:router_interface"}), "ports")
            assert [p["network_id"] for p in interfaces] == [topology["id"]]

            # "None" (what tempest's client sends without a project) is the caller's own project.
            assert demo.delete("/auto-allocated-topology/None").status_code == 204
            neutron_error(demo.get(f"/networks/{topology['id']}"), 404, "NetworkNotFound")
            neutron_error(demo.get(f"/routers/{router['id']}"), 404, "RouterNotFound")
        finally:
            adm.delete(f"/auto-allocated-topology/{demo_project}")
            adm.delete(f"/networks/{external['id']}")
            if pool is not None:
                adm.delete(f"/subnetpools/{pool['id']}")
