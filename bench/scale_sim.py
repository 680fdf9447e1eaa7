"""The control plane at N hosts, measured without their data planes (issue 14's simulation).

Starts a private RabbitMQ node (the fullstack harness's, never the machine's shared broker), a
PostgreSQL database of its own and ``neutrino server`` with API and RPC workers on them, then N
simulated agents in this process: each a real :class:`~neutrino.agent.process.AgentProcess` with its
own host name, heartbeating every 30 s (Neutron's interval) and resyncing through the real bus, its
one role a stand-in for the L2 role that fetches its full ``sync_state`` and counts the events it
is sent instead of touching a kernel. Simulated hosts share a few bus connections (one per
``--hosts-per-connection``), each host with its own subscriptions, as its agent process would.

It creates networks whose ports are bound across ``--hosts-per-network`` hosts, as Nova would,
then restarts the server and the broker, and prints:

* events delivered to agents per port create, per network create and per network update;
* server CPU per heartbeat (every process of the server, over an idle window);
* bytes and time of a full ``sync_state`` for a host with 100 ports;
* time for all N hosts to finish a full resync after a server restart and after a broker restart;
* RabbitMQ's queue count and memory.

    .venv/bin/python bench/scale_sim.py --hosts 10 100 1000 [--json out.json]

Needs root (the private broker runs as the rabbitmq user), PostgreSQL on 127.0.0.1 and RabbitMQ's
server scripts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neutrino.agent.process import AgentProcess  # noqa: E402
from neutrino.agent.rpc_client import AgentRpcClient  # noqa: E402
from neutrino.bus.envelope import Envelope  # noqa: E402
from neutrino.bus.factory import build_bus  # noqa: E402
from neutrino.bus.interface import Bus  # noqa: E402
from neutrino.cli.allinone import prepare_state  # noqa: E402
from neutrino.config import load_settings  # noqa: E402
from tests.fullstack.broker import PrivateRabbitNode, rabbitmqctl  # noqa: E402
from tests.support.databases import temporary_database  # noqa: E402
from tests.support.live_server import LiveServer, free_port  # noqa: E402
from tests.support.tenants import cloud_persona  # noqa: E402

REPORT_INTERVAL = 30.0


@dataclass
class HostStats:
    delivered: Counter[str] = field(default_factory=Counter)
    to_every_host: int = 0  # of them, on event.<resource>.all
    syncs: list[float] = field(default_factory=list)  # monotonic end time of each successful full sync
    last_bytes: int = 0


class SimulatedL2:
    """The L2 role's conversation with the server, without a kernel: sync_state and event hints."""

    name = "l2"
    agent_type = "Linux bridge agent"
    binary = "neutrino-linuxbridge-agent"
    topic = "N/A"

    def __init__(self, host: str, index: int, rpc: AgentRpcClient, stats: HostStats) -> None:
        self.host, self.rpc, self.stats = host, rpc, stats
        self.tunneling_ip = f"198.18.{index // 250}.{index % 250 + 1}"

    def configurations(self) -> Mapping[str, Any]:
        return {"tunnel_types": ["vxlan"], "tunneling_ip": self.tunneling_ip, "bridge_mappings": {}}

    async def start(self) -> None:
        return None

    async def resync(self) -> None:
        state = await self.rpc.sync_state("l2")
        self.stats.last_bytes = len(json.dumps(state))
        self.stats.syncs.append(time.monotonic())

    async def on_event(self, envelope: Envelope) -> None:
        self.stats.delivered[str(envelope.payload.get("resource"))] += 1
        if envelope.topic and envelope.topic.endswith(".all"):
            self.stats.to_every_host += 1

    async def stop(self) -> None:
        return None


@dataclass
class Fleet:
    buses: list[Bus]
    agents: list[AgentProcess]
    stats: dict[str, HostStats]

    def delivered(self) -> int:
        """Change events delivered to every host (an agent's own registration record left out)."""
        return sum(sum(v for k, v in s.delivered.items() if k != "agent") for s in self.stats.values())

    def recovery_resyncs(self) -> int:
        return sum(a.recovery_resyncs for a in self.agents)

    async def stop(self) -> None:
        await asyncio.gather(*(a.stop() for a in self.agents), return_exceptions=True)
        await asyncio.gather(*(b.close() for b in self.buses), return_exceptions=True)


