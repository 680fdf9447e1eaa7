"""L3 benchmark (issue 12): routers to first packet, floating IPs to first ping, resync, HA failover.

    .venv/bin/python bench/l3_bench.py [--routers 3] [--fips 10] [--many 100] [--resync-routers 100]
                                       [--failovers 10] [--skip-deployment] [--skip-resync]

Needs root, PostgreSQL and RabbitMQ (the fullstack harness: ``tests/fullstack``). Phases:

* ``deployment`` (a server, a compute host ``c1`` and two network nodes, an "outside" namespace):
  - router + interface + gateway create -> first packet from an instance through SNAT (a legacy
    router, ``ha=false``), per router;
  - floating IP associate -> first ping from the outside answered, per floating IP;
  - ``--many`` floating IPs on one router (ports without instances): API time for all, time until
    the router's NAT table holds all of them, then associate -> first ping with them in place;
  - HA failover, ``--failovers`` times: an HA router, a ping every 0.1 s from the instance to the
    outside; the active node is killed (agent and router namespaces killed, links down), the gap
    from the first lost to the first answered probe and the probes lost are recorded, the node is
    brought back (it returns as standby) and the next failover kills the new active node;
* ``resync``: the l3 role in this process against the real kernel with a fixed desired state of
  ``--resync-routers`` routers (an interface, a gateway, SNAT and a floating IP each): the first
  reconcile, then full resyncs of the same state, timed, with the actions they planned (kernel
  changes) counted.

Everything made is removed at the end, also on failure. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neutrino.agent.roles.l3.config import L3Config  # noqa: E402
from neutrino.agent.roles.l3.role import L3Role  # noqa: E402
from neutrino.contract import codec  # noqa: E402
from neutrino.contract.l3 import FloatingIp, L3Router, L3State, RouterAddress, RouterPort  # noqa: E402
from neutrino.dataplane.netlink import NetlinkDriver  # noqa: E402
from neutrino.dataplane.ownership import OwnerTag  # noqa: E402
from tests.fullstack.l3_ha import (  # noqa: E402
    COMPUTE,
    OUTSIDE,
    ContinuousPing,
    HaRouter,
    ha_deployment,
    keepalived_pids,
    power_off,
    power_on,
)
from tests.fullstack.scenario import Scenario  # noqa: E402
from tests.fullstack.underlay import in_netns  # noqa: E402
from tests.support.waiting import wait_until  # noqa: E402


def pct(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}
    return {"n": len(ordered), "p50": round(statistics.median(ordered), 3),
            "p90": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))], 3),
            "max": round(ordered[-1], 3), "min": round(ordered[0], 3)}


def until(check: Callable[[], bool], timeout: float = 120, poll: float = 0.02) -> float:
    started = time.perf_counter()
    deadline = started + timeout
    while time.perf_counter() < deadline:
        if check():
            return time.perf_counter() - started
        time.sleep(poll)
    raise TimeoutError("condition not met")


def pings(netns: str, address: str) -> bool:
    return in_netns(netns, "ping", "-n", "-c", "1", "-W", "1", address).returncode == 0


def deployment_phases(args: argparse.Namespace, out: dict[str, Any]) -> dict[str, Any]:
    """Each phase's figures go into ``out`` as soon as they are measured."""
    quotas = "[quotas]\nfloatingip = -1\nport = -1\nrouter = -1\n"
    with ha_deployment(Path(tempfile.mkdtemp(prefix="l3-bench-")), quotas) as d:
        scenario = Scenario(d)
        ha = HaRouter(d, scenario, pool_end=250)  # room for the 100 floating IPs and the gateways
        try:
            ha.build("bench")  # outside, external network, instance on c1, an HA router with its floating IP
            adm, member = d.api(), d.api("neutrino-demo")
            project = ha.router["project_id"]
            inside, subnet = scenario.network("bench-legacy", "10.79.0.0/24")
            vm = scenario.instance("bench-legacy-vm", inside["id"], COMPUTE)

            # -- router + interface + gateway -> first packet through SNAT --
            first_packet = []
            for i in range(args.routers):
                started = time.perf_counter()
                router = adm.request("POST", "/routers", json={"router": {
                    "name": f"bench-legacy-{i}", "project_id": project, "ha": False,
                    "external_gateway_info": {"network_id": ha.external["id"]}}})["router"]
                member.request("PUT", f"/routers/{router['id']}/add_router_interface",
                               json={"subnet_id": subnet["id"]})
                until(lambda: pings(vm.namespace, OUTSIDE), timeout=180, poll=0)
                first_packet.append(time.perf_counter() - started)
                if i < args.routers - 1:
                    member.request("PUT", f"/routers/{router['id']}/remove_router_interface",
                                   json={"subnet_id": subnet["id"]})
                    adm.request("DELETE", f"/routers/{router['id']}", expect=(204,))
                    # The next router's first packet must not pass through this one's namespace.
                    until(lambda r=router["id"]: not any(n.endswith(f"qrouter-{r}") for n in os.listdir("/run/netns")),
                          timeout=120, poll=0.1)
            out["router_to_first_snat_packet_s"] = pct(first_packet)

            # -- floating IP associate -> first ping --
            def associate_to_ping(port_id: str) -> tuple[float, str]:
                started = time.perf_counter()
                fip = adm.request("POST", "/floatingips", json={"floatingip": {
                    "floating_network_id": ha.external["id"], "port_id": port_id}})["floatingip"]
                until(lambda: pings(ha.outside, fip["floating_ip_address"]), timeout=120, poll=0)
                return time.perf_counter() - started, fip["id"]

            times = []
            for _ in range(args.fips):
                took, fip_id = associate_to_ping(vm.port_id)
                times.append(took)
                adm.request("DELETE", f"/floatingips/{fip_id}", expect=(204,))
            out["fip_associate_to_first_ping_s"] = pct(times)

            # -- many floating IPs on one router --
            if args.many:
                ns = next(n for n in os.listdir("/run/netns") if n.endswith(f"qrouter-{router['id']}"))
                ports = [adm.request("POST", "/ports", json={"port": {
                    "network_id": inside["id"], "project_id": project, "name": f"bench-fip-{i}"}})["port"]
                    for i in range(args.many)]
                started = time.perf_counter()
                fips = [adm.request("POST", "/floatingips", json={"floatingip": {
                    "floating_network_id": ha.external["id"], "port_id": p["id"]}})["floatingip"] for p in ports]
                api_s = time.perf_counter() - started
                wanted = {f["floating_ip_address"] for f in fips}

                def all_loaded() -> bool:
                    table = in_netns(ns, "nft", "list", "table", "ip", "neutrino-nat").stdout
                    return all(f"ip daddr {a} dnat" in table for a in wanted)

                until(all_loaded, timeout=300, poll=0.2)
                out["many_fips"] = {"count": args.many, "api_create_s": round(api_s, 3),
                                    "create_to_all_in_nat_s": round(time.perf_counter() - started, 3)}
                took, fip_id = associate_to_ping(vm.port_id)
                out["many_fips"]["associate_to_first_ping_with_them_s"] = round(took, 3)
                adm.request("DELETE", f"/floatingips/{fip_id}", expect=(204,))
                for f in fips:
                    adm.request("DELETE", f"/floatingips/{f['id']}", expect=(204,))
                for p in ports:
                    adm.request("DELETE", f"/ports/{p['id']}", expect=(204,))
            member.request("PUT", f"/routers/{router['id']}/remove_router_interface",
                           json={"subnet_id": subnet["id"]})
            adm.request("DELETE", f"/routers/{router['id']}", expect=(204,))

            # -- HA failover --
            if args.failovers:
                active = ha.wait_serving()
                ping = ContinuousPing(ha.instance.namespace, OUTSIDE, interval=0.1)
                gaps, lost = [], []
                try:
                    wait_until("the ping answered", lambda: ping.last_answered() > 0)
                    for _ in range(args.failovers):
                        n_lost, gap, active = one_failover(d, ha, ping, active)
                        lost.append(n_lost)
                        gaps.append(gap)
                finally:
                    ping.stop()
                out["ha_failover"] = {"advert_int_s": 2, "gap_s": pct(gaps), "lost_per_failover": lost,
                                      "lost_p50": statistics.median(lost) if lost else None}
        finally:
            ha.close()
            scenario.close()
    return out


