"""Port wiring benchmark: how fast a bound port becomes ACTIVE and answers pings, and how cheap a resync is.

Runs a whole deployment on this machine with the fullstack harness (``tests/fullstack``): a
``neutrino up`` server on a throw-away PostgreSQL database and RabbitMQ vhost, and ``neutrino agent``
processes for simulated hosts (network namespaces on an underlay bridge). Nothing leaves namespaces
the benchmark creates; everything is removed at the end, also on failure or Ctrl-C::

    .venv/bin/python bench/wiring_bench.py                      # 1, 50, 200 instances; resync at 1000
    .venv/bin/python bench/wiring_bench.py --sizes 1,50 --resync-ports 300 --json out.json
    .venv/bin/python bench/wiring_bench.py --sizes "" --resync-ports 0 --dhcp-sizes 1,50,200   # DHCP only

Phase "burst of N instances on one host": N instances are built the way Nova builds them, 8 at a
time: create the port (as the project's user), bind it to the host (as the compute service), plug
the VIF (a namespace with a veth pair whose host end is ``tap<port>``), then ping a probe instance
on the same network from inside. Timestamps, all from this process's monotonic clock:

* bound: the binding request returned;
* tap: the tap's RTM_NEWLINK reached a netlink watch on the host namespace (as it reaches the agent);
* ACTIVE: the server's post-commit port event with the ACTIVE revision reached a bus subscription
  (its status is checked with the API afterwards);
* first ping: ``ping -i 0.01`` from inside the instance exited with its first answer.

Phase "resync": the host is filled up to ``--resync-ports`` wired ACTIVE ports (taps whose peers sit
in one namespace), a second host shares the network (so the VXLAN device has FDB entries to check),
the host's agent process is stopped, and the l2 role is run in this process against the same bus and
namespace: the first (cold) full resync and several warm ones are timed, then two by a role that
reads the links with a fresh dump every time (the periodic safety net); each must plan no action,
and a netlink watch plus a before/after read of links (ifindex, master) and FDB entries prove that
the kernel was not touched. Last, the agent process is started again and the time until it reports
all its devices wired is measured (1 s heartbeat granularity).

Phase "DHCP" (``--dhcp-sizes``, a host ``d1`` running ``neutrino agent --roles l2,dhcp`` and a network
with DHCP on): N instances are built as above but without static addresses; as Nova boots a guest
after the vif-plugged event, each asks for its lease once the ACTIVE event reached the bus
subscription, with ``bench/dhcp_probe.py`` (a DHCP client that sends at once: dhclient first waits a
random 0-1 s, as RFC 2131 asks, which would swamp the server's part). Wall-clock spans:

* active_to_lease: ACTIVE event -> DHCPACK in the instance (the issue's target: p50 <= 150 ms); the
  probe is started when the VIF is plugged and sends when the event arrives (if the port was ACTIVE
  before the probe was ready, the wait counts: ``probe_ready_after_active`` says how often);
* discover_to_ack: the probe's first DHCPDISCOVER -> its DHCPACK (the DHCP server's part).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

# The harness lives with the tests; the benchmark is run from a checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neutrino.agent.roles.l2 import LinuxBridgeRole  # noqa: E402
from neutrino.agent.roles.l2.config import LinuxBridgeConfig  # noqa: E402
from neutrino.agent.rpc_client import AgentRpcClient  # noqa: E402
from neutrino.bus.envelope import Envelope  # noqa: E402
from neutrino.bus.factory import build_bus  # noqa: E402
from neutrino.compute.vif import SubnetFacts, VifPlugger, VifSpec, static_addressing  # noqa: E402
from neutrino.contract.names import tap_name  # noqa: E402
from neutrino.dataplane.netlink import NetlinkDriver  # noqa: E402
from neutrino.dataplane.ownership import OwnerTag  # noqa: E402
from tests.fullstack.deployment import PHYSNET, Deployment, running_deployment  # noqa: E402
from tests.fullstack.underlay import SimulatedHost, delete_namespace, fdb, links  # noqa: E402
from tests.support.tenants import password_auth  # noqa: E402

BUILD_CONCURRENCY = 8
CIDR = ipaddress.ip_network("10.200.0.0/20")
DHCP_CIDR = ipaddress.ip_network("10.216.0.0/20")
DHCP_PROBE = Path(__file__).with_name("dhcp_probe.py")


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"n": len(values), "p50_ms": round(percentile(values, 50) * 1000, 1),
            "p99_ms": round(percentile(values, 99) * 1000, 1), "max_ms": round(max(values) * 1000, 1)}


@dataclass
class Timeline:
    port_id: str = ""
    started: float = 0.0
    bound: float = 0.0
    bound_revision: int = 0
    tap: float | None = None
    active: float | None = None
    first_ping: float | None = None
    namespace: str = ""
    error: str = ""
    diagnosis: str = ""


@dataclass
class DhcpTimeline:
    """Wall-clock times (seconds since the epoch) of one DHCP instance."""

    port_id: str = ""
    namespace: str = ""
    active: float | None = None
    discover: float | None = None
    lease: float | None = None  # the DHCPACK
    # DISCOVERs sent (one a second): more than one means dnsmasq did not know the port yet at ACTIVE.
    discovers: int = 0
    # The port was ACTIVE before the probe was ready (its start-up then counts in active_to_lease).
    late: bool = False
    error: str = ""


@dataclass
class Observers:
    """Netlink watch on the host namespace (tap arrival) and bus subscription (port events)."""

    taps: dict[str, float] = field(default_factory=dict)
    port_events: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    link_events: int = 0
    # Port id -> set when an event with a revision past the binding arrives (the DHCP phase waits on it).
    waiting: dict[str, tuple[int, asyncio.Event]] = field(default_factory=dict)
    # Monotonic -> wall clock, for spans that end at a file's mtime.
    clock_offset: float = field(default_factory=lambda: time.time() - time.monotonic())

    async def on_event(self, envelope: Envelope) -> None:
        payload = envelope.payload
        if payload.get("resource") == "port":
            port_id, revision = str(payload["id"]), int(payload.get("revision") or 0)
            self.port_events.setdefault(port_id, []).append((time.monotonic(), revision))
            waiter = self.waiting.get(port_id)
            if waiter is not None and revision > waiter[0]:
                waiter[1].set()

    async def watch(self, driver: NetlinkDriver, netns: str, ready: asyncio.Event) -> None:
        async with driver.watch_links(netns=netns) as watch:
            ready.set()
            async for event in watch:
                self.link_events += 1
                if event.event == "added" and event.name.startswith("tap"):
                    self.taps.setdefault(event.name, time.monotonic())

    def active_at(self, timeline: Timeline) -> float | None:
        for at, revision in self.port_events.get(timeline.port_id, ()):
            if revision > timeline.bound_revision:
                return at
        return None


class Cloud:
    """The API calls Nova makes, asynchronously: as the user (ports) and as the compute service (binding)."""

    def __init__(self, deployment: Deployment) -> None:
        import yaml

        assert deployment.server is not None
        self.deployment = deployment
        clouds = yaml.safe_load(deployment.clouds_yaml.read_text())["clouds"]
        self._auth = {name: clouds[name]["auth"] for name in ("neutrino-demo", "neutrino-compute")}
        self._tokens = {name: self._login(name) for name in self._auth}
        # Idle connections are dropped before the server's 5 s keep-alive ends, so a request never
        # races the server closing the connection it was sent on.
        self.http = httpx.AsyncClient(base_url=deployment.server.url + "/v2.0", timeout=60,
                                      limits=httpx.Limits(max_connections=32, keepalive_expiry=2))

    def _login(self, cloud: str) -> str:
        auth = self._auth[cloud]
        assert self.deployment.server is not None
        return password_auth(self.deployment.server, auth["username"], auth["password"], auth["project_name"])[0]

    async def call(self, cloud: str, method: str, path: str, body: Any = None) -> Any:
        resp = await self.http.request(method, path, json=body, headers={"X-Auth-Token": self._tokens[cloud]})
        if resp.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {resp.status_code} {resp.text}")
        return resp.json() if resp.content else None

    async def create_port(self, network_id: str, name: str) -> dict[str, Any]:
        body = {"port": {"network_id": network_id, "name": name, "device_owner": "compute:nova",
                         "device_id": name}}
        return (await self.call("neutrino-demo", "POST", "/ports", body))["port"]

    async def bind(self, port_id: str, host: str) -> dict[str, Any]:
        body = {"port": {"binding:host_id": host}}
        return (await self.call("neutrino-compute", "PUT", f"/ports/{port_id}", body))["port"]

    async def delete_port(self, port_id: str) -> None:
        await self.call("neutrino-demo", "DELETE", f"/ports/{port_id}")

    async def count_active(self, network_id: str, host: str) -> int:
        ports = (await self.call("neutrino-demo", "GET",
                                 f"/ports?network_id={network_id}&status=ACTIVE&fields=id"))["ports"]
        return len(ports)

    async def close(self) -> None:
        await self.http.aclose()


class Bench:
    def __init__(self, deployment: Deployment, cloud: Cloud, network: dict[str, Any], subnet: dict[str, Any]
                 ) -> None:
        self.deployment = deployment
        self.cloud = cloud
        self.network = network
        self.subnet = SubnetFacts(subnet["id"], ipaddress.ip_network(subnet["cidr"]), None)
        self.observers = Observers()
        self._serial = 0

    def _driver(self, host: SimulatedHost) -> NetlinkDriver:
        return NetlinkDriver(OwnerTag(host.name))

    def _name(self, prefix: str) -> str:
        self._serial += 1
        return f"wb{self.deployment.run_id}-{prefix}{self._serial}"

    async def build_instance(self, host: SimulatedHost, gate: asyncio.Semaphore, *,
                             ping_target: str | None) -> Timeline:
        """Nova's order: port, binding, VIF; then ping ``ping_target`` from inside until it answers."""
        timeline = Timeline(started=time.monotonic())
        name = self._name("i")
        async with gate:
            try:
                port = await self.cloud.create_port(self.network["id"], name)
                timeline.port_id = port["id"]
                bound = await self.cloud.bind(port["id"], host.name)
                timeline.bound, timeline.bound_revision = time.monotonic(), int(bound["revision_number"])
                timeline.namespace = f"nqi-{name}"
                addressing = static_addressing(bound["fixed_ips"], {self.subnet.id: self.subnet})
                spec = VifSpec(port["id"], port["mac_address"], self.network["mtu"], timeline.namespace,
                               host.netns, addressing)
                await VifPlugger(self._driver(host)).plug(spec)
            except Exception as exc:  # noqa: BLE001 - reported per instance
                timeline.error = str(exc)
                return timeline
        if ping_target is not None:
            await self._first_ping(host, timeline, ping_target, deadline=time.monotonic() + 60)
        return timeline

    async def build_dhcp_instance(self, host: SimulatedHost, gate: asyncio.Semaphore, network: dict[str, Any]
                                  ) -> DhcpTimeline:
        """Port, binding, VIF without addresses; once the port is ACTIVE, a DHCP exchange from inside."""
        timeline = DhcpTimeline()
        name = self._name("d")
        try:
            async with gate:
                port = await self.cloud.create_port(network["id"], name)
                timeline.port_id = port["id"]
                active = asyncio.Event()
                bound = await self.cloud.bind(port["id"], host.name)
                self.observers.waiting[port["id"]] = (int(bound["revision_number"]), active)
                if self.observers.active_at(Timeline(port_id=port["id"],
                                                     bound_revision=int(bound["revision_number"]))) is not None:
                    active.set()
                timeline.namespace = f"nqi-{name}"
                await VifPlugger(self._driver(host)).plug(VifSpec(port["id"], port["mac_address"], network["mtu"],
                                                                  timeline.namespace, host.netns, None))
                # Started now, so that no Python start-up is timed: it sends when told to.
                probe = await asyncio.create_subprocess_exec(
                    "ip", "netns", "exec", timeline.namespace, sys.executable, str(DHCP_PROBE), "eth0",
                    port["mac_address"], "--wait", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT)
            assert probe.stdout is not None and probe.stdin is not None
            ready = await asyncio.wait_for(probe.stdout.readline(), timeout=120)
            if ready.strip() != b"ready":
                raise RuntimeError(f"DHCP probe: {ready.decode(errors='replace')}")
            timeline.late = active.is_set()
            await asyncio.wait_for(active.wait(), timeout=120)
            probe.stdin.write(b"go\n")
            # The event's arrival (if the probe was not ready by then, the wait is in the span: "late").
            at = self.observers.active_at(Timeline(port_id=port["id"], bound_revision=int(bound["revision_number"])))
            timeline.active = (at if at is not None else time.monotonic()) + self.observers.clock_offset
            await probe.stdin.drain()
            out, _ = await probe.communicate()
            answer = json.loads(out.decode().strip().splitlines()[-1])
            if "error" in answer or not answer.get("acked"):
                hosts = (self.deployment.instance_state_dir / "dhcp" / host.name / network["id"] / "host")
                known = port["mac_address"] in (hosts.read_text() if hosts.exists() else "")
                raise RuntimeError(f"DHCP: {answer.get('error', 'NAK')} (port in dnsmasq's hosts file now: {known})")
            if answer["address"] not in {ip["ip_address"] for ip in bound["fixed_ips"]}:
                raise RuntimeError(f"DHCP gave {answer['address']}, the port has {bound['fixed_ips']}")
            timeline.discover, timeline.lease = float(answer["discover"]), float(answer["ack"])
            timeline.discovers = int(answer["attempts"])
        except Exception as exc:  # noqa: BLE001 - reported per instance
            timeline.error = str(exc) or type(exc).__name__
        return timeline

    async def dhcp_burst(self, host: SimulatedHost, count: int, network: dict[str, Any]) -> dict[str, Any]:
        gate = asyncio.Semaphore(BUILD_CONCURRENCY)
        started = time.monotonic()
        timelines = await asyncio.gather(*(self.build_dhcp_instance(host, gate, network)
                                           for _ in range(count)))
        elapsed = time.monotonic() - started
        ok = [t for t in timelines if not t.error and t.lease is not None and t.active is not None]
        result = {
            "instances": count,
            "wall_seconds": round(elapsed, 2),
            "errors": sorted({t.error for t in timelines if t.error}),
            "failed": count - len(ok),
            "active_to_lease": summary([t.lease - t.active for t in ok]),  # type: ignore[operator]
            "discover_to_ack": summary([t.lease - t.discover for t in ok]),  # type: ignore[operator]
            "first_discover_unanswered": sum(1 for t in ok if t.discovers > 1),
            "probe_ready_after_active": sum(1 for t in ok if t.late),
        }
        for t in timelines:
            self.observers.waiting.pop(t.port_id, None)
        await self.remove([Timeline(port_id=t.port_id, namespace=t.namespace) for t in timelines])
        return result

    async def _first_ping(self, host: SimulatedHost, timeline: Timeline, target: str, deadline: float) -> None:
        """Ping every 10 ms until the first answer. ``ping -c 1`` also ends at its first ICMP error
        (the neighbour entry failing after 3 s without an ARP answer), so it is started again."""
        text = ""
        while time.monotonic() < deadline:
            process = await asyncio.create_subprocess_exec(
                "ip", "netns", "exec", timeline.namespace, "ping", "-n", "-q", "-c", "1", "-i", "0.01", "-w", "10",
                target, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
            out, _ = await process.communicate()
            if process.returncode == 0:
                timeline.first_ping = time.monotonic()
                return
            text = out.decode(errors="replace").strip()
        timeline.error = "no ping answer within 60 s"
        timeline.diagnosis = text + "\n" + await asyncio.to_thread(diagnose, host, timeline)

    async def wire_bare_port(self, host: SimulatedHost, sink: str, gate: asyncio.Semaphore) -> str:
        """A bound port whose tap's peer sits in ``sink`` (no instance namespace): for filling a host."""
        async with gate:
            port = await self.cloud.create_port(self.network["id"], self._name("p"))
            await self.cloud.bind(port["id"], host.name)
            await self._driver(host).ensure_veth(tap_name(port["id"]), "p" + port["id"][:11], netns=host.netns,
                                                 peer_netns=sink, mtu=self.network["mtu"])
            return str(port["id"])

    async def finish(self, timelines: list[Timeline], timeout: float) -> None:
        """Wait until every instance's ACTIVE event arrived (or the timeout), then fill in tap/ACTIVE times."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.observers.active_at(t) is not None for t in timelines if not t.error):
                break
            await asyncio.sleep(0.05)
        for t in timelines:
            t.tap = self.observers.taps.get(tap_name(t.port_id)) if t.port_id else None
            t.active = self.observers.active_at(t)
            if t.port_id:
                port = await self.cloud.call("neutrino-demo", "GET", f"/ports/{t.port_id}")
                if port["port"]["status"] != "ACTIVE" and not t.error:
                    t.error = f"status {port['port']['status']}"

    async def burst(self, host: SimulatedHost, count: int, ping_target: str) -> dict[str, Any]:
        gate = asyncio.Semaphore(BUILD_CONCURRENCY)
        started = time.monotonic()
        timelines = await asyncio.gather(*(self.build_instance(host, gate, ping_target=ping_target)
                                           for _ in range(count)))
        await self.finish(list(timelines), timeout=120)
        elapsed = time.monotonic() - started

        def spans(start: str, end: str) -> list[float]:
            out = []
            for t in timelines:
                a, b = getattr(t, start), getattr(t, end)
                if a is not None and b is not None and not t.error:
                    out.append(b - a)
            return out

        for t in timelines:
            if t.diagnosis:
                print(f"instance {t.namespace} (port {t.port_id}) failed: {t.error}\n{t.diagnosis}",
                      file=sys.stderr, flush=True)
        result = {
            "instances": count,
            "wall_seconds": round(elapsed, 2),
            "errors": sorted({t.error for t in timelines if t.error}),
            "failed": sum(1 for t in timelines if t.error),
            "bound_to_tap": summary(spans("bound", "tap")),
            "tap_to_active": summary(spans("tap", "active")),
            "bound_to_active": summary(spans("bound", "active")),
            "tap_to_first_ping": summary(spans("tap", "first_ping")),
            "bound_to_first_ping": summary(spans("bound", "first_ping")),
        }
        await self.remove(list(timelines))
        return result

    async def remove(self, timelines: list[Timeline]) -> None:
        for t in timelines:
            if t.namespace:
                await asyncio.to_thread(delete_namespace, t.namespace)
        gate = asyncio.Semaphore(BUILD_CONCURRENCY)

        async def delete(port_id: str) -> None:
            async with gate:
                with contextlib.suppress(RuntimeError):
                    await self.cloud.delete_port(port_id)

        await asyncio.gather(*(delete(t.port_id) for t in timelines if t.port_id))


def diagnose(host: SimulatedHost, timeline: Timeline) -> str:
    """What the kernel shows of an instance that did not answer: its tap, its eth0, its neighbours."""
    import subprocess

    commands = [["ip", "-n", host.netns, "-d", "link", "show", "dev", tap_name(timeline.port_id)],
                ["ip", "-n", timeline.namespace, "addr", "show"],
                ["ip", "-n", timeline.namespace, "neigh", "show"],
                ["ip", "-n", timeline.namespace, "route", "show"]]
    out = []
    for command in commands:
        result = subprocess.run(command, capture_output=True, text=True, timeout=20, check=False)
        out.append("$ " + " ".join(command) + "\n" + result.stdout + result.stderr)
    return "\n".join(out)


def kernel_state(host: SimulatedHost) -> dict[str, Any]:
    """Every link's (ifindex, master, mtu, up) and every VXLAN device's tunnel FDB entries."""
    state: dict[str, Any] = {}
    for name, link in links(host.netns).items():
        state[name] = (link["ifindex"], link.get("master"), link.get("mtu"), "UP" in link.get("flags", []))
        if name.startswith("vxlan-"):
            state[f"{name} fdb"] = sorted((e["mac"], e["dst"]) for e in fdb(host.netns, name) if "dst" in e)
    return state


async def resync_phase(bench: Bench, deployment: Deployment, total_ports: int, warm_runs: int) -> dict[str, Any]:
    h1, h2 = deployment.host("h1"), deployment.host("h2")
    sink = deployment.underlay.add_isolated("sink")
    gate = asyncio.Semaphore(BUILD_CONCURRENCY)
    fill_started = time.monotonic()
    have = await bench.cloud.count_active(bench.network["id"], h1.name)
    await asyncio.gather(*(bench.wire_bare_port(h1, sink, gate) for _ in range(max(0, total_ports - have))))
    await bench.wire_bare_port(h2, sink, gate)  # a remote port: h1's VXLAN device gets FDB entries
    deadline = time.monotonic() + 600
    while await bench.cloud.count_active(bench.network["id"], h1.name) < total_ports + 1:
        if time.monotonic() > deadline:
            raise RuntimeError("ports did not all become ACTIVE within 600 s")
        await asyncio.sleep(1)
    fill_seconds = time.monotonic() - fill_started
    await asyncio.sleep(3)  # let h1's agent settle (an l2 population resync for the remote port)
    before = await asyncio.to_thread(kernel_state, h1)

    agent = deployment.agents["h1"]
    await asyncio.to_thread(agent.stop)
    bus = build_bus(deployment.bus_url, sender=f"agent.{h1.name}")
    await bus.start()
    rpc = AgentRpcClient(bus, h1.name, timeout=60)
    role = LinuxBridgeRole(LinuxBridgeConfig(host=h1.name, tunnel_ip=h1.tunnel_ip,
                                             bridge_mappings={PHYSNET: h1.physical_interface}, netns=h1.netns), rpc)
    runs: list[dict[str, Any]] = []
    events_before = bench.observers.link_events
    try:
        await role.start()
        started = time.monotonic()
        state = await rpc.sync_state("l2")
        sync_state_seconds = time.monotonic() - started
        for run in range(1 + warm_runs):
            started, cpu = time.monotonic(), time.process_time()
            await role.resync()
            seconds, cpu = time.monotonic() - started, time.process_time() - cpu
            report = role.last_reconcile
            assert report is not None
            runs.append({"run": "cold (fresh role)" if run == 0 else f"warm {run}", "seconds": round(seconds, 3),
                         "cpu_seconds": round(cpu, 3), "actions": len(report.actions),
                         "reports": len(report.reports), "links_from": report.links_from})
        await role.stop()
        # The periodic safety net: every n-th resync reads the links with a fresh dump instead of
        # the event-maintained mirror; here every one does.
        role = LinuxBridgeRole(LinuxBridgeConfig(host=h1.name, tunnel_ip=h1.tunnel_ip,
                                                 bridge_mappings={PHYSNET: h1.physical_interface},
                                                 netns=h1.netns), rpc, full_read_every=1)
        await role.start()
        for run in range(2):
            started, cpu = time.monotonic(), time.process_time()
            await role.resync()
            seconds, cpu = time.monotonic() - started, time.process_time() - cpu
            report = role.last_reconcile
            assert report is not None
            runs.append({"run": f"dump {run + 1}", "seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3),
                         "actions": len(report.actions), "reports": len(report.reports),
                         "links_from": report.links_from})
    finally:
        await role.stop()
        await bus.close()
    await asyncio.sleep(0.5)  # let the watch deliver anything the resyncs might have caused
    link_events = bench.observers.link_events - events_before
    after = await asyncio.to_thread(kernel_state, h1)

    restarted = time.monotonic()
    await asyncio.to_thread(agent.start)
    deadline = time.monotonic() + 300
    restart_seconds = None
    while time.monotonic() < deadline:
        rows = await asyncio.to_thread(deployment.api().agents, host=h1.name)
        devices = [int((r.get("configurations") or {}).get("devices", 0)) for r in rows if r["alive"]]
        started_ok = rows and agent.started_at and rows[0].get("started_at") and \
            rows[0]["started_at"] >= agent.started_at.strftime("%Y-%m-%d %H:%M:%S")
        if started_ok and devices and devices[0] >= total_ports:
            restart_seconds = time.monotonic() - restarted
            break
        await asyncio.sleep(0.2)
    after_restart = await asyncio.to_thread(kernel_state, h1)
    return {
        "ports_on_host": len(state.get("ports", [])),
        "fill_seconds": round(fill_seconds, 1),
        "sync_state_rpc_seconds": round(sync_state_seconds, 3),
        "runs": runs,
        "link_events_during_resyncs": link_events,
        "kernel_unchanged": before == after,
        "kernel_unchanged_after_process_restart": before == after_restart,
        "process_restart_to_all_wired_seconds": None if restart_seconds is None else round(restart_seconds, 1),
    }


async def dhcp_phase(bench: Bench, deployment: Deployment, sizes: Sequence[int]) -> list[dict[str, Any]]:
    """Bursts of DHCP instances on a host that runs the dhcp role (so the network's dnsmasq is there)."""
    await asyncio.to_thread(deployment.add_host, "d1", roles="l2,dhcp")
    d1 = deployment.host("d1")
    demo = deployment.api("neutrino-demo")
    network = await asyncio.to_thread(demo.create_network, deployment.unique("dhcp"))
    await asyncio.to_thread(demo.create_subnet, network["id"], str(DHCP_CIDR), deployment.unique("dhcp"))
    # The DHCP port is scheduled, bound and served before the first instance is timed.
    deadline = time.monotonic() + 120
    while True:
        ports = (await bench.cloud.call("neutrino-demo", "GET", f"/ports?network_id={network['id']}"
                                        "&device_owner=network:dhcp"))["ports"]
        if ports and ports[0]["status"] == "ACTIVE":
            break
        if time.monotonic() > deadline:
            raise RuntimeError("the network's DHCP port never became ACTIVE")
        await asyncio.sleep(0.2)
    bursts = []
    for size in sizes:
        print(f"DHCP burst of {size} instance(s)...", file=sys.stderr, flush=True)
        bursts.append(await bench.dhcp_burst(d1, size, network))
        print(json.dumps(bursts[-1]), file=sys.stderr, flush=True)
    return bursts


async def run(deployment: Deployment, sizes: Sequence[int], resync_ports: int, warm_runs: int,
              dhcp_sizes: Sequence[int] = ()) -> dict[str, Any]:
    cloud = Cloud(deployment)
    bench = None
    bus = build_bus(deployment.bus_url, sender="bench.wiring")
    await bus.start()
    watch_task = None
    try:
        demo = deployment.api("neutrino-demo")
        network = await asyncio.to_thread(demo.create_network, deployment.unique("wiring"))
        subnet = await asyncio.to_thread(demo.create_subnet, network["id"], str(CIDR), deployment.unique("wiring"),
                                         enable_dhcp=False, gateway_ip=None)
        bench = Bench(deployment, cloud, network, subnet)
        h1 = deployment.host("h1")
        await bus.subscribe("event.port.#", bench.observers.on_event)  # status changes go to the host only
        ready = asyncio.Event()
        watch_task = asyncio.create_task(bench.observers.watch(NetlinkDriver(OwnerTag("bench")), h1.netns, ready))
        await ready.wait()
        probe = await bench.build_instance(h1, asyncio.Semaphore(1), ping_target=None)
        if probe.error:
            raise RuntimeError(f"probe instance failed: {probe.error}")
        await bench.finish([probe], timeout=60)
        probe_ip = (await cloud.call("neutrino-demo", "GET", f"/ports/{probe.port_id}"))["port"]["fixed_ips"][0][
            "ip_address"]
        bursts = []
        for size in sizes:
            print(f"burst of {size} instance(s)...", file=sys.stderr, flush=True)
            bursts.append(await bench.burst(h1, size, probe_ip))
            print(json.dumps(bursts[-1]), file=sys.stderr, flush=True)
        dhcp = await dhcp_phase(bench, deployment, dhcp_sizes) if dhcp_sizes else []
        resync = None
        if resync_ports:
            print(f"resync with {resync_ports} wired ports...", file=sys.stderr, flush=True)
            resync = await resync_phase(bench, deployment, resync_ports, warm_runs)
        return {"bursts": bursts, "dhcp": dhcp, "resync": resync}
    finally:
        if watch_task is not None:
            watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watch_task
        await bus.close()
        await cloud.close()


def print_report(result: dict[str, Any]) -> None:
    print(f"\nPort wiring benchmark ({platform.node()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} at the end)")
    print(f"{'instances':>9}  {'span':<20} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for burst in result["bursts"]:
        for span in ("bound_to_tap", "tap_to_active", "bound_to_active", "tap_to_first_ping",
                     "bound_to_first_ping"):
            s = burst[span]
            if s:
                print(f"{burst['instances']:>9}  {span:<20} {s['p50_ms']:>8} {s['p99_ms']:>8} {s['max_ms']:>8}")
        print(f"{'':>9}  wall {burst['wall_seconds']} s, failed {burst['failed']} {burst['errors'] or ''}")
    if result.get("dhcp"):
        print(f"\nDHCP: port ACTIVE -> lease bound in the instance\n{'instances':>9}  {'span':<22} "
              f"{'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
        for burst in result["dhcp"]:
            for span in ("active_to_lease", "discover_to_ack"):
                s = burst[span]
                if s:
                    print(f"{burst['instances']:>9}  {span:<22} {s['p50_ms']:>8} {s['p99_ms']:>8} {s['max_ms']:>8}")
            print(f"{'':>9}  wall {burst['wall_seconds']} s, failed {burst['failed']} {burst['errors'] or ''}, "
                  f"first DISCOVER unanswered {burst['first_discover_unanswered']}, "
                  f"probe ready only after ACTIVE {burst['probe_ready_after_active']}")
    resync = result.get("resync")
    if resync:
        print(f"\nresync with {resync['ports_on_host']} ports wired on the host "
              f"(sync_state RPC alone {resync['sync_state_rpc_seconds']} s):")
        for r in resync["runs"]:
            print(f"  {r['run']:<18} {r['seconds']:>7} s  (this process's CPU {r['cpu_seconds']} s)  "
                  f"actions {r['actions']}  reports {r['reports']}  links from {r['links_from']}")
        print(f"  link events during the resyncs: {resync['link_events_during_resyncs']}; kernel unchanged: "
              f"{resync['kernel_unchanged']}; after an agent process restart: "
              f"{resync['kernel_unchanged_after_process_restart']}")
        print(f"  agent process restart to all ports wired (heartbeat granularity): "
              f"{resync['process_restart_to_all_wired_seconds']} s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,50,200", help="burst sizes (instances per burst), comma-separated")
    parser.add_argument("--resync-ports", type=int, default=1000, help="ports wired on the host for the resync "
                        "phase (0 skips it)")
    parser.add_argument("--warm-runs", type=int, default=5)
    parser.add_argument("--dhcp-sizes", default="1,50,200", help="DHCP burst sizes, comma-separated (empty skips)")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--keep-logs", metavar="DIR", help="keep the server and agent logs in DIR (not removed)")
    parser.add_argument("--agent-log-level", default="INFO", help="e.g. DEBUG, to see each tap's wiring")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("wiring_bench: needs root (namespaces, devices)", file=sys.stderr)
        return 1
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    workdir = Path(args.keep_logs) if args.keep_logs else Path(tempfile.mkdtemp(prefix="neutrino-wiring-bench-"))
    extra = "[quotas]\nport = -1\nnetwork = -1\nsubnet = -1\n"
    try:
        with running_deployment(workdir, host_labels=("h1", "h2"), extra_server_config=extra,
                                agent_log_level=args.agent_log_level) as deployment:
            dhcp_sizes = [int(s) for s in args.dhcp_sizes.split(",") if s.strip()]
            result = asyncio.run(run(deployment, sizes, args.resync_ports, args.warm_runs, dhcp_sizes))
            # Before the teardown: a teardown that fails under load (nft calls timing out) must not
            # lose the numbers.
            print_report(result)
            if args.json:
                Path(args.json).write_text(json.dumps({"result": result, "sizes": sizes, **asdict(Meta())},
                                                      indent=2))
    finally:
        if not args.keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


@dataclass(frozen=True)
class Meta:
    cpus: int = os.cpu_count() or 0
    kernel: str = platform.release()
    python: str = platform.python_version()


if __name__ == "__main__":
    sys.exit(main())
