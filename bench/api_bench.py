"""Networking API benchmark: latency and throughput of the calls Nova and users make most.

Runs against any OpenStack Networking API on this machine (Neutrino or upstream Neutron), or
starts a throw-away Neutrino itself::

    .venv/bin/python bench/api_bench.py --start-server sqlite
    .venv/bin/python bench/api_bench.py --start-server postgresql --ports 10000
    .venv/bin/python bench/api_bench.py --cloud devstack-admin --clouds-yaml ~/clouds.yaml --server-pid 1234
    .venv/bin/python bench/api_bench.py --url http://127.0.0.1:9696 --token "$TOKEN"

    .venv/bin/python bench/api_bench.py --start-server postgresql --only l3,sg    # phases: nets,ports,l3,sg

It measures (operations per second and p50/p95/p99 latency, one client at a time and with
``--concurrency`` clients where that is how the call is used):

- ``nets``: network and subnet create;
- ``ports``: port create, port list at 1k and at ``--ports`` ports (all, by ``network_id``, by
  ``device_id``), port show, update and delete;
- ``l3``: on an external network the run makes (admin), router create, add interface (by subnet),
  set external gateway, floating IP create, associate with a port, list, disassociate, delete,
  router interface removal and router delete;
- ``sg``: security group rule create up to ``--sg-rules`` rules over ``--sg-groups`` groups, rule list
  (all, by ``security_group_id``), security group list, rule show and delete, group delete.

The client is a minimal HTTP/1.1
keep-alive client on asyncio streams (not openstacksdk, whose own CPU cost would dominate on a
small machine); its CPU time is reported separately so it can be told apart from the server's.
With ``--server-pid`` (automatic with ``--start-server``) the server's CPU time per phase and its
resident memory are read from ``/proc``.

It talks only to loopback addresses, cleans up everything it created (also on failure or Ctrl-C),
restores any quota it raised, and stops by itself after ``--timeout`` seconds at the latest.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import ipaddress
import json
import math
import os
import platform
import random
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import orjson
import yaml

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
NAME_PREFIX = "apibench"

# ---- a small HTTP/1.1 keep-alive client ---------------------------------------------------------


class HttpError(Exception):
    """A response with an unexpected status; carries the body so the report can say why."""

    def __init__(self, method: str, path: str, status: int, body: bytes) -> None:
        super().__init__(f"{method} {path} -> {status}: {body[:300].decode(errors='replace')}")
        self.status = status


def require_loopback(url: str) -> tuple[str, int, str]:
    """(host, port, base path) of ``url``; refuses anything that is not this machine's loopback."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise SystemExit(f"api_bench: only plain http:// on loopback is supported, not {url!r}")
    host = parts.hostname or ""
    if host.lower() not in LOOPBACK_NAMES:
        try:
            if not ipaddress.ip_address(host).is_loopback:
                raise ValueError(host)
        except ValueError:
            raise SystemExit(f"api_bench: refusing to talk to {host!r}: the benchmark only talks to "
                             "127.0.0.1 (loopback)") from None
    return host, parts.port or 80, parts.path.rstrip("/")


