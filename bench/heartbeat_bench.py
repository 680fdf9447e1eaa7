"""Server CPU per heartbeat on the ``report_state`` path, heartbeats one by one against in batches.

Composes the server as an RPC worker does (``build_server(role="rpc")``) on a PostgreSQL database
of its own, registers N agents, then sends their heartbeats at N / 30 s per second (Neutron's
report interval), alternating phases with the batch window at 0 (each heartbeat its own
transaction, as before batching) and at the server's window, in ABBA order so that a load change
hits both alike. It reads this process's CPU time per heartbeat (the bus's share is not included:
``bench/scale_sim.py`` measures the whole server).

    .venv/bin/python bench/heartbeat_bench.py [--agents 1000] [--rounds 2] [--per-phase 400]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neutrino.cli.allinone import prepare_state  # noqa: E402
from neutrino.config import load_settings  # noqa: E402
from neutrino.server import build_server  # noqa: E402
from tests.support.databases import temporary_database  # noqa: E402


def beat(i: int, first: bool) -> dict[str, Any]:
    return {"host": f"hb-{i:05d}", "role": "l2", "agent_type": "Linux bridge agent",
            "binary": "neutrino-linuxbridge-agent", "topic": "N/A", "availability_zone": "nova", "start_flag": first,
            "configurations": {"tunnel_types": ["vxlan"], "tunneling_ip": f"198.18.{i // 250}.{i % 250 + 1}",
                               "bridge_mappings": {}}, "resource_versions": {}}


async def run(db_url: str, workdir: str, args: argparse.Namespace) -> dict[str, Any]:
    settings = load_settings(overrides={"database": {"url": db_url}, "bus": {"url": "memory://"},
                                        "server": {"state_dir": workdir + "/state"}})
    await prepare_state(settings)
    server = build_server(settings, role="rpc")
    await server.bus.start()
    agents = server.services["agent"]
    window = agents.batch_window
    try:
        for start in range(0, args.agents, 32):  # as an RPC worker's prefetch bounds them
            await asyncio.gather(*(agents.report_state(beat(i, True))
                                   for i in range(start, min(args.agents, start + 32))))
        phases: list[dict[str, float]] = []
        sent = 0
        for r in range(args.rounds):
            for w in ((0.0, window) if r % 2 == 0 else (window, 0.0)):
                agents.batch_window = w
                cpu0, wall0 = time.process_time(), time.monotonic()
                tasks = []
                for _ in range(args.per_phase):
                    tasks.append(asyncio.create_task(agents.report_state(beat(sent % args.agents, False))))
                    sent += 1
                    await asyncio.sleep(30.0 / args.agents)
                replies = await asyncio.gather(*tasks)
                assert all(reply["status"] == "alive" for reply in replies)
                ms = (time.process_time() - cpu0) / args.per_phase * 1000
                phases.append({"batch_window_s": w, "cpu_ms_per_heartbeat": round(ms, 3),
                               "wall_s": round(time.monotonic() - wall0, 1)})
                print(json.dumps(phases[-1]), file=sys.stderr, flush=True)
        one = [p["cpu_ms_per_heartbeat"] for p in phases if p["batch_window_s"] == 0]
        batched = [p["cpu_ms_per_heartbeat"] for p in phases if p["batch_window_s"] > 0]
        return {"agents": args.agents, "load": os.getloadavg(), "phases": phases,
                "ratio_batched_to_one_by_one": round(sum(batched) / sum(one), 3)}
    finally:
        await server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--per-phase", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="heartbeat-bench-") as workdir, \
            temporary_database("postgresql", workdir) as db_url:
        print(json.dumps(asyncio.run(run(db_url, workdir, args))), flush=True)


if __name__ == "__main__":
    main()
