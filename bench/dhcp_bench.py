"""DHCP role benchmark: a full resync of N unchanged networks must restart no dnsmasq and rewrite no file.

    .venv/bin/python bench/dhcp_bench.py [--networks 200]

The role runs against the real kernel and real dnsmasq processes (needs root), its server replaced
by a fixed desired state (what ``sync_state("dhcp")`` would answer: N networks, each with a /24
subnet, its DHCP port and 4 instance ports). Phases: the first reconcile (namespaces, veths,
addresses, N dnsmasq), then ``--resyncs`` full resyncs of the same state, timed, counting dnsmasq
PIDs that changed and dnsmasq files whose modification time changed. Everything it made (namespaces
with a unique prefix, dnsmasq processes, files) is removed at the end, also on failure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from neutrino.agent.roles.dhcp.config import DhcpConfig
from neutrino.agent.roles.dhcp.role import DhcpRole
from neutrino.contract import codec
from neutrino.contract.dhcp import DhcpHost, DhcpNetwork, DhcpState, DhcpSubnet
from neutrino.dataplane.netlink import NetlinkDriver
from neutrino.dataplane.ownership import OwnerTag


class FixedServer:
    def __init__(self, state: DhcpState) -> None:
        self.state = state

    async def sync_state(self, role: str) -> dict[str, Any]:
        return codec.encode(self.state)

    async def dhcp_ready_on_ports(self, ports: Any) -> dict[str, Any]:
        return {"activated": []}


def desired(host: str, count: int) -> DhcpState:
    networks = []
    for n in range(count):
        subnet = DhcpSubnet(f"s{n}", 4, f"10.{n // 250}.{n % 250}.0/24", f"10.{n // 250}.{n % 250}.1")
        base = f"10.{n // 250}.{n % 250}."

        def port(i: int, owner: str = "compute:nova", base: str = base, n: int = n) -> DhcpHost:
            return DhcpHost(str(uuid.uuid4()), f"fa:16:3e:{n // 256:02x}:{n % 256:02x}:{i:02x}",
                            ((f"s{n}", f"{base}{i}"),), "", (), owner)

        dhcp = port(2, "network:dhcp")
        networks.append(DhcpNetwork(str(uuid.uuid4()), "bench", 1450, "openstacklocal.", (subnet,), dhcp,
                                    (dhcp, *(port(10 + i) for i in range(4)))))
    return DhcpState(host, tuple(networks))


def snapshot(state_dir: Path) -> tuple[dict[str, str], dict[str, int]]:
    pids, mtimes = {}, {}
    for directory in state_dir.iterdir():
        pid = directory / "pid"
        pids[directory.name] = pid.read_text().strip() if pid.exists() else ""
        for name in ("host", "addn_hosts", "opts"):
            if (directory / name).exists():
                mtimes[f"{directory.name}/{name}"] = (directory / name).stat().st_mtime_ns
    return pids, mtimes


async def run(count: int, resyncs: int) -> dict[str, Any]:
    suffix = secrets.token_hex(3)
    host = f"bench-dhcp-{suffix}"
    work = Path(tempfile.mkdtemp(prefix="dhcp-bench-"))
    owner = OwnerTag(host)
    driver = NetlinkDriver(owner)
    host_ns = f"nbench-{suffix}-host"
    prefix = f"nbench-{suffix}-"
    await driver.ensure_namespace(host_ns)
    config = DhcpConfig(host=host, state_dir=work / "dhcp", netns=host_ns, namespace_prefix=prefix, owner=owner)
    role = DhcpRole(config, FixedServer(desired(host, count)), driver=driver)  # type: ignore[arg-type]
    try:
        started = time.perf_counter()
        await role.resync()
        first = time.perf_counter() - started
        failed = role.reconciler.last_round.failed if role.reconciler.last_round else {}
        before = snapshot(config.state_dir)
        times = []
        for _ in range(resyncs):
            started = time.perf_counter()
            await role.resync()
            times.append(time.perf_counter() - started)
        after = snapshot(config.state_dir)
        last = role.reconciler.last_round
        # Objects that failed in the first round are retried by the resyncs: not counted as restarts.
        before = ({k: v for k, v in before[0].items() if k not in failed},
                  {k: v for k, v in before[1].items() if k.split("/")[0] not in failed})
        return {
            "networks": count, "first_reconcile_s": round(first, 3), "first_failed": len(failed),
            "first_failure": next(iter(failed.values()), None),
            "resync_s": {"min": round(min(times), 3), "median": round(statistics.median(times), 3),
                         "max": round(max(times), 3)},
            "resync_actions": len(last.actions) if last else None,
            "dnsmasq_restarts": sum(before[0][k] != after[0].get(k) for k in before[0]),
            "file_rewrites": sum(before[1][k] != after[1].get(k) for k in before[1]),
        }
    finally:
        await role.stop()
        for pid_file in (work / "dhcp").glob("*/pid"):
            subprocess.run(["kill", "-9", pid_file.read_text().strip()], check=False)
        for name in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split():
            if name.startswith(prefix):
                subprocess.run(["ip", "netns", "delete", name], check=False)
        shutil.rmtree(work, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dhcp_bench")
    parser.add_argument("--networks", type=int, default=200)
    parser.add_argument("--resyncs", type=int, default=5)
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run(args.networks, args.resyncs)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