class Connection:
    """One persistent HTTP/1.1 connection; requests on it are strictly sequential."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, method: str, path: str, headers: dict[str, str],
                      body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
        for attempt in (1, 2):
            fresh = self.writer is None
            if fresh:
                await self._connect()
            try:
                return await self._exchange(method, path, headers, body)
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                # A kept-alive connection the server closed meanwhile: retry once on a new one.
                if fresh or attempt == 2:
                    raise
            except BaseException:
                # Interrupted mid-exchange (timeout, Ctrl-C): the response is still on its way, so
                # this connection cannot carry the next request (cleanup's).
                self.close()
                raise
        raise AssertionError("unreachable")

    async def _exchange(self, method: str, path: str, headers: dict[str, str],
                        body: bytes | None) -> tuple[int, dict[str, str], bytes]:
        assert self.reader is not None and self.writer is not None
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Connection: keep-alive"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        response_headers: dict[str, str] = {}
        for line in header_lines:
            if line:
                key, _, value = line.partition(":")
                response_headers[key.strip().lower()] = value.strip()
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            payload = b""
        elif "content-length" in response_headers:
            payload = await self.reader.readexactly(int(response_headers["content-length"]))
        elif response_headers.get("transfer-encoding", "").lower() == "chunked":
            payload = await self._read_chunked()
        else:
            payload = await self.reader.read()
            self.close()
            return status, response_headers, payload
        if response_headers.get("connection", "").lower() == "close":
            self.close()
        return status, response_headers, payload

    async def _read_chunked(self) -> bytes:
        assert self.reader is not None
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                while (await self.reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)


class Api:
    """The Networking API at one endpoint, as one authenticated user, over one connection."""

    def __init__(self, endpoint: str, token: str) -> None:
        self.host, self.port, self.base = require_loopback(endpoint)
        self.endpoint = endpoint
        self.token = token
        self.connection = Connection(self.host, self.port)

    def clone(self) -> Api:
        """Another client for the same endpoint and user, with a connection of its own."""
        return Api(self.endpoint, self.token)

    def close(self) -> None:
        self.connection.close()

    async def call(self, method: str, path: str, body: Any = None, expect: Sequence[int] = (200,)) -> Any:
        headers = {"X-Auth-Token": self.token, "Accept": "application/json"}
        payload = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            payload = orjson.dumps(body)
        full = self.base + path
        status, _, data = await self.connection.request(method, full, headers, payload)
        if status not in expect:
            raise HttpError(method, full, status, data)
        return orjson.loads(data) if data else None

    async def create(self, resource: str, body: dict[str, Any]) -> dict[str, Any]:
        return (await self.call("POST", collection(resource), {resource: body}, expect=(201,)))[resource]

    async def update(self, resource: str, obj_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return (await self.call("PUT", f"{collection(resource)}/{obj_id}", {resource: body}))[resource]

    async def delete(self, resource: str, obj_id: str, missing_ok: bool = False) -> None:
        await self.call("DELETE", f"{collection(resource)}/{obj_id}", expect=(204, 404) if missing_ok else (204,))


def collection(resource: str) -> str:
    """The collection URL of a resource (``security_group`` -> ``/v2.0/security-groups``)."""
    return "/v2.0/" + resource.replace("_", "-") + "s"


# ---- identity -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    """What the benchmark needs to know about its user: a token, the endpoint, the project."""

    endpoint: str
    token: str
    project_id: str | None


async def password_session(cloud: dict[str, Any]) -> Session:
    """Log in with a clouds.yaml password cloud; the network endpoint comes from the catalog."""
    auth = cloud["auth"]
    auth_url = auth["auth_url"].rstrip("/")
    if not auth_url.endswith("/v3"):
        auth_url += "/v3"
    host, port, base = require_loopback(auth_url)
    user: dict[str, Any] = {"name": auth["username"], "password": auth["password"],
                            "domain": {"name": auth.get("user_domain_name", "Default")}}
    scope = {"project": {"name": auth["project_name"],
                         "domain": {"name": auth.get("project_domain_name", "Default")}}}
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": user}}, "scope": scope}}
    conn = Connection(host, port)
    try:
        status, headers, data = await conn.request(
            "POST", base + "/auth/tokens", {"Content-Type": "application/json"}, orjson.dumps(body))
    finally:
        conn.close()
    if status != 201:
        raise SystemExit(f"api_bench: login failed ({status}): {data[:300].decode(errors='replace')}")
    token = orjson.loads(data)["token"]
    interface = cloud.get("interface", "public").removesuffix("URL")
    region = cloud.get("region_name")
    for service in token.get("catalog", []):
        if service["type"] != "network":
            continue
        for ep in service["endpoints"]:
            if ep["interface"] == interface and (not region or ep.get("region_id", ep.get("region")) == region):
                return Session(ep["url"], headers["x-subject-token"], token.get("project", {}).get("id"))
    raise SystemExit("api_bench: the catalog has no network endpoint for this cloud")


def load_cloud(clouds_yaml: Path, name: str) -> dict[str, Any]:
    clouds = (yaml.safe_load(clouds_yaml.read_text()) or {}).get("clouds") or {}
    if name not in clouds:
        raise SystemExit(f"api_bench: cloud {name!r} not in {clouds_yaml} (have: {', '.join(clouds)})")
    return clouds[name]


# ---- measuring ---------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending sequence (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class ProcessSample:
    """CPU seconds used so far and current/peak resident memory of one process."""

    cpu_seconds: float
    rss_mb: float
    peak_rss_mb: float


def sample_process(pid: int) -> ProcessSample | None:
    """Read ``/proc/PID/stat`` (utime+stime) and ``/proc/PID/status`` (VmRSS, VmHWM)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # the command name may contain spaces
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14 and 15 of stat)
    kb = {line.split(":")[0]: int(line.split()[1]) for line in status.splitlines()
          if line.startswith(("VmRSS:", "VmHWM:"))}
    return ProcessSample(cpu, kb.get("VmRSS", 0) / 1024, kb.get("VmHWM", 0) / 1024)


def client_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Result:
    """One measured operation: latency percentiles, throughput and who spent the CPU."""

    name: str
    count: int
    concurrency: int
    wall_seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    ops_per_second: float
    client_cpu_ms_per_op: float
    server_cpu_ms_per_op: float | None
    server_rss_mb: float | None
    note: str = ""


@dataclass
class Recorder:
    server_pid: int | None
    results: list[Result] = field(default_factory=list)

    async def measure(self, name: str, operations: Sequence[Callable[[Api], Awaitable[Any]]], clients: Sequence[Api],
                      note: str = "", budget_seconds: float | None = None) -> Result:
        """Run ``operations`` over ``clients`` (each client one at a time, all clients at once).

        With ``budget_seconds``, no operation starts once that much time has passed (at least one
        runs), so a slow server cannot make the run take hours.
        """
        latencies: list[float] = []
        queue = list(reversed(operations))
        deadline = time.perf_counter() + budget_seconds if budget_seconds else None

        async def worker(api: Api) -> None:
            while queue:
                if deadline is not None and latencies and time.perf_counter() > deadline:
                    return
                op = queue.pop()
                start = time.perf_counter()
                await op(api)
                latencies.append(time.perf_counter() - start)

        server_before = sample_process(self.server_pid) if self.server_pid else None
        cpu_before = client_cpu_seconds()
        start = time.perf_counter()
        await asyncio.gather(*(worker(api) for api in clients))
        wall = time.perf_counter() - start
        client_cpu = client_cpu_seconds() - cpu_before
        server_after = sample_process(self.server_pid) if self.server_pid else None
        latencies.sort()
        count = len(latencies)
        server_cpu = None
        if server_before and server_after:
            server_cpu = (server_after.cpu_seconds - server_before.cpu_seconds) * 1000 / max(count, 1)
        result = Result(name, count, len(clients), wall, percentile(latencies, 50) * 1000,
                        percentile(latencies, 95) * 1000, percentile(latencies, 99) * 1000,
                        count / wall if wall else 0.0, client_cpu * 1000 / max(count, 1), server_cpu,
                        server_after.rss_mb if server_after else None, note)
        self.results.append(result)
        print(format_row(result), flush=True)
        return result


