"""Two ``neutrino server`` hosts, each with API and RPC worker processes, on one PostgreSQL and one
RabbitMQ (a database and a vhost of this test's own).

32 concurrent clients spread over both hosts allocate from one /24 and one /28 (no duplicate address
or MAC; exhaustion is a clean 409); a token issued by one host works on the other; a dashboard event
stream on one host hears a change made through the other; killing the host whose process holds the
background-job lease moves the lease, and dead agents still lose their networks and routers.
"""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from neutrino.cli.allinone import prepare_state
from neutrino.config import load_settings
from tests.api.test_agent_failover import DHCP, L3, Reporter, report_once, wait_for
from tests.api.test_dashboard_http import Browserish, _read_events
from tests.fullstack.broker import shared_broker_vhost
from tests.support.databases import temporary_database
from tests.support.live_server import LiveServer, free_port
from tests.support.neutron_http import api, created, ok
from tests.support.tenants import cloud_persona

pytestmark = [pytest.mark.rabbitmq]

LEASE_SECONDS = 3


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    with shared_broker_vhost() as bus_url, \
            temporary_database("postgresql", str(tmp_path_factory.mktemp("db"))) as db_url:
        yield db_url, bus_url


def _psql(db_url: str, sql: str) -> str:
    name = db_url.rsplit("/", 1)[1]
    return subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", name, "-tAc", sql],
                          check=True, capture_output=True, text=True).stdout.strip()


def _start_host(workdir: Path, label: str, shared_config: str, state_dir: Path) -> LiveServer:
    port = free_port()
    config = workdir / f"{label}.toml"
    config.write_text(shared_config.replace("[server]\n", f"[server]\nport = {port}\n", 1))
    log_path = workdir / f"{label}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "neutrino.cli.main", "server", "--config", str(config),
                                    "--state-dir", str(state_dir)],
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return LiveServer(f"http://127.0.0.1:{port}", state_dir, state_dir / "clouds.yaml", process, log_path)


def _wait_healthy(server: LiveServer) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert server.process.poll() is None, f"server exited:\n{server.log_tail()}"
        try:
            if httpx.get(server.url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"server not healthy:\n{server.log_tail()}")


def _kill_host(server: LiveServer) -> None:
    try:
        os.killpg(server.process.pid, signal.SIGKILL)  # the supervisor and all of its workers
    except ProcessLookupError:
        pass
    server.process.wait()


def _lease_host(db_url: str, hosts: dict[str, LiveServer]) -> str | None:
    """The label of the server host whose worker holds the background-job lease, if unexpired."""
    row = _psql(db_url, "SELECT holder FROM server_leases WHERE name = 'background-jobs' "
                        "AND expires_at > extract(epoch from now())")
    if not row:
        return None
    pid = int(row.split(":")[1])
    try:
        group = os.getpgid(pid)
    except ProcessLookupError:
        return None
    return next((label for label, s in hosts.items() if s.process.pid == group), None)


