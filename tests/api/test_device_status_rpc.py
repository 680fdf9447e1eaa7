"""The agent contract's status calls against a live server: ``update_device_list`` sets many ports'
statuses in one call and says per device what it did; ``update_device_up``/``down`` still work; the
change events carry the port's host and network so agents elsewhere can ignore them.

The server runs with its bus on a private vhost of the machine's RabbitMQ; the test speaks the
agent contract over it as an agent process would (registration, status calls, event subscription).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from neutrino.agent.rpc_client import AgentRpcClient
from neutrino.bus.envelope import Envelope
from neutrino.bus.factory import build_bus
from neutrino.contract.names import tap_name
from tests.fullstack.broker import shared_broker_vhost
from tests.support.live_server import LiveServer, start_server
from tests.support.neutron_http import api, created, ok
from tests.support.tenants import cloud_persona

pytestmark = pytest.mark.rabbitmq


@dataclass
class Rig:
    server: LiveServer
    bus_url: str
    host: str


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    with shared_broker_vhost() as url:
        tag = uuid.uuid4().hex[:6]
        # The server's own agent runs no role: the test is this host's L2 agent.
        config = f'[bus]\nurl = "{url}"\n[agent]\nhost = "srv-{tag}"\nroles = []\nagent_down_time_seconds = 900\n'
        server = start_server(tmp_path_factory.mktemp("device-status") / "state", extra_config=config)
        try:
            yield Rig(server, url, f"l2-{tag}")
        finally:
            server.stop()


async def _as_agent(rig: Rig, work: Any) -> Any:
    bus = build_bus(rig.bus_url, sender=f"agent.{rig.host}")
    await bus.start()
    try:
        rpc = AgentRpcClient(bus, rig.host, timeout=20)
        await rpc.report_state({"role": "l2", "agent_type": "Linux bridge agent", "binary": "neutrino-linuxbridge-agent",
                                "topic": "N/A", "availability_zone": "nova", "start_flag": True,
                                "configurations": {"tunnel_types": ["vxlan"], "tunneling_ip": "192.0.2.31",
                                                   "bridge_mappings": {}}})
        return await work(bus, rpc)
    finally:
        await bus.close()


def _bound_ports(rig: Rig, count: int) -> tuple[str, list[dict[str, Any]]]:
    demo = api(rig.server, cloud_persona(rig.server, "neutrino-demo"))
    compute = api(rig.server, cloud_persona(rig.server, "neutrino-compute"))
    network = created(demo.post("/networks", json={"network": {"name": f"st-{uuid.uuid4().hex[:6]}"}}), "network")
    created(demo.post("/subnets", json={"subnet": {"network_id": network["id"], "cidr": "10.91.0.0/24",
                                                   "ip_version": 4}}), "subnet")
    ports = []
    for _ in range(count):
        port = created(demo.post("/ports", json={"port": {"network_id": network["id"]}}), "port")
        bound = ok(compute.put(f"/ports/{port['id']}", json={"port": {"binding:host_id": rig.host}}), "port")
        assert bound["binding:vif_type"] == "bridge", bound
        ports.append(bound)
    return network["id"], ports


def test_update_device_list_sets_many_statuses_in_one_call_and_events_say_where(rig: Rig) -> None:
    async def work(bus: Any, rpc: AgentRpcClient) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []  # what this host's agent hears
        everyone: list[dict[str, Any]] = []  # what every other host's agent hears

        async def seen(envelope: Envelope) -> None:
            events.append(envelope.payload)

        async def seen_by_all(envelope: Envelope) -> None:
            everyone.append(envelope.payload)

        await bus.subscribe(f"event.*.{rig.host}", seen)
        await bus.subscribe("event.*.all", seen_by_all)
        network_id, ports = await asyncio.to_thread(_bound_ports, rig, 3)
        a, b, c = (tap_name(p["id"]) for p in ports)
        revision = {tap_name(p["id"]): p["revision_number"] for p in ports}
        stranger = tap_name(str(uuid.uuid4()))

        reply = await rpc.update_device_list([a, b, stranger], [c])

        assert (reply["devices_up"], reply["devices_down"]) == ([a, b, stranger], [c])
        assert reply["failed_devices_up"] == [] and reply["failed_devices_down"] == []
        assert reply["ports"][a] == {"exists": True, "revision": revision[a] + 1, "changed": True}
        assert reply["ports"][b] == {"exists": True, "revision": revision[b] + 1, "changed": True}
        assert reply["ports"][c]["exists"] is True and reply["ports"][stranger] == {"exists": False}
        again = await rpc.update_device_list([a], [])
        assert again["ports"][a] == {"exists": True, "revision": revision[a] + 1, "changed": False}

        # The single-device calls still answer as before.
        single = await rpc.update_device_down(a)
        assert single == {"device": a, "exists": True, "revision": revision[a] + 2, "changed": True}
        assert (await rpc.update_device_up(a)) == {"revision": revision[a] + 3, "changed": True}

        async with asyncio.timeout(10):
            while sum(1 for e in events if e.get("host") == rig.host) < 4:
                await asyncio.sleep(0.05)
        status_events = [e for e in events if e["id"] == ports[0]["id"] and e["revision"] > revision[a]]
        assert {(e["host"], e["network_id"]) for e in status_events} == {(rig.host, network_id)}
        # A status-only change reaches its own host alone: other hosts recompute nothing. A rename
        # published after it (same server, same order) shows the queues have caught up; it too
        # goes to the hosts of the port's network only (this one), never to every host.
        compute = api(rig.server, cloud_persona(rig.server, "neutrino-demo"))
        renamed = await asyncio.to_thread(lambda: ok(compute.put(f"/ports/{ports[0]['id']}",
                                                                 json={"port": {"name": "renamed"}}), "port"))
        async with asyncio.timeout(10):
            while not any(e["id"] == ports[0]["id"] and e["revision"] == renamed["revision_number"]
                          for e in events):
                await asyncio.sleep(0.05)
        bound_at = {p["id"]: p["revision_number"] for p in ports}
        assert [e for e in everyone if e["id"] in bound_at] == []
        return ports

    ports = asyncio.run(_as_agent(rig, work))
    demo = api(rig.server, cloud_persona(rig.server, "neutrino-demo"))
    assert [ok(demo.get(f"/ports/{p['id']}"), "port")["status"] for p in ports] == ["ACTIVE", "ACTIVE", "DOWN"]


def test_update_device_list_refuses_a_device_both_up_and_down(rig: Rig) -> None:
    async def work(bus: Any, rpc: AgentRpcClient) -> None:
        from neutrino.bus.errors import RemoteError

        tap = tap_name(str(uuid.uuid4()))
        with pytest.raises(RemoteError) as caught:
            await rpc.update_device_list([tap], [tap])
        assert caught.value.type == "ValueError"

    asyncio.run(_as_agent(rig, work))



def test_metrics_show_what_each_agents_reconciler_reported(rig: Rig) -> None:
    host = f"l3-{uuid.uuid4().hex[:6]}"

    async def report() -> None:
        bus = build_bus(rig.bus_url, sender=f"agent.{host}")
        await bus.start()
        try:
            await AgentRpcClient(bus, host, timeout=20).report_state({
                "role": "l3", "agent_type": "L3 agent", "binary": "neutrino-l3-agent", "topic": "l3_agent",
                "availability_zone": "nova", "start_flag": True,
                "configurations": {"routers": 2, "reconciler": {
                    "objects": 2, "pending": 0, "errors": 1, "failed_objects": {"r-1": "LoadNat: refused"},
                    "drift_actions": 3, "drift_objects": 1, "full_resyncs": 7}}})
        finally:
            await bus.close()

    asyncio.run(report())
    lines = httpx.get(f"{rig.server.url}/metrics", timeout=30).text.splitlines()
    labels = f'{{agent_type="L3 agent",host="{host}"}}'
    for name, value in (("errors", 1.0), ("drift_actions", 3.0), ("objects", 2.0), ("full_resyncs", 7.0)):
        assert f"neutrino_agent_reconciler_{name}{labels} {value}" in lines, (name, [ln for ln in lines if host in ln])
    # An agent that reports no reconciler state (the L2 agent of this module) has no series.
    assert not any(rig.host in line for line in lines if line.startswith("neutrino_agent_reconciler_"))