def format_header() -> str:
    return (f"{'operation':<42} {'n':>6} {'cl':>3} {'ops/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
            f"{'cli cpu':>8} {'srv cpu':>8} {'srv rss':>8}")


def format_row(r: Result) -> str:
    srv_cpu = f"{r.server_cpu_ms_per_op:8.2f}" if r.server_cpu_ms_per_op is not None else f"{'-':>8}"
    rss = f"{r.server_rss_mb:7.0f}M" if r.server_rss_mb is not None else f"{'-':>8}"
    return (f"{r.name:<42} {r.count:>6} {r.concurrency:>3} {r.ops_per_second:>8.1f} {r.p50_ms:>8.2f} "
            f"{r.p95_ms:>8.2f} {r.p99_ms:>8.2f} {r.client_cpu_ms_per_op:>8.2f} {srv_cpu} {rss}")


# ---- the workload ------------------------------------------------------------------------------

PHASES = ("nets", "ports", "l3", "sg")
PHASE_HELP = ("nets: network and subnet create; ports: port create/list/show/update/delete; "
              "l3: router create, add interface, set gateway, floating IP create/associate/disassociate/list; "
              "sg: security group rule create and list")


def subnet_for(ports: int, base: str = "10.128.0.0") -> str:
    """An IPv4 CIDR at ``base`` large enough for ``ports`` addresses plus gateway and broadcast."""
    prefix = max(9, min(24, 32 - math.ceil(math.log2(ports + 16))))
    return f"{base}/{prefix}"


@dataclass
class Workload:
    """Everything the run created, so cleanup can remove exactly that (in dependency order)."""

    run_id: str
    networks: list[str] = field(default_factory=list)
    subnets: list[str] = field(default_factory=list)
    ports: dict[str, str] = field(default_factory=dict)  # port id -> its device_id
    routers: list[str] = field(default_factory=list)
    interfaces: list[tuple[str, str]] = field(default_factory=list)  # (router id, subnet id)
    floatingips: list[str] = field(default_factory=list)
    security_groups: list[str] = field(default_factory=list)
    quota_restore: dict[str, int] = field(default_factory=dict)


async def raise_quotas(api: Api, project_id: str | None, needed: dict[str, int], work: Workload) -> None:
    """Lift the project's limits that are below ``needed`` (remembering the old ones for cleanup)."""
    if not project_id:
        print("note: project unknown (token given directly, no --project-id); quotas are left as they are",
              flush=True)
        return
    try:
        quota = (await api.call("GET", f"/v2.0/quotas/{project_id}"))["quota"]
    except HttpError as exc:
        print(f"note: cannot read quotas ({exc.status}); they are left as they are", flush=True)
        return
    wanted = {res: -1 for res, count in needed.items() if 0 <= quota.get(res, -1) < count}
    if not wanted:
        return
    try:
        await api.call("PUT", f"/v2.0/quotas/{project_id}", {"quota": wanted})
    except HttpError as exc:
        raise SystemExit(f"api_bench: the quota ({quota}) is below what the run needs ({needed}) and cannot be "
                         f"raised ({exc.status}); use an admin cloud or smaller counts") from None
    work.quota_restore = {res: quota[res] for res in wanted}


def quota_needs(args: argparse.Namespace) -> dict[str, int]:
    """What the selected phases create at most, per quota resource."""
    needs: dict[str, int] = {}

    def add(resource: str, count: int) -> None:
        needs[resource] = needs.get(resource, 0) + count

    if "nets" in args.phases:
        add("network", args.network_samples)
        add("subnet", args.network_samples)
    if "ports" in args.phases:
        add("network", 1)
        add("subnet", 1)
        add("port", args.ports + args.samples + 10)
    if "l3" in args.phases:
        add("network", args.routers + 2)
        add("subnet", args.routers + 2)
        add("port", args.fips + 10)
        add("router", args.routers)
        add("floatingip", args.fips)
    if "sg" in args.phases:
        add("security_group", args.sg_groups + 1)
        add("security_group_rule", args.sg_rules + 4 * args.sg_groups + 10)
    return needs


async def _drain(clients: Sequence[Api], items: list[Any], op: Callable[[Api, Any], Awaitable[Any]]) -> None:
    """Run ``op`` on every item, each client taking the next one (the list is emptied)."""
    async def worker(client: Api) -> None:
        while items:
            await op(client, items.pop())

    await asyncio.gather(*(worker(c) for c in clients))


async def cleanup(api: Api, work: Workload, project_id: str | None) -> None:
    """Delete what the run created (8 at a time), dependents first, then put the quota back."""
    clients = [api.clone() for _ in range(8)]

    async def remove_interface(client: Api, pair: tuple[str, str]) -> None:
        await client.call("PUT", f"/v2.0/routers/{pair[0]}/remove_router_interface", {"subnet_id": pair[1]},
                          expect=(200, 404))

    try:
        await _drain(clients, work.floatingips, lambda c, i: c.delete("floatingip", i, missing_ok=True))
        await _drain(clients, work.interfaces, remove_interface)
        await _drain(clients, work.routers, lambda c, i: c.delete("router", i, missing_ok=True))
        ports = list(work.ports)
        work.ports.clear()
        await _drain(clients, ports, lambda c, i: c.delete("port", i, missing_ok=True))
        await _drain(clients, work.subnets, lambda c, i: c.delete("subnet", i, missing_ok=True))
        await _drain(clients, work.networks, lambda c, i: c.delete("network", i, missing_ok=True))
        # A group's rules go with it.
        await _drain(clients, work.security_groups, lambda c, i: c.delete("security_group", i, missing_ok=True))
        if work.quota_restore and project_id:
            await api.call("PUT", f"/v2.0/quotas/{project_id}", {"quota": work.quota_restore})
        left = await leftovers(api, f"{NAME_PREFIX}-{work.run_id}")
        if left:
            print(f"api_bench: WARNING: cleanup left {left} behind", file=sys.stderr, flush=True)
    finally:
        for c in clients:
            c.close()