def one_failover(d: Any, ha: HaRouter, ping: ContinuousPing, active: str) -> tuple[int, float, str]:
    """Kill the active node, wait for the pings and the API to show the survivor, bring the node
    back as standby; (probes lost, first lost -> first answered seconds, the new active node)."""
    standby = next(label for label in ("n1", "n2") if label != active)
    survivor = d.host(standby).name
    killed = time.time()
    power_off(d, active)
    seq = ping.sent
    wait_until("pings answered after the failover", lambda: ping.answered_after(seq + 1), timeout=120)
    wait_until("the survivor reported active", lambda: ha.states().get(survivor) == "active", timeout=60)
    n_lost, gap = ping.largest_gap_since(killed)
    power_on(d, active)
    wait_until("keepalived on the returned node", lambda: bool(keepalived_pids(ha.namespace_on(active))),
               timeout=90)
    wait_until("the returned node standby", lambda: ha.states().get(d.host(active).name) == "standby",
               timeout=60)
    return n_lost, gap or 0.0, standby


class FixedServer:
    def __init__(self, state: L3State) -> None:
        self.state = state

    async def sync_state(self, role: str) -> dict[str, Any]:
        encoded: dict[str, Any] = codec.encode(self.state)
        return encoded

    async def update_router_statuses(self, statuses: Any) -> dict[str, Any]:
        return {}

    async def update_floatingip_statuses(self, statuses: Any) -> dict[str, Any]:
        return {}