async def start_fleet(bus_url: str, hosts: list[str], per_connection: int, resync_interval: float) -> Fleet:
    buses: list[Bus] = []
    agents: list[AgentProcess] = []
    stats: dict[str, HostStats] = {}
    for start in range(0, len(hosts), per_connection):
        bus = build_bus(bus_url, sender=f"sim.{start}")
        await bus.start()
        buses.append(bus)
        for index, host in enumerate(hosts[start:start + per_connection], start):
            rpc = AgentRpcClient(bus, host, timeout=30)
            stats[host] = HostStats()
            agents.append(AgentProcess(host, bus, rpc, [SimulatedL2(host, index, rpc, stats[host])],
                                       report_interval=REPORT_INTERVAL, resync_interval=resync_interval))
    # A cloud's agents do not all start in the same second: spread over one report interval.
    chunks = range(0, len(agents), 50)
    for chunk in chunks:
        await asyncio.gather(*(a.start() for a in agents[chunk:chunk + 50]))
        await asyncio.sleep(REPORT_INTERVAL / len(chunks))
    return Fleet(buses, agents, stats)


# ---- the server ------------------------------------------------------------------------------


@dataclass
class ServerRig:
    workdir: Path
    config: Path
    state_dir: Path
    server: LiveServer | None = None

    def start(self) -> LiveServer:
        port = int(self.config.read_text().split("port = ")[1].split("\n")[0])
        log_path = self.workdir / "server.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "neutrino.cli.main", "server", "--config", str(self.config),
                                     "--state-dir", str(self.state_dir)], stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.server = LiveServer(f"http://127.0.0.1:{port}", self.state_dir, self.state_dir / "clouds.yaml", proc,
                                 log_path)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.server.log_tail()}")
            try:
                if httpx.get(self.server.url + "/healthz", timeout=2).status_code == 200:
                    return self.server
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not healthy:\n{self.server.log_tail()}")

    def stop(self) -> None:
        if self.server is None:
            return
        try:
            os.killpg(self.server.process.pid, signal.SIGTERM)
            self.server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.server.process.pid, signal.SIGKILL)
            self.server.process.wait()
        except ProcessLookupError:
            pass

    def cpu_seconds(self) -> float:
        """User + system CPU of every process of the server's session (supervisor and workers)."""
        assert self.server is not None
        session, total, tick = self.server.process.pid, 0, os.sysconf("SC_CLK_TCK")
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == session:  # field 6 of stat: the session id
                total += int(fields[11]) + int(fields[12])  # utime, stime (this process; children reaped)
        return total / tick


# ---- one run at N hosts --------------------------------------------------------------------------


async def wait_quiet(fleet: Fleet, quiet: float = 2.0, limit: float = 120.0) -> None:
    """Until no event has arrived for ``quiet`` seconds."""
    deadline, last, since = time.monotonic() + limit, fleet.delivered(), time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        now = fleet.delivered()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return


async def converge_after(fleet: Fleet, since: float, limit: float) -> float | None:
    """Seconds from ``since`` until every host finished a full sync after it (None: not within limit)."""
    deadline = since + limit
    while time.monotonic() < deadline:
        pending = [h for h, s in fleet.stats.items() if not s.syncs or s.syncs[-1] < since]
        if not pending:
            return max(s.syncs[-1] for s in fleet.stats.values()) - since
        await asyncio.sleep(0.5)
    return None


def progress(n: int, what: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] N={n}: {what}", file=sys.stderr, flush=True)


def broker_figures(node: PrivateRabbitNode) -> dict[str, Any]:
    queues = rabbitmqctl("list_queues", "-q", "--no-table-headers", "name", node=node.node).strip().splitlines()
    memory: float | None = None
    try:
        status = json.loads(rabbitmqctl("status", "--formatter", "json", node=node.node))
        total = status.get("memory", {}).get("total", {})
        memory = (total.get("rss") or total.get("erlang") or total.get("allocated")) if isinstance(total, dict) \
            else total
    except (ValueError, subprocess.CalledProcessError, RuntimeError):
        pass
    return {"queues": len(queues), "memory_mb": round(memory / 2**20, 1) if memory else None}