async def leftovers(api: Api, prefix: str) -> dict[str, int]:
    """Objects named after this run that still exist (everything the run makes carries its name,
    or lives on a network that does)."""
    left = {}
    for kind in ("network", "port", "router", "security_group"):
        path = collection(kind)
        items = (await api.call("GET", f"{path}?fields=id&fields=name"))[path.rsplit("/", 1)[1].replace("-", "_")]
        count = sum(1 for item in items if str(item.get("name", "")).startswith(prefix))
        if count:
            left[resource] = count
    return left


async def no_maintenance() -> None:
    """Nothing to do between phases on a server whose database is not ours."""


@dataclass
class Run:
    """What every phase works with: the clients, the record, the run's objects and options."""

    api: Api
    clients: list[Api]
    work: Workload
    recorder: Recorder
    args: argparse.Namespace
    rng: random.Random
    maintain: Callable[[], Awaitable[None]]

    @property
    def name(self) -> str:
        return f"{NAME_PREFIX}-{self.work.run_id}"

    @property
    def one(self) -> list[Api]:
        return [self.api]

    @property
    def cl(self) -> str:
        return f"{len(self.clients)} clients"

    async def timed(self, label: str, ops: Sequence[Callable[[Api], Awaitable[Any]]], note: str = "") -> None:
        """Split ``ops``: the first half one at a time (within the phase budget), the rest concurrently."""
        half = (len(ops) + 1) // 2
        done = await self.recorder.measure(f"{label} (sequential)", ops[:half], self.one, note=note,
                                           budget_seconds=self.args.phase_seconds)
        await self.recorder.measure(f"{label} ({self.cl})", ops[done.count:], self.clients, note=note)


async def run_workload(api: Api, session: Session, args: argparse.Namespace, recorder: Recorder,
                       maintain: Callable[[], Awaitable[None]] = no_maintenance) -> None:
    work = Workload(uuid.uuid4().hex[:8])
    await raise_quotas(api, session.project_id, quota_needs(args), work)
    clients = [api.clone() for _ in range(args.concurrency)]
    run = Run(api, clients, work, recorder, args, random.Random(args.seed), maintain)
    try:
        for phase, body in (("nets", nets_phase), ("ports", ports_phase), ("l3", l3_phase), ("sg", sg_phase)):
            if phase in args.phases:
                await body(run)
    finally:
        print("cleaning up ...", flush=True)
        await cleanup(api, work, session.project_id)
        for c in clients:
            c.close()


async def nets_phase(run: Run) -> None:
    """Network and subnet create, one at a time."""
    args, work, name = run.args, run.work, run.name
    created: list[str] = []

    async def create_network(client: Api, index: int) -> None:
        net = await client.create("network", {"name": f"{name}-net-{index}"})
        work.networks.append(net["id"])
        created.append(net["id"])

    await run.recorder.measure("network create", [lambda c, i=i: create_network(c, i)
                                                  for i in range(args.network_samples)], run.one,
                               budget_seconds=args.phase_seconds)

    async def create_subnet(client: Api, net_id: str, index: int) -> None:
        sub = await client.create("subnet", {"network_id": net_id, "ip_version": 4, "name": f"{name}-sub-{index}",
                                             "cidr": f"10.{index // 256}.{index % 256}.0/24"})
        work.subnets.append(sub["id"])

    await run.recorder.measure("subnet create", [lambda c, n=n, i=i: create_subnet(c, n, i)
                                                 for i, n in enumerate(created)], run.one,
                               budget_seconds=args.phase_seconds)