@pytest.fixture(scope="module")
def two_hosts(backends: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    db_url, bus_url = backends
    workdir = tmp_path_factory.mktemp("hosts")
    state_dir = workdir / "state"
    shared = (f'[database]\nurl = "{db_url}"\n[bus]\nurl = "{bus_url}"\n'
              f"[server]\napi_workers = 2\nrpc_workers = 1\nbackground_lease_seconds = {LEASE_SECONDS}\n"
              "allow_automatic_l3agent_failover = true\n"
              "[agent]\nagent_down_time_seconds = 2\n")
    settings = load_settings(overrides={"database": {"url": db_url}, "bus": {"url": bus_url},
                                        "server": {"state_dir": str(state_dir)}})
    asyncio.run(prepare_state(settings))  # schema, identity bootstrap and the admin's clouds.yaml
    hosts = {label: _start_host(workdir, label, shared, state_dir) for label in ("a", "b")}
    try:
        for server in hosts.values():
            _wait_healthy(server)
        yield {"db_url": db_url, "bus_url": bus_url, "hosts": hosts}
    finally:
        for server in hosts.values():
            _kill_host(server)


def test_concurrent_creates_over_both_hosts_never_share_an_address(two_hosts: dict[str, Any]) -> None:
    a, b = two_hosts["hosts"]["a"], two_hosts["hosts"]["b"]
    admin = cloud_persona(a, "neutrino-admin")  # a token issued by host a
    tag = uuid.uuid4().hex[:6]
    with api(a, admin) as on_a, api(b, admin) as on_b:
        assert ok(on_b.get("/networks"), "networks") is not None  # ... is valid on host b
        nets = {}
        for cidr in ("10.70.0.0/24", "10.71.0.0/28"):
            net = created(on_a.post("/networks", json={"network": {"name": f"w-{tag}-{cidr}"}}), "network")
            created(on_b.post("/subnets", json={"subnet": {"network_id": net["id"], "cidr": cidr,
                                                           "ip_version": 4}}), "subnet")
            nets[cidr] = net["id"]

    clients = 32
    per_client = {"10.70.0.0/24": 4, "10.71.0.0/28": 1}

    def work(index: int) -> list[tuple[str, int, Any]]:
        server = a if index % 2 == 0 else b
        results = []
        with api(server, admin) as http:
            for cidr, count in per_client.items():
                for _ in range(count):
                    resp = http.post("/ports", json={"port": {"network_id": nets[cidr]}})
                    results.append((cidr, resp.status_code, resp.json()))
        return results

    with ThreadPoolExecutor(clients) as pool:
        outcomes = [r for batch in pool.map(work, range(clients)) for r in batch]

    ports = [body["port"] for _, status, body in outcomes if status == 201]
    failures = [(cidr, status, body) for cidr, status, body in outcomes if status != 201]
    # The /24 never runs out (128 of 253); the /28 has 13 addresses for 32 creates.
    assert len([p for p in ports if p["network_id"] == nets["10.70.0.0/24"]]) == 128, failures[:3]
    assert len([p for p in ports if p["network_id"] == nets["10.71.0.0/28"]]) == 13, failures[:3]
    assert len(failures) == 19
    for cidr, status, body in failures:
        assert (cidr, status, body["NeutronError"]["type"]) == \
            ("10.71.0.0/28", 409, "IpAddressGenerationFailure"), body
    addresses = [ip["ip_address"] for p in ports for ip in p["fixed_ips"]]
    assert len(addresses) == len(set(addresses)) == 141
    macs = [p["mac_address"] for p in ports]
    assert len(macs) == len(set(macs))
    with api(b, admin) as on_b:
        listed = ok(on_b.get("/ports", params={"network_id": list(nets.values())}), "ports")
        assert sorted(p["id"] for p in listed) == sorted(p["id"] for p in ports)
    # Whichever API worker answers the scrape, it counts every worker's requests of its host: each
    # host took 16 clients' 5 port creates.
    for server in (a, b):
        assert _port_posts_counted(server) == 16 * 5


def _port_posts_counted(server: LiveServer) -> float:
    text = httpx.get(server.url + "/metrics", timeout=30).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("neutrino_api_requests_total{") and 'method="POST"' in line \
                and 'resource="ports"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_an_event_stream_on_one_host_hears_changes_made_through_the_other(two_hosts: dict[str, Any]) -> None:
    """Each stream is served by whichever API worker accepted it: every one must hear the change."""
    a, b = two_hosts["hosts"]["a"], two_hosts["hosts"]["b"]
    admin = cloud_persona(a, "neutrino-admin")
    auth = a.cloud("neutrino-admin")["auth"]
    stop = threading.Event()
    streams = []
    try:
        for _ in range(4):
            viewer = Browserish(b)
            assert viewer.login(auth["username"], auth["password"], auth["project_name"]).status_code == 200
            received: queue.Queue = queue.Queue()
            threading.Thread(target=_read_events, args=(viewer.http, received, stop), daemon=True).start()
            assert received.get(timeout=60)[0] == "ready"
            streams.append((viewer, received))
        with api(a, admin) as on_a:
            net = created(on_a.post("/networks", json={"network": {"name": f"seen-{uuid.uuid4().hex[:6]}"}}),
                          "network")
        for _, received in streams:
            seen: list[dict] = []
            while not any(c["id"] == net["id"] for c in seen):
                kind, data = received.get(timeout=60)
                if kind == "changes":
                    seen.extend(data)
    finally:
        stop.set()
        for viewer, _ in streams:
            viewer.close()


def test_killing_the_lease_holder_moves_the_lease_and_failover_goes_on(two_hosts: dict[str, Any]) -> None:
    db_url, bus_url, hosts = two_hosts["db_url"], two_hosts["bus_url"], two_hosts["hosts"]
    wait_for("a lease holder", lambda: _lease_host(db_url, hosts) is not None, True)
    holder = _lease_host(db_url, hosts)
    assert holder is not None
    survivor = hosts["b" if holder == "a" else "a"]
    tag = uuid.uuid4().hex[:6]
    dying_dhcp, dying_l3, live_dhcp, live_l3 = (f"{kind}-{tag}" for kind in ("dhcp-a", "l3-c", "dhcp-b", "l3-d"))
    admin = cloud_persona(survivor, "neutrino-admin")
    with api(survivor, admin) as adm:
        report_once(bus_url, [(dying_dhcp, DHCP), (dying_l3, L3)])
        agent = {x["host"]: x["id"] for x in ok(adm.get("/agents"), "agents")}
        net = created(adm.post("/networks", json={"network": {"name": f"lease-{tag}"}}), "network")
        assert adm.post(f"/agents/{agent[dying_dhcp]}/dhcp-networks",
                        json={"network_id": net["id"]}).status_code == 201
        created(adm.post("/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.72.0.0/24",
                                                      "ip_version": 4}}), "subnet")
        router = created(adm.post("/routers", json={"router": {"name": f"lease-{tag}"}}), "router")
        assert adm.post(f"/agents/{agent[dying_l3]}/l3-routers",
                        json={"router_id": router["id"]}).status_code == 201

        _kill_host(hosts[holder])
        survivor_label = "b" if holder == "a" else "a"
        wait_for("the lease on the surviving host", lambda: _lease_host(db_url, hosts), survivor_label)

        def dhcp_hosts() -> list[str]:
            return [x["host"] for x in ok(adm.get(f"/networks/{net['id']}/dhcp-agents"), "agents")]

        def l3_hosts() -> list[str]:
            return [x["host"] for x in ok(adm.get(f"/routers/{router['id']}/l3-agents"), "agents")]

        with Reporter(bus_url, [(live_dhcp, DHCP), (live_l3, L3)]) as reporter:
            wait_for("the network's DHCP agents", dhcp_hosts, [live_dhcp])
            wait_for("the router's L3 agents", l3_hosts, [live_l3])
            assert not reporter.errors, reporter.errors
            alive = {x["host"]: x["alive"] for x in ok(adm.get("/agents"), "agents")}
            assert (alive[dying_dhcp], alive[dying_l3], alive[live_dhcp]) == (False, False, True)
