"""The qos role's side of the contract against a live server: ``sync_state(host, "qos")`` resolves
each bound port's effective policy (its own, else its network's) into limits and a DSCP mark;
``qos/rule-types`` lists what the backend supports (exactly what its data plane enforces), and an
egress minimum bandwidth travels to the agent with the port's network type.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from neutrino.agent.rpc_client import AgentRpcClient
from neutrino.contract import codec
from neutrino.contract.names import tap_name
from neutrino.contract.qos import BandwidthLimit, PacketRateLimit, QosState
from tests.api.test_device_status_rpc import Rig
from tests.api.test_firewall_rpc import _as_host, rig  # noqa: F401 - the module's server and bus
from tests.support.neutron_http import api, created, neutron_error, ok
from tests.support.tenants import cloud_persona


def _policy(adm: Any, *rules: tuple[str, dict[str, Any]]) -> str:
    policy = created(adm.post("/qos/policies", json={"policy": {"name": f"q-{uuid.uuid4().hex[:6]}",
                                                                "shared": True}}), "policy")
    for kind, body in rules:
        created(adm.post(f"/qos/policies/{policy['id']}/{kind}_rules", json={f"{kind}_rule": body}), f"{kind}_rule")
    return str(policy["id"])


def test_sync_state_resolves_port_and_network_policies_into_limits(rig: Rig) -> None:  # noqa: F811
    host = f"{rig.host}-qos"
    adm = api(rig.server, cloud_persona(rig.server, "neutrino-admin"))
    compute = api(rig.server, cloud_persona(rig.server, "neutrino-compute"))
    port_policy = _policy(adm, ("bandwidth_limit", {"max_kbps": 10000, "max_burst_kbps": 800}),
                          ("bandwidth_limit", {"max_kbps": 20000, "direction": "ingress"}),
                          ("dscp_marking", {"dscp_mark": 26}))
    net_policy = _policy(adm, ("dscp_marking", {"dscp_mark": 10}))

    async def work(rpc: AgentRpcClient) -> tuple[QosState, str, str, str]:
        network = created(adm.post("/networks", json={"network": {"name": f"q-{uuid.uuid4().hex[:6]}",
                                                                  "qos_policy_id": net_policy}}), "network")
        created(adm.post("/subnets", json={"subnet": {"network_id": network["id"], "cidr": "10.93.0.0/24",
                                                      "ip_version": 4}}), "subnet")
        own = created(adm.post("/ports", json={"port": {"network_id": network["id"], "qos_policy_id": port_policy}}),
                      "port")
        inherited = created(adm.post("/ports", json={"port": {"network_id": network["id"]}}), "port")
        for p in (own, inherited):
            ok(compute.put(f"/ports/{p['id']}", json={"port": {"binding:host_id": host}}), "port")
        return codec.decode(QosState, await rpc.sync_state("qos")), own["id"], inherited["id"], network["id"]

    state, own, inherited, _ = asyncio.run(_as_host(rig, host, ("l2",), work))
    by_port = {p.port_id: p for p in state.ports}
    assert by_port[own].device == tap_name(own) and by_port[own].policy_id == port_policy
    assert (by_port[own].egress, by_port[own].ingress, by_port[own].dscp_mark) == (
        BandwidthLimit(10000, 800), BandwidthLimit(20000, 0), 26)
    assert (by_port[inherited].egress, by_port[inherited].dscp_mark) == (None, 10)


def test_rule_types_are_what_the_data_plane_enforces_and_an_egress_minimum_reaches_the_agent(rig: Rig) -> None:  # noqa: F811
    adm = api(rig.server, cloud_persona(rig.server, "neutrino-admin"))
    listed = ok(adm.get("/qos/rule-types"), "rule_types")
    assert sorted(t["type"] for t in listed) == ["bandwidth_limit", "dscp_marking", "minimum_bandwidth",
                                                 "packet_rate_limit"]
    detail = ok(adm.get("/qos/rule-types/minimum_bandwidth"), "rule_type")
    assert [d["enforced"] for d in detail["drivers"]] == [True]
    assert {p["parameter_name"]: p["parameter_values"] for p in detail["drivers"][0]["supported_parameters"]
            }["direction"] == ["egress"]
    pps = ok(adm.get("/qos/rule-types/minimum_packet_rate"), "rule_type")
    assert [d["enforced"] for d in pps["drivers"]] == [False]
    assert "cannot be attached" in pps["drivers"][0]["description"]

    host = f"{rig.host}-minbw"
    compute = api(rig.server, cloud_persona(rig.server, "neutrino-compute"))
    minimum = _policy(adm, ("minimum_bandwidth", {"min_kbps": 3000}))
    ingress_only = _policy(adm, ("minimum_bandwidth", {"min_kbps": 4000, "direction": "ingress"}))

    async def work(rpc: AgentRpcClient) -> tuple[QosState, str, str, str]:
        network = created(adm.post("/networks", json={"network": {"name": f"q-{uuid.uuid4().hex[:6]}",
                                                                  "qos_policy_id": minimum}}), "network")
        created(adm.post("/subnets", json={"subnet": {"network_id": network["id"], "cidr": "10.95.0.0/24",
                                                      "ip_version": 4}}), "subnet")
        inherited = created(adm.post("/ports", json={"port": {"network_id": network["id"]}}), "port")
        # Nothing enforces an ingress minimum: a policy holding one cannot be attached, and the
        # network's policy, in use, cannot gain one.
        refused = adm.post("/ports", json={"port": {"network_id": network["id"], "qos_policy_id": ingress_only}})
        neutron_error(refused, 409, "QosRuleNotSupported")
        assert "minimum_bandwidth (ingress)" in refused.json()["NeutronError"]["message"]
        neutron_error(adm.post(f"/qos/policies/{minimum}/minimum_bandwidth_rules", json={
            "minimum_bandwidth_rule": {"min_kbps": 5000, "direction": "ingress"}}), 409, "QosRuleNotSupported")
        ingress = created(adm.post("/ports", json={"port": {"network_id": network["id"]}}), "port")
        for p in (inherited, ingress):
            ok(compute.put(f"/ports/{p['id']}", json={"port": {"binding:host_id": host}}), "port")
        return codec.decode(QosState, await rpc.sync_state("qos")), inherited["id"], ingress["id"], network["id"]

    state, inherited, ingress, network = asyncio.run(_as_host(rig, host, ("l2",), work))
    # Both ports take the network's policy (the refused one was never made).
    assert sorted((p.port_id, p.min_egress_kbps, p.network_type, p.physical_network)
                  for p in state.ports if p.port_id in (inherited, ingress)) == sorted(
        [(inherited, 3000, "vxlan", None), (ingress, 3000, "vxlan", None)])
    shown = ok(adm.get(f"/ports/{inherited}"), "port")
    assert shown["qos_network_policy_id"] == minimum
    [group] = shown["resource_request"]["request_groups"]
    assert group["resources"] == {"NET_BW_EGR_KILOBIT_PER_SEC": 3000}
    assert group["required"] == ["CUSTOM_NETWORK_TUNNEL_PROVIDER", "CUSTOM_VNIC_TYPE_NORMAL"]
    for p in (inherited, ingress):
        adm.delete(f"/ports/{p}")
    adm.delete(f"/networks/{network}")
    for policy in (minimum, ingress_only):
        adm.delete(f"/qos/policies/{policy}")


def test_packet_rate_rules_are_neutrons_and_limits_reach_the_agent(rig: Rig) -> None:  # noqa: F811
    adm = api(rig.server, cloud_persona(rig.server, "neutrino-admin"))
    aliases = {e["alias"] for e in ok(adm.get("/extensions"), "extensions")}
    assert {"qos-pps", "qos-pps-minimum", "qos-pps-minimum-rule-alias"} <= aliases
    policy = _policy(adm, ("packet_rate_limit", {"max_kpps": 10, "max_burst_kpps": 2}))
    base = f"/qos/policies/{policy}"
    rule = created(adm.post(f"{base}/packet_rate_limit_rules",
                            json={"packet_rate_limit_rule": {"max_kpps": 20, "direction": "ingress"}}),
                   "packet_rate_limit_rule")
    assert (rule["max_kpps"], rule["max_burst_kpps"], rule["direction"]) == (20, 0, "ingress")
    neutron_error(adm.post(f"{base}/packet_rate_limit_rules", json={"packet_rate_limit_rule": {"max_kpps": 5}}),
                  409, "QoSRulesConflict")
    neutron_error(adm.post(f"{base}/packet_rate_limit_rules", json={"packet_rate_limit_rule": {}}), 400,
                  "HTTPBadRequest")
    neutron_error(adm.post(f"{base}/packet_rate_limit_rules",
                           json={"packet_rate_limit_rule": {"max_kpps": 1, "direction": "any"}}), 400, "HTTPBadRequest")
    updated = ok(adm.put(f"{base}/packet_rate_limit_rules/{rule['id']}",
                         json={"packet_rate_limit_rule": {"max_burst_kpps": 4}}), "packet_rate_limit_rule")
    assert (updated["max_kpps"], updated["max_burst_kpps"]) == (20, 4)
    shown = ok(adm.get(base), "policy")
    assert {(r["type"], r["direction"]) for r in shown["rules"]} == {
        ("packet_rate_limit", "egress"), ("packet_rate_limit", "ingress")}
    details = ok(adm.get("/qos/rule-types/packet_rate_limit"), "rule_type")
    assert [d["enforced"] for d in details["drivers"]] == [True]
    assert {p["parameter_name"] for p in details["drivers"][0]["supported_parameters"]} == \
        {"max_kpps", "max_burst_kpps", "direction"}

    # qos-pps-minimum: "any" is a direction of its own and does not mix with the others.
    minimum = _policy(adm, ("minimum_packet_rate", {"min_kpps": 1000, "direction": "any"}))
    neutron_error(adm.post(f"/qos/policies/{minimum}/minimum_packet_rate_rules",
                           json={"minimum_packet_rate_rule": {"min_kpps": 10}}), 409, "QoSRuleParameterConflict")
    held = ok(adm.get(f"/qos/policies/{minimum}/minimum_packet_rate_rules"), "minimum_packet_rate_rules")
    assert [(r["min_kpps"], r["direction"]) for r in held] == [(1000, "any")]
    alias = ok(adm.get(f"/qos/alias_minimum_packet_rate_rules/{held[0]['id']}"), "alias_minimum_packet_rate_rule")
    assert alias["min_kpps"] == 1000
    network = created(adm.post("/networks", json={"network": {"name": f"q-{uuid.uuid4().hex[:6]}"}}), "network")
    # A minimum packet rate is a rule nothing here enforces (Neutron leaves it to Placement): refused on attach.
    neutron_error(adm.put(f"/networks/{network['id']}", json={"network": {"qos_policy_id": minimum}}), 409,
                  "QosRuleNotSupported")

    host = f"{rig.host}-pps"
    compute = api(rig.server, cloud_persona(rig.server, "neutrino-compute"))

    async def work(rpc: AgentRpcClient) -> tuple[QosState, str]:
        created(adm.post("/subnets", json={"subnet": {"network_id": network["id"], "cidr": "10.94.0.0/24",
                                                      "ip_version": 4}}), "subnet")
        port = created(adm.post("/ports", json={"port": {"network_id": network["id"], "qos_policy_id": policy}}),
                       "port")
        ok(compute.put(f"/ports/{port['id']}", json={"port": {"binding:host_id": host}}), "port")
        return codec.decode(QosState, await rpc.sync_state("qos")), port["id"]

    state, port_id = asyncio.run(_as_host(rig, host, ("l2",), work))
    [limited] = [p for p in state.ports if p.port_id == port_id]
    assert (limited.egress_pps, limited.ingress_pps) == (PacketRateLimit(10, 2), PacketRateLimit(20, 4))