async def ports_phase(run: Run) -> None:
    """Port create (sequential, concurrent), list at 1k and ``--ports``, show, update, delete."""
    api, args, work, name, recorder = run.api, run.args, run.work, run.name, run.recorder
    one, clients, budget, total = run.one, run.clients, args.phase_seconds, args.ports
    net = await api.create("network", {"name": f"{name}-ports"})
    work.networks.append(net["id"])
    sub = await api.create("subnet", {"network_id": net["id"], "ip_version": 4, "cidr": subnet_for(total + args.samples),
                                      "name": f"{name}-ports"})
    work.subnets.append(sub["id"])
    net_id = net["id"]
    counter = iter(range(10 ** 9))
    mine: dict[str, str] = {}  # this phase's ports (the l3 phase has its own)

    async def create_port(client: Api) -> None:
        index = next(counter)
        device = str(uuid.uuid4())
        port = await client.create("port", {"network_id": net_id, "name": f"{name}-port-{index}",
                                            "device_id": device, "device_owner": "compute:bench"})
        work.ports[port["id"]] = device
        mine[port["id"]] = device

    def creates(count: int) -> list[Callable[[Api], Awaitable[Any]]]:
        return [create_port] * max(count, 0)

    small = min(1000, total)
    sequential = min(args.samples, small)
    await recorder.measure("port create (sequential)", creates(sequential), one, note="empty network",
                           budget_seconds=budget)
    await recorder.measure(f"port create ({run.cl})", creates(small - len(mine)), clients,
                           note=f"up to {small} ports")
    await run.maintain()
    await list_phase(run, net_id, mine, small)
    if total > small:
        await recorder.measure(f"port create ({run.cl})", creates(total - len(mine)), clients,
                               note=f"{small} -> {total} ports")
        await run.maintain()
        await list_phase(run, net_id, mine, total)
    await recorder.measure("port create (sequential)", creates(args.samples), one, note=f"at {len(mine)} ports",
                           budget_seconds=budget)
    at = f"at {len(mine)} ports"
    picks = run.rng.sample(list(mine), min(args.samples, len(mine)))

    await recorder.measure("port show", [lambda c, p=p: c.call("GET", f"/v2.0/ports/{p}") for p in picks], one,
                           note=at, budget_seconds=budget)
    await recorder.measure("port update (name)",
                           [lambda c, p=p, i=i: c.update("port", p, {"name": f"{name}-u{i}"})
                            for i, p in enumerate(picks)], one, note=at, budget_seconds=budget)

    async def delete_port(client: Api, port_id: str) -> None:
        await client.delete("port", port_id)
        del work.ports[port_id]
        del mine[port_id]

    await recorder.measure("port delete (sequential)", [lambda c, p=p: delete_port(c, p) for p in picks], one,
                           note=at, budget_seconds=budget)
    rest = list(mine)
    await recorder.measure(f"port delete ({run.cl})", [lambda c, p=p: delete_port(c, p) for p in rest], clients,
                           note=f"all {len(rest)} remaining")


async def list_phase(run: Run, net_id: str, ports: dict[str, str], size: int) -> None:
    """Port list at the current size: everything visible, one network's, and one device's ports."""
    got: dict[str, int] = {}
    repeats, budget = run.args.list_repeats, run.args.phase_seconds

    async def listing(client: Api, query: str, label: str) -> None:
        got[label] = len((await client.call("GET", "/v2.0/ports" + query))["ports"])

    await run.recorder.measure(f"port list all ({size})", [lambda c: listing(c, "", "all")] * repeats, run.one,
                               budget_seconds=budget)
    await run.recorder.measure(f"port list network_id ({size})",
                               [lambda c: listing(c, f"?network_id={net_id}", "net")] * repeats, run.one,
                               budget_seconds=budget)
    devices = run.rng.sample(list(ports.values()), min(repeats * 5, len(ports)))
    await run.recorder.measure(f"port list device_id ({size})",
                               [lambda c, d=d: listing(c, f"?device_id={quote(d)}", "dev") for d in devices],
                               run.one, budget_seconds=budget)
    if got.get("net") != len(ports) or got.get("dev") != 1:
        raise SystemExit(f"api_bench: listing returned unexpected counts {got} for {len(ports)} ports")


async def _make_network(run: Run, client: Api, label: str, cidr: str, **extra: Any) -> tuple[str, str]:
    """An untimed network with one IPv4 subnet; returns (network id, subnet id)."""
    net = await client.create("network", {"name": f"{run.name}-{label}", **extra})
    run.work.networks.append(net["id"])
    sub = await client.create("subnet", {"network_id": net["id"], "ip_version": 4, "cidr": cidr,
                                         "name": f"{run.name}-{label}"})
    run.work.subnets.append(sub["id"])
    return net["id"], sub["id"]