async def run(n: int, args: argparse.Namespace) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:6]
    result: dict[str, Any] = {"hosts": n}
    node = PrivateRabbitNode()
    workdir = Path(tempfile.mkdtemp(prefix=f"scale-sim-{n}-"))
    fleet: Fleet | None = None
    rig: ServerRig | None = None
    node.start()
    try:
        with temporary_database("postgresql", str(workdir)) as db_url:
            state_dir = workdir / "state"
            settings = load_settings(overrides={"database": {"url": db_url}, "bus": {"url": node.url},
                                                "server": {"state_dir": str(state_dir)}})
            await prepare_state(settings)
            config = workdir / "server.toml"
            config.write_text(f'[database]\nurl = "{db_url}"\n[bus]\nurl = "{node.url}"\n'
                              f"[server]\nport = {free_port()}\napi_workers = {args.api_workers}\n"
                              f"rpc_workers = {args.rpc_workers}\n")
            rig = ServerRig(workdir, config, state_dir)
            server = await asyncio.to_thread(rig.start)
            admin = cloud_persona(server, "neutrino-admin")
            http = httpx.AsyncClient(base_url=server.url + "/v2.0", headers={"X-Auth-Token": admin.token}, timeout=120)
            await http.put(f"/quotas/{admin.project_id}", json={"quota": {"network": -1, "subnet": -1, "port": -1}})
            hosts = [f"sim{tag}-{i:04d}" for i in range(n)]
            progress(n, "starting the fleet")
            started = time.monotonic()
            fleet = await start_fleet(node.url, hosts, args.hosts_per_connection, args.resync_interval)
            up = await converge_after(fleet, started, 600)
            result["fleet_start_s"] = round(up, 1) if up is not None else None

            await wait_quiet(fleet)  # the agents' own registration events
            k = min(args.hosts_per_network, n)
            # Networks spanning k hosts each; one port per host on each, bound at create (as Nova binds),
            # in a group that admits SSH from anywhere (no remote group: see the default group below).
            r = await http.post("/security-groups", json={"security_group": {"name": "ssh"}})
            ssh = r.json()["security_group"]["id"]
            await http.post("/security-group-rules", json={"security_group_rule": {
                "security_group_id": ssh, "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0"}})
            nets: list[str] = []
            before = fleet.delivered()
            t0 = time.monotonic()
            for i in range(args.networks or max(8, n // k)):
                r = (await http.post("/networks", json={"network": {"name": f"sim-{i}"}})).raise_for_status()
                net = r.json()["network"]["id"]
                (await http.post("/subnets", json={"subnet": {
                    "network_id": net, "cidr": f"10.{i // 250}.{i % 250}.0/24", "ip_version": 4}})).raise_for_status()
                nets.append(net)
            await wait_quiet(fleet)
            result["events_per_network_create"] = round((fleet.delivered() - before) / len(nets), 2)
            result["network_create_s"] = round((time.monotonic() - t0) / len(nets), 4)

            progress(n, "creating ports")
            creates = 0
            before = fleet.delivered()
            sem = asyncio.Semaphore(8)

            async def port(net: str, host: str, groups: list[str] | None = None) -> None:
                body: dict[str, Any] = {"network_id": net, "binding:host_id": host, "device_owner": "compute:nova"}
                if groups is not None:
                    body["security_groups"] = groups
                async with sem:
                    r = await http.post("/ports", json={"port": body})
                    r.raise_for_status()

            jobs = []
            for i, net in enumerate(nets):
                for j in range(k):
                    jobs.append(port(net, hosts[(i * k + j) % n], [ssh]))
            await asyncio.gather(*jobs)
            creates = len(jobs)
            await wait_quiet(fleet)
            result["ports"] = creates
            result["events_per_port_create"] = round((fleet.delivered() - before) / creates, 2)
            result["hosts_per_network"] = k
            # The port that makes a network span k hosts is heard by the k-1 hosts before it (and
            # itself): the mean over a network's k creates is (k+1)/2.
            result["expected_events_per_port_create"] = (k + 1) / 2

            # Ports of the project's default group, whose rules name the group itself as remote group:
            # every host holding one hears of every other (its firewall keeps their addresses).
            d = min(n, args.default_group_ports)
            before = fleet.delivered()
            for j in range(d):
                await port(nets[j % len(nets)], hosts[(j * 7) % n])
            await wait_quiet(fleet)
            result["default_group_ports"] = d
            result["events_per_port_create_default_group"] = round((fleet.delivered() - before) / d, 2)

            before = fleet.delivered()
            for net in nets[:20]:
                await http.put(f"/networks/{net}", json={"network": {"description": "x"}})
            await wait_quiet(fleet)
            result["events_per_network_update"] = round((fleet.delivered() - before) / min(20, len(nets)), 2)
            result["events_on_all_topics"] = sum(s.to_every_host for s in fleet.stats.values())
            result["events_by_resource"] = dict(sum((s.delivered for s in fleet.stats.values()), Counter()))

            progress(n, "full sync of 100 ports")
            # A full sync of a host with 100 ports.
            big = hosts[0]
            for i in range(100):
                await port(nets[i % len(nets)], big, [ssh])
            rpc = AgentRpcClient(fleet.buses[0], big, timeout=60)
            times, size = [], 0
            for _ in range(5):
                t = time.monotonic()
                state = await rpc.sync_state("l2")
                times.append(time.monotonic() - t)
                size = len(json.dumps(state))
            result["full_sync_100_ports_ms"] = round(statistics.median(times) * 1000, 1)
            result["full_sync_100_ports_kb"] = round(size / 1024, 1)

            progress(n, "idle window")
            # Server CPU per heartbeat: an idle window of the whole fleet heartbeating.
            await asyncio.sleep(2)
            cpu0, w0 = rig.cpu_seconds(), time.monotonic()
            await asyncio.sleep(args.idle_seconds)
            cpu, window = rig.cpu_seconds() - cpu0, time.monotonic() - w0
            beats = n * window / REPORT_INTERVAL
            result["server_cpu_ms_per_heartbeat"] = round(cpu / beats * 1000, 2)
            result["server_cpu_idle_fraction"] = round(cpu / window, 3)
            result["broker"] = broker_figures(node)

            # Server restart: every host finishes a full sync after the server is back.
            progress(n, "server restart")
            # Down longer than a heartbeat interval, so that every agent notices (a shorter outage
            # that no heartbeat falls into loses no event either: nothing changed meanwhile).
            await asyncio.to_thread(rig.stop)
            await asyncio.sleep(args.outage)
            # Timed from the restart, server start-up included (before: from its first healthy answer,
            # which its RPC worker may precede: agents it told to resync would finish "too early").
            recoveries = fleet.recovery_resyncs()
            back = time.monotonic()
            await asyncio.to_thread(rig.start)
            result["server_start_s"] = round(time.monotonic() - back, 1)
            took = await converge_after(fleet, back, args.converge_limit)
            result["converge_after_server_restart_s"] = round(took, 1) if took is not None else None
            result["recovery_resyncs_server_restart"] = fleet.recovery_resyncs() - recoveries

            progress(n, "broker restart")
            # Broker restart (our private node's application; the Erlang VM stays).
            await asyncio.to_thread(node.stop_app)
            await asyncio.sleep(args.outage)
            recoveries = fleet.recovery_resyncs()
            back = time.monotonic()
            await asyncio.to_thread(node.start_app)
            result["broker_start_s"] = round(time.monotonic() - back, 1)
            took = await converge_after(fleet, back, args.converge_limit)
            result["converge_after_broker_restart_s"] = round(took, 1) if took is not None else None
            result["recovery_resyncs_broker_restart"] = fleet.recovery_resyncs() - recoveries
            result["heartbeat_timeouts"] = sum(a.heartbeat_timeouts for a in fleet.agents)
            result["broker_after"] = broker_figures(node)
            await http.aclose()
            await fleet.stop()
            fleet = None
            rig.stop()
            rig = None
    finally:
        if fleet is not None:
            await fleet.stop()
        if rig is not None:
            rig.stop()
        node.destroy()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--networks", type=int, default=0, help="default: hosts / hosts-per-network (at least 8)")
    parser.add_argument("--hosts-per-network", type=int, default=5)
    parser.add_argument("--hosts-per-connection", type=int, default=50)
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument("--rpc-workers", type=int, default=1)
    parser.add_argument("--resync-interval", type=float, default=3600.0,
                        help="periodic full resync (long: the heartbeat window measures heartbeats)")
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--converge-limit", type=float, default=180.0)
    parser.add_argument("--outage", type=float, default=35.0, help="seconds the server and the broker stay down")
    parser.add_argument("--default-group-ports", type=int, default=40)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = []
    for n in args.hosts:
        res = asyncio.run(run(n, args))
        print(json.dumps(res), flush=True)
        results.append(res)
    if args.json:
        args.json.write_text(json.dumps({"load": os.getloadavg(), "results": results}, indent=1))

if __name__ == "__main__":
    main()
