"""One process against API and RPC workers, measured so that a busy machine cannot decide the answer.

Two ``neutrino server`` configurations run side by side for the whole sitting, each on a PostgreSQL
database and a RabbitMQ vhost of its own: one process (``api_workers = 1, rpc_workers = 0``) and
workers (``api_workers = 2, rpc_workers = 1`` by default). The benchmark then alternates short
phases between them, in ABBA order round after round, so that a change in the machine's load
(other people's work) hits both alike, and reports:

* per round and configuration: sequential port create p50, port creates/s with 8 clients, and the
  server's CPU per create (every process of the server's session, read from ``/proc``: CPU time
  per create barely depends on how many other processes wait for a CPU, unlike wall-clock rates);
* the median over the rounds of the per-round ratios (workers / one process), which is what the
  issue's targets are stated in, and the port list p50 of each configuration at the end;
* the load average of every phase, so a reader can see what the machine was doing.

    .venv/bin/python bench/workers_bench.py --rounds 6 [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from api_bench import Api, percentile
from scale_sim import ServerRig

from neutrino.cli.allinone import prepare_state
from neutrino.config import load_settings
from tests.fullstack.broker import shared_broker_vhost
from tests.support.databases import temporary_database
from tests.support.live_server import free_port
from tests.support.tenants import cloud_persona


@dataclass
class Config:
    label: str
    rig: ServerRig
    api: Api
    network_id: str
    created: int = 0


async def _config(stack: ExitStack, label: str, api_workers: int, rpc_workers: int, workdir: Path) -> Config:
    bus_url = stack.enter_context(shared_broker_vhost())
    db_url = stack.enter_context(temporary_database("postgresql", str(workdir)))
    state_dir = workdir / label
    settings = load_settings(overrides={"database": {"url": db_url}, "bus": {"url": bus_url},
                                        "server": {"state_dir": str(state_dir)}})
    await prepare_state(settings)
    config = workdir / f"{label}.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n[bus]\nurl = "{bus_url}"\n'
                      f"[server]\nport = {free_port()}\napi_workers = {api_workers}\nrpc_workers = {rpc_workers}\n")
    rig = ServerRig(workdir / label, config, state_dir)
    (workdir / label).mkdir(exist_ok=True)
    stack.callback(rig.stop)
    server = await asyncio.to_thread(rig.start)
    admin = cloud_persona(server, "neutrino-admin")
    api = Api(server.url, admin.token)
    await api.call("PUT", f"/v2.0/quotas/{admin.project_id}", {"quota": {"port": -1}})
    net = await api.create("network", {"name": f"workers-{label}"})
    await api.create("subnet", {"network_id": net["id"], "ip_version": 4, "cidr": "10.200.0.0/16"})
    return Config(label, rig, api, net["id"])


async def _create(cfg: Config, client: Api) -> float:
    cfg.created += 1
    t = time.perf_counter()
    await client.create("port", {"network_id": cfg.network_id, "device_owner": "compute:bench",
                                 "device_id": str(uuid.uuid4())})
    return time.perf_counter() - t


async def phase(cfg: Config, count: int, clients: int) -> dict[str, float]:
    apis = [cfg.api] + [cfg.api.clone() for _ in range(clients - 1)]
    todo = iter(range(count))
    latencies: list[float] = []

    async def worker(client: Api) -> None:
        for _ in todo:
            latencies.append(await _create(cfg, client))

    cpu0, load0, t0 = cfg.rig.cpu_seconds(), os.getloadavg()[0], time.perf_counter()
    await asyncio.gather(*(worker(c) for c in apis))
    wall = time.perf_counter() - t0
    cpu = cfg.rig.cpu_seconds() - cpu0
    for c in apis[1:]:
        c.close()
    latencies.sort()
    return {"per_s": round(count / wall, 1), "p50_ms": round(percentile(latencies, 50) * 1000, 2),
            "cpu_ms_per_create": round(cpu / count * 1000, 2), "load": round((load0 + os.getloadavg()[0]) / 2, 1)}


async def list_p50(cfg: Config, samples: int = 5) -> float:
    times = []
    for _ in range(samples):
        t = time.perf_counter()
        await cfg.api.call("GET", f"/v2.0/ports?network_id={cfg.network_id}")
        times.append(time.perf_counter() - t)
    return round(statistics.median(times) * 1000, 1)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="workers-bench-"))
    with ExitStack() as stack:
        one = await _config(stack, "one", 1, 0, workdir)
        many = await _config(stack, "workers", args.api_workers, args.rpc_workers, workdir)
        rounds = []
        for r in range(args.rounds):
            order = (one, many) if r % 2 == 0 else (many, one)
            row: dict[str, Any] = {"round": r}
            for cfg in order:
                row[cfg.label] = {"sequential": await phase(cfg, args.sequential, 1),
                                  "concurrent": await phase(cfg, args.concurrent, args.clients)}
            rounds.append(row)
            print(json.dumps(row), flush=True)

        def ratio(kind: str, key: str) -> float:
            return round(statistics.median(r["workers"][kind][key] / r["one"][kind][key] for r in rounds), 2)

        lists = {"one": await list_p50(one), "workers": await list_p50(many)}
        summary = {
            "rounds": len(rounds), "ports_per_config": one.created,
            "ratio_concurrent_per_s": ratio("concurrent", "per_s"),
            "ratio_sequential_p50": ratio("sequential", "p50_ms"),
            "ratio_cpu_per_create_sequential": ratio("sequential", "cpu_ms_per_create"),
            "ratio_cpu_per_create_concurrent": ratio("concurrent", "cpu_ms_per_create"),
            "list_p50_ms": lists, "ratio_list_p50": round(lists["workers"] / lists["one"], 2),
            "median": {label: {kind: {key: statistics.median(r[label][kind][key] for r in rounds)
                                      for key in ("per_s", "p50_ms", "cpu_ms_per_create", "load")}
                               for kind in ("sequential", "concurrent")} for label in ("one", "workers")},
        }
        print(json.dumps(summary), flush=True)
        one.api.close()
        many.api.close()
        return {"rounds": rounds, "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--sequential", type=int, default=100, help="sequential creates per phase")
    parser.add_argument("--concurrent", type=int, default=400, help="creates per phase with --clients clients")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument("--rpc-workers", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