async def l3_phase(run: Run) -> None:
    """Routers (create, add interface by subnet, set external gateway) and floating IPs (create,
    associate with a port, disassociate, list, delete) on an external network made for the run."""
    api, args, work, name, recorder = run.api, run.args, run.work, run.name, run.recorder
    routers, fips = max(args.routers, 1), max(args.fips, 2)
    # Untimed set-up: the external network (admin only) sized for every gateway and floating IP,
    # one internal subnet per router, and a network with one port per floating IP.
    ext_net, _ = await _make_network(run, api, "ext", subnet_for(routers + fips, "100.64.0.0"),
                                     **{"router:external": True})
    internal: list[str] = [""] * routers

    async def make_internal(client: Api, index: int) -> None:
        internal[index] = (await _make_network(run, client, f"int-{index}",
                                               f"10.{64 + index // 256}.{index % 256}.0/24"))[1]

    await _drain(run.clients, list(range(routers)), make_internal)
    fip_net, fip_sub = await _make_network(run, api, "fip-int", subnet_for(fips, "10.32.0.0"))
    targets: list[str] = []

    async def make_ports(client: Api, count: int) -> None:
        body = [{"network_id": fip_net, "name": f"{name}-vm", "device_id": str(uuid.uuid4()),
                 "device_owner": "compute:bench"} for _ in range(count)]
        for port in (await client.call("POST", "/v2.0/ports", {"ports": body}, expect=(201,)))["ports"]:
            work.ports[port["id"]] = port["device_id"]
            targets.append(port["id"])

    await _drain(run.clients, [min(100, fips - start) for start in range(0, fips, 100)], make_ports)

    made: list[str] = []

    async def create_router(client: Api, index: int) -> None:
        router = await client.create("router", {"name": f"{name}-router-{index}"})
        work.routers.append(router["id"])
        made.append(router["id"])

    await run.timed("router create", [lambda c, i=i: create_router(c, i) for i in range(routers)])
    await run.maintain()

    async def add_interface(client: Api, router_id: str, subnet_id: str) -> None:
        await client.call("PUT", f"/v2.0/routers/{router_id}/add_router_interface", {"subnet_id": subnet_id})
        work.interfaces.append((router_id, subnet_id))

    await run.timed("router add interface (subnet)",
                    [lambda c, r=r, s=s: add_interface(c, r, s) for r, s in zip(made, internal, strict=False)])

    async def set_gateway(client: Api, router_id: str) -> None:
        router = await client.update("router", router_id, {"external_gateway_info": {"network_id": ext_net}})
        if not (router.get("external_gateway_info") or {}).get("external_fixed_ips"):
            raise SystemExit(f"api_bench: router {router_id} got no gateway address: {router}")

    await run.timed("router set external gateway", [lambda c, r=r: set_gateway(c, r) for r in made])
    # The floating IPs' router: the first one also gets the floating IPs' ports' subnet.
    await add_interface(api, made[0], fip_sub)
    await run.maintain()

    async def create_fip(client: Api) -> None:
        fip = await client.create("floatingip", {"floating_network_id": ext_net})
        work.floatingips.append(fip["id"])

    await run.timed("floating IP create", [create_fip] * fips)
    await run.maintain()
    pairs = list(zip(work.floatingips, targets, strict=False))

    async def associate(client: Api, fip_id: str, port_id: str | None) -> None:
        fip = await client.update("floatingip", fip_id, {"port_id": port_id})
        if fip["port_id"] != port_id or (port_id and fip["router_id"] != made[0]):
            raise SystemExit(f"api_bench: floating IP {fip_id} not (dis)associated as asked: {fip}")

    at = f"{len(pairs)} floating IPs"
    await run.timed("floating IP associate", [lambda c, f=f, p=p: associate(c, f, p) for f, p in pairs], note=at)
    repeats = args.list_repeats
    count: dict[str, int] = {}

    async def list_fips(client: Api, query: str) -> None:
        count[query] = len((await client.call("GET", "/v2.0/floatingips" + query))["floatingips"])

    await recorder.measure(f"floating IP list ({len(work.floatingips)})", [lambda c: list_fips(c, "")] * repeats,
                           run.one, budget_seconds=args.phase_seconds)
    picks = run.rng.sample(targets[:len(pairs)], min(repeats * 5, len(pairs)))
    await recorder.measure("floating IP list port_id", [lambda c, p=p: list_fips(c, f"?port_id={p}") for p in picks],
                           run.one, note=at, budget_seconds=args.phase_seconds)
    if count.get("") != len(work.floatingips) or count.get(f"?port_id={picks[-1]}") != 1:
        raise SystemExit(f"api_bench: floating IP lists returned unexpected counts {count}")
    await run.timed("floating IP disassociate", [lambda c, f=f: associate(c, f, None) for f, _ in pairs], note=at)

    async def delete_fip(client: Api, fip_id: str) -> None:
        await client.delete("floatingip", fip_id)
        work.floatingips.remove(fip_id)

    await recorder.measure(f"floating IP delete ({run.cl})", [lambda c, f=f: delete_fip(c, f)
                                                              for f in list(work.floatingips)], run.clients)

    async def remove_interface(client: Api, pair: tuple[str, str]) -> None:
        await client.call("PUT", f"/v2.0/routers/{pair[0]}/remove_router_interface", {"subnet_id": pair[1]})
        work.interfaces.remove(pair)

    await recorder.measure(f"router remove interface ({run.cl})",
                           [lambda c, p=p: remove_interface(c, p) for p in list(work.interfaces)], run.clients)

    async def delete_router(client: Api, router_id: str) -> None:
        await client.delete("router", router_id)
        work.routers.remove(router_id)

    await recorder.measure(f"router delete ({run.cl})", [lambda c, r=r: delete_router(c, r) for r in made],
                           run.clients, note="with gateway")


