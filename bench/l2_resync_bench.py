"""The l2 role alone, in this process, on a host namespace with N taps: first wiring, then resyncs.

No deployment: a namespace with N veth pairs (the ``tap<port>`` ends are the instances' taps, their
peers stay in the namespace), and a small server on the in-process bus that answers ``sync_state``
with N ports of one VXLAN network (plus a remote host, so the VXLAN device has FDB entries) and
takes the status reports. Measured, wall time and this process's CPU time (the figure a loaded
machine disturbs least):

* first wiring: a fresh role's first resync wires every tap into the bridge (N ConvergeTap);
* cold: a new role object's first resync of the wired host (must plan nothing);
* warm xK: further resyncs (the link mirror); dump x2: resyncs that read the links afresh.

``--src DIR`` runs another checkout's ``src`` (e.g. the commit before a change) with this script,
so old and new can be alternated under the same load::

    .venv/bin/python bench/l2_resync_bench.py --ports 1000
    .venv/bin/python bench/l2_resync_bench.py --ports 1000 --src /path/to/old/checkout/src
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


async def _run(ports: int, warm: int) -> dict[str, Any]:
    from neutrino.agent.roles.l2 import LinuxBridgeRole
    from neutrino.agent.roles.l2.config import LinuxBridgeConfig
    from neutrino.agent.rpc_client import AgentRpcClient
    from neutrino.bus.factory import build_bus
    from neutrino.bus.memory import MemoryBroker
    from neutrino.contract import codec
    from neutrino.contract.l2 import L2Network, L2Port, L2State, SegmentInfo
    from neutrino.contract.names import tap_name
    from neutrino.dataplane.netlink import NetlinkDriver
    from neutrino.dataplane.ownership import OwnerTag

    tag = uuid.uuid4().hex[:6]
    ns, host = f"l2b-{tag}", f"l2bench-{tag}"
    network_id = str(uuid.uuid4())
    segment = SegmentInfo("vxlan", 4000 + int(tag[:3], 16) % 1000, None)
    port_list = []
    for n in range(ports):
        port_id = str(uuid.uuid4())
        port_list.append(L2Port(port_id=port_id, device=tap_name(port_id), network_id=network_id,
                                mac_address=f"fa:16:3e:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}",
                                fixed_ips=(), admin_state_up=True, device_owner="compute:nova", segment=segment,
                                mtu=1450, revision=1, status="ACTIVE"))
    state = L2State(host, "172.30.0.1", tuple(port_list),
                    (L2Network(network_id, segment, 1450, flood=("172.30.0.2",)),))
    _ip("netns", "add", ns)
    broker = MemoryBroker()
    server = build_bus("memory://", sender="server.bench", broker=broker)
    agent = build_bus("memory://", sender=f"agent.{host}", broker=broker)
    reports = 0

    async def sync_state(payload: dict[str, Any]) -> dict[str, Any]:
        return codec.encode(state)

    async def device_list(payload: dict[str, Any]) -> dict[str, Any]:
        nonlocal reports
        reports += len(payload["devices_up"]) + len(payload["devices_down"])
        return {"devices_up": payload["devices_up"], "devices_down": payload["devices_down"],
                "failed_devices_up": [], "failed_devices_down": [], "ports": {}}

    async def nothing(payload: dict[str, Any]) -> dict[str, Any]:
        return {"devices": [], "failed_devices": []}

    runs: list[dict[str, Any]] = []
    try:
        batch = "".join(f"link add {p.device} type veth peer name p{n}\n" for n, p in enumerate(port_list))
        subprocess.run(["ip", "-n", ns, "-batch", "-"], input=batch.encode(), check=True, capture_output=True)
        _ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
        _ip("-n", ns, "addr", "add", "172.30.0.1/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        await server.start()
        await agent.start()
        await server.serve("server", {"sync_state": sync_state, "update_device_list": device_list,
                                      "get_devices_details": nothing, "report_state": nothing})
        rpc = AgentRpcClient(agent, host, timeout=120)
        config = LinuxBridgeConfig(host=host, tunnel_ip="172.30.0.1", netns=ns)

        async def timed(label: str, role: Any) -> None:
            started, cpu = time.monotonic(), time.process_time()
            await role.resync()
            report = role.last_reconcile
            runs.append({"run": label, "seconds": round(time.monotonic() - started, 3),
                         "cpu_seconds": round(time.process_time() - cpu, 3),
                         "actions": len(report.actions), "links_from": report.links_from})

        role = LinuxBridgeRole(config, rpc, driver=NetlinkDriver(OwnerTag(host)))
        await role.start()
        await timed("first wiring", role)
        await role.stop()
        role = LinuxBridgeRole(config, rpc, driver=NetlinkDriver(OwnerTag(host)))
        await role.start()
        await timed("cold (fresh role)", role)
        for n in range(warm):
            await timed(f"warm {n + 1}", role)
        await role.stop()
        role = LinuxBridgeRole(config, rpc, driver=NetlinkDriver(OwnerTag(host)), full_read_every=1)
        await role.start()
        for n in range(2):
            await timed(f"dump {n + 1}", role)
        await role.stop()
    finally:
        await agent.close()
        await server.close()
        subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
    return {"ports": ports, "reports": reports, "runs": runs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ports", type=int, default=1000)
    parser.add_argument("--warm-runs", type=int, default=5)
    parser.add_argument("--src", help="import neutrino from this src directory instead of the installed one")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("l2_resync_bench: needs root (namespaces, devices)", file=sys.stderr)
        return 1
    if args.src:
        sys.path.insert(0, str(Path(args.src).resolve()))
    result = asyncio.run(_run(args.ports, args.warm_runs))
    import neutrino

    result["src"] = str(Path(neutrino.__file__).resolve().parents[1])
    result["load_average_at_end"] = os.getloadavg()[0]
    print(f"l2 role, {result['ports']} taps, src {result['src']}, load average {result['load_average_at_end']:.1f}")
    for r in result["runs"]:
        print(f"  {r['run']:<18} {r['seconds']:>7} s  CPU {r['cpu_seconds']:>7} s  actions {r['actions']:>5}  "
              f"links from {r['links_from']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