def resync_state(host: str, count: int) -> L3State:
    routers = []
    for n in range(count):
        a, b = n // 250, n % 250

        def port(net: str, mac: int, ip: str, cidr: str, gw: str | None, a: int = a, b: int = b) -> RouterPort:
            return RouterPort(str(uuid.uuid4()), net, f"fa:16:3e:{a:02x}:{b:02x}:{mac:02x}", 1450,
                              (RouterAddress(f"s-{net}", ip, cidr, gw),))

        inside = port(f"in{n}", 1, f"10.{a}.{b}.1", f"10.{a}.{b}.0/24", f"10.{a}.{b}.1")
        gateway = port("ext", 2, f"172.16.{a}.{b + 1}", "172.16.0.0/16", "172.16.255.254")
        routers.append(L3Router(str(uuid.uuid4()), "bench", True, True, 1, (inside,), gateway, (),
                                (FloatingIp(str(uuid.uuid4()), f"172.17.{a}.{b + 1}", f"10.{a}.{b}.10",
                                            str(uuid.uuid4()), "ACTIVE"),)))
    return L3State(host, tuple(routers))


async def resync_phase(count: int, resyncs: int) -> dict[str, Any]:
    suffix = secrets.token_hex(3)
    host = f"bench-l3-{suffix}"
    owner = OwnerTag(host)
    driver = NetlinkDriver(owner)
    host_ns = f"nbl3-{suffix}-host"
    prefix = f"nbl3-{suffix}-"
    await driver.ensure_namespace(host_ns)
    config = L3Config(host=host, netns=host_ns, owner=owner, namespace_prefix=prefix,
                      run_dir=Path(tempfile.mkdtemp(prefix="l3-bench-run-")))
    role = L3Role(config, FixedServer(resync_state(host, count)), driver=driver)  # type: ignore[arg-type,unused-ignore]
    try:
        started = time.perf_counter()
        await role.resync()
        first = time.perf_counter() - started
        last = role.reconciler.last_round
        failed = last.failed if last else {}
        times, actions = [], []
        for _ in range(resyncs):
            started = time.perf_counter()
            await role.resync()
            times.append(time.perf_counter() - started)
            last = role.reconciler.last_round
            actions.append(len(last.actions) if last else -1)
        return {"routers": count, "first_reconcile_s": round(first, 3), "first_failed": len(failed),
                "resync_s": pct(times), "resync_actions": actions}
    finally:
        await role.stop()
        for name in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split():
            if name.startswith(prefix):
                subprocess.run(["ip", "netns", "delete", name], check=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="l3_bench")
    parser.add_argument("--routers", type=int, default=3)
    parser.add_argument("--fips", type=int, default=10)
    # The external pool has 241 addresses (gateways and the other phases' floating IPs use some).
    parser.add_argument("--many", type=int, default=100)
    parser.add_argument("--resync-routers", type=int, default=100)
    parser.add_argument("--resyncs", type=int, default=5)
    parser.add_argument("--failovers", type=int, default=10)
    parser.add_argument("--skip-deployment", action="store_true")
    parser.add_argument("--skip-resync", action="store_true")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {}
    with contextlib.suppress(KeyboardInterrupt):
        if not args.skip_resync:
            result["resync"] = asyncio.run(resync_phase(args.resync_routers, args.resyncs))
            print(json.dumps(result, indent=2), flush=True)
        if not args.skip_deployment:
            try:
                result.update(deployment_phases(args, result))
            except Exception as exc:  # noqa: BLE001 - print what was measured before the failure
                result["error"] = repr(exc)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