async def sg_phase(run: Run) -> None:
    """Security group rules: create (sequential, concurrent) up to ``--sg-rules`` spread over
    ``--sg-groups`` groups, then list them all and one group's, show and delete."""
    args, work, name, recorder = run.args, run.work, run.name, run.recorder
    total, groups_n = args.sg_rules, max(args.sg_groups, 1)
    if total > groups_n * 65535:
        raise SystemExit("api_bench: --sg-rules is more than 65535 rules per group (one per TCP port)")
    groups: list[str] = []

    async def create_group(client: Api, index: int) -> None:
        group = await client.create("security_group", {"name": f"{name}-sg-{index}"})
        work.security_groups.append(group["id"])
        groups.append(group["id"])

    await recorder.measure("security group create", [lambda c, i=i: create_group(c, i) for i in range(groups_n)],
                           run.one, budget_seconds=args.phase_seconds)
    counter = iter(range(10 ** 9))
    rules: list[str] = []
    per_group: dict[str, int] = {}

    async def create_rule(client: Api) -> None:
        # Rule i: group i mod G, TCP port i div G + 1: unique, and consecutive rules hit different groups.
        index = next(counter)
        group = groups[index % groups_n]
        port = index // groups_n + 1
        rule = await client.create("security_group_rule", {
            "security_group_id": group, "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
            "port_range_min": port, "port_range_max": port, "remote_ip_prefix": "0.0.0.0/0"})
        rules.append(rule["id"])
        per_group[group] = per_group.get(group, 0) + 1

    sequential = min(args.samples, total)
    await recorder.measure("sg rule create (sequential)", [create_rule] * sequential, run.one,
                           budget_seconds=args.phase_seconds)
    await recorder.measure(f"sg rule create ({run.cl})", [create_rule] * (total - len(rules)), run.clients,
                           note=f"up to {total} rules")
    await run.maintain()
    repeats, budget = args.list_repeats, args.phase_seconds
    got: dict[str, int] = {}

    async def listing(client: Api, query: str, label: str) -> None:
        got[label] = len((await client.call("GET", "/v2.0/security-group-rules" + query))["security_group_rules"])

    await recorder.measure(f"sg rule list all ({len(rules)})", [lambda c: listing(c, "", "all")] * repeats, run.one,
                           budget_seconds=budget, note="plus each group's egress rules")
    picks = [run.rng.choice(groups) for _ in range(repeats)]
    await recorder.measure(f"sg rule list security_group_id ({len(rules)})",
                           [lambda c, g=g: listing(c, f"?security_group_id={g}", g) for g in picks], run.one,
                           budget_seconds=budget, note=f"{len(rules) // groups_n} rules per group")
    # Each group also holds its two default egress rules.
    wrong = {g: got[g] for g in set(picks) if g in got and got[g] != per_group.get(g, 0) + 2}
    if got.get("all", 0) < len(rules) or wrong:
        raise SystemExit(f"api_bench: rule lists returned unexpected counts (all: {got.get('all')}, "
                         f"groups: {wrong}) for {len(rules)} rules")
    await recorder.measure(f"security group list ({groups_n} groups)",
                           [lambda c: c.call("GET", "/v2.0/security-groups")] * repeats, run.one,
                           budget_seconds=budget, note=f"{len(rules)} rules inside")
    picks = run.rng.sample(rules, min(args.samples, len(rules)))
    await recorder.measure("sg rule show", [lambda c, r=r: c.call("GET", f"/v2.0/security-group-rules/{r}")
                                            for r in picks], run.one, budget_seconds=budget)
    await recorder.measure("sg rule delete (sequential)",
                           [lambda c, r=r: c.delete("security_group_rule", r) for r in picks], run.one,
                           budget_seconds=budget, note=f"at {len(rules)} rules")

    async def delete_group(client: Api, group_id: str) -> None:
        await client.delete("security_group", group_id)
        work.security_groups.remove(group_id)

    await recorder.measure(f"security group delete ({run.cl})",
                           [lambda c, g=g: delete_group(c, g) for g in groups], run.clients,
                           note=f"~{len(rules) // groups_n} rules each")


# ---- a throw-away Neutrino ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _pg_admin(dsn: str, sql: str) -> Any:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


def database_maintenance(backend: str, pg_dsn: str, db_name: str) -> Callable[[], Awaitable[None]]:
    """What autovacuum does for a database that grew: refresh the planner's statistics.

    Without it PostgreSQL plans queries on tables that went from empty to 10,000 rows in a minute
    as if they were still empty (and on a server with autovacuum off, forever).
    """
    async def analyze() -> None:
        if backend == "postgresql":
            await _pg_admin(f"{pg_dsn}/{db_name}", "ANALYZE")

    return analyze


@contextlib.asynccontextmanager
async def started_server(backend: str, pg_dsn: str) -> AsyncIterator[tuple[Path, int, Callable[[], Awaitable[None]]]]:
    """``neutrino up`` in a temporary state directory (and a temporary PostgreSQL database)."""
    state = Path(tempfile.mkdtemp(prefix="neutrino-bench-"))
    db_name = f"neutrino_bench_{secrets.token_hex(6)}"
    created_db = False
    try:
        # Its in-process agent gets a host name of its own, so nothing it might create in the kernel
        # can collide with another Neutrino on this machine.
        # No L3 agent: the routers measured here would otherwise each get a namespace on this host,
        # which measures the kernel, not the API.
        config = (f'[agent]\nhost = "bench-{secrets.token_hex(4)}"\n'
                  '[all_in_one]\npublic_network = false\nl3_agent = false\ndhcp_agent = false\n')
        if backend == "postgresql":
            require_loopback("http://" + pg_dsn.split("@", 1)[-1].split("/", 1)[0])
            await _pg_admin(f"{pg_dsn}/postgres", f'CREATE DATABASE "{db_name}"')
            created_db = True
            config += f'[database]\nurl = "{pg_dsn.replace("postgresql://", "postgresql+asyncpg://", 1)}/{db_name}"\n'
        (state / "neutrino.toml").write_text(config)
        port = free_port()
        with open(state / "server.log", "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "neutrino.cli.main", "up", "--config",
                                     str(state / "neutrino.toml"), "--state-dir", str(state), "--port", str(port)],
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while not await _healthy(port) or not (state / "clouds.yaml").exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("api_bench: neutrino up did not start:\n"
                                     + (state / "server.log").read_text()[-3000:])
                await asyncio.sleep(0.1)
            yield state, proc.pid, database_maintenance(backend, pg_dsn, db_name)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.to_thread(proc.wait, 15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    finally:
        if created_db:
            await _pg_admin(f"{pg_dsn}/postgres", f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        shutil.rmtree(state, ignore_errors=True)


async def _healthy(port: int) -> bool:
    conn = Connection("127.0.0.1", port)
    try:
        status, _, _ = await conn.request("GET", "/healthz", {})
        return status == 200
    except OSError:
        return False
    finally:
        conn.close()


# ---- reporting ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    commit = ""
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        commit = subprocess.run(["git", "-C", str(Path(__file__).resolve().parent), "describe", "--always", "--dirty"],
                                capture_output=True, text=True, check=True).stdout.strip()
    return {"cpus": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "kernel": platform.release(), "git_commit": commit, "loadavg_at_start": os.getloadavg()}


async def main_async(args: argparse.Namespace) -> int:
    async with contextlib.AsyncExitStack() as stack:
        server_pid = args.server_pid
        maintain = no_maintenance
        if args.start_server:
            state, pid, maintain = await stack.enter_async_context(started_server(args.start_server, args.pg_dsn))
            server_pid = server_pid or pid
            session = await password_session(load_cloud(state / "clouds.yaml", "neutrino-admin"))
        elif args.cloud:
            session = await password_session(load_cloud(Path(args.clouds_yaml).expanduser(), args.cloud))
        else:
            session = Session(args.url, args.token, args.project_id)
        api = Api(session.endpoint, session.token)
        stack.callback(api.close)
        recorder = Recorder(server_pid)
        info = machine()
        print(f"endpoint {session.endpoint}  backend {args.start_server or 'external'}  phases {','.join(args.phases)}  "
              f"ports {args.ports}  routers {args.routers}  fips {args.fips}  sg rules {args.sg_rules}  "
              f"machine {info['cpus']} cpus ({info['cpu_model']})  commit {info['git_commit'] or '?'}  "
              "load average %.1f %.1f %.1f" % info["loadavg_at_start"], flush=True)
        print("latencies in ms; cli/srv cpu = client/server CPU ms per operation; srv rss = server RSS after the "
              "phase", flush=True)
        if args.start_server == "postgresql":
            print("the benchmark's own database is ANALYZEd after each batch of creates, as autovacuum would",
                  flush=True)
        print(format_header(), flush=True)
        await run_workload(api, session, args, recorder, maintain)
        peak = sample_process(server_pid) if server_pid else None
        if peak:
            print(f"server peak RSS {peak.peak_rss_mb:.0f} MB, current {peak.rss_mb:.0f} MB", flush=True)
        info["loadavg_at_end"] = os.getloadavg()
        print("load average at the end %.1f %.1f %.1f (other work on the machine skews latencies)"
              % info["loadavg_at_end"], flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps({
                "machine": info, "backend": args.start_server or "external", "phases": args.phases,
                "ports": args.ports, "routers": args.routers, "fips": args.fips, "sg_rules": args.sg_rules,
                "concurrency": args.concurrency, "server_peak_rss_mb": peak.peak_rss_mb if peak else None,
                "results": [asdict(r) for r in recorder.results]}, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--start-server", choices=("sqlite", "postgresql"),
                        help="start a throw-away `neutrino up` on this backend and benchmark it")
    target.add_argument("--cloud", help="cloud name in --clouds-yaml (password auth)")
    target.add_argument("--url", help="Networking API endpoint, e.g. http://127.0.0.1:9696 (with --token)")
    parser.add_argument("--clouds-yaml", default=os.environ.get("OS_CLIENT_CONFIG_FILE", "clouds.yaml"))
    parser.add_argument("--token", help="token for --url")
    parser.add_argument("--project-id", help="project of --token (lets the benchmark raise the port quota)")
    parser.add_argument("--server-pid", type=int, help="server process to read CPU time and RSS from (/proc)")
    parser.add_argument("--pg-dsn", default="postgresql://postgres@127.0.0.1:5432",
                        help="PostgreSQL server for --start-server postgresql (a database is created and dropped)")
    parser.add_argument("--only", default=",".join(PHASES),
                        help=f"comma-separated phases to run (default: all). {PHASE_HELP}")
    parser.add_argument("--ports", type=int, default=10000, help="ports to create (listing measured at 1k and here)")
    parser.add_argument("--routers", type=int, default=100,
                        help="routers to create, each with an interface on its own subnet and a gateway (l3)")
    parser.add_argument("--fips", type=int, default=1000,
                        help="floating IPs to create, associate with ports and disassociate (l3)")
    parser.add_argument("--sg-rules", type=int, default=10000, help="security group rules to create and list (sg)")
    parser.add_argument("--sg-groups", type=int, default=10, help="security groups the rules are spread over (sg)")
    parser.add_argument("--samples", type=int, default=300, help="timed sequential operations per phase")
    parser.add_argument("--network-samples", type=int, default=100, help="networks (and subnets) to create")
    parser.add_argument("--list-repeats", type=int, default=10, help="timed repetitions of each list call")
    parser.add_argument("--phase-seconds", type=float, default=60,
                        help="stop repeating a timed read or sequential phase after this long (at least one run)")
    parser.add_argument("--concurrency", type=int, default=8, help="clients in the concurrent phases")
    parser.add_argument("--seed", type=int, default=None, help="random seed for the ports picked per phase")
    parser.add_argument("--timeout", type=float, default=3600, help="give up (and clean up) after this many seconds")
    parser.add_argument("--json", help="also write the results to this JSON file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.phases = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = [p for p in args.phases if p not in PHASES]
    if unknown or not args.phases:
        parser.error(f"--only: unknown phase(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(PHASES)}")
    if args.url and not args.token:
        raise SystemExit("api_bench: --url needs --token")
    if args.url:
        require_loopback(args.url)

    async def bounded() -> int:
        return await asyncio.wait_for(main_async(args), args.timeout)

    # The client parses lists of 10,000 objects; with CPython's default collector thresholds that
    # parse costs it 2-3x more CPU (and the measured latency with it), which is the client's
    # overhead, not the server's. The server does the same (neutrino.cli.serve).
    gc.freeze()
    gc.set_threshold(200_000, 50, 100)

    try:
        return asyncio.run(bounded())
    except TimeoutError:
        print(f"api_bench: stopped after --timeout {args.timeout:.0f}s", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
