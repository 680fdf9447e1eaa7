"""Dashboard benchmark, measured in the browser (Debian's headless chromium through Selenium).

    .venv/bin/python bench/dashboard_bench.py                      # 50 networks, 500 ports
    .venv/bin/python bench/dashboard_bench.py --networks 100 --ports-per-network 10 --changes 50

It starts a throw-away ``neutrino up`` (SQLite, own state directory and agent host), makes one
project with ``--networks`` networks (a subnet each), ``--ports-per-network`` ports on each (two per
instance) and a router per five subnets, then reports:

- **first render** of the topology, from the page asking for it to the first frame drawn:
  data fetched through the API (``load``), layout of the graph (``layout``), first paint;
  the best and the median of ``--renders`` renders (each reloads the data and lays out anew);
- **change on screen**: a port created through the API (from the page, through the dashboard's
  proxy) until its node is in the graph and the next frame is drawn, ``--changes`` times; the clock
  starts when the request is sent, so it includes the API call, the commit, the event stream's
  re-read with the viewer's token and the graph patch.

Everything it made goes with the server's state directory; the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.browser.conftest import new_driver  # noqa: E402
from tests.browser.dashboard_page import DashboardPage  # noqa: E402
from tests.browser.topology_data import build_topology  # noqa: E402
from tests.support.live_server import start_server  # noqa: E402
from tests.support.tenants import IdentityAdmin  # noqa: E402

# Creates a port from the page and resolves with [ms until the node exists, ms until the next frame].
CHANGE_SCRIPT = """
const [networkId, name, done] = arguments;
const cy = window.__topology.cy;
const csrf = document.cookie.match(/neutrino_dashboard_csrf=([^;]+)/)[1];
const t0 = performance.now();
let id = null, addedAt = null;
const onAdd = (ev) => {
  if (id && ev.target.id() === "port:" + id && addedAt === null) {
    addedAt = performance.now();
    cy.one("render", () => done([addedAt - t0, performance.now() - t0]));
  }
};
cy.on("add", "node", onAdd);
fetch("api/v2.0/ports", {method: "POST", credentials: "same-origin",
      headers: {"content-type": "application/json", "x-csrf-token": csrf},
      body: JSON.stringify({port: {network_id: networkId, name}})})
  .then((r) => r.json()).then((b) => {
    id = b.port.id;
    const have = cy.getElementById("port:" + id);
    if (have.nonempty() && addedAt === null) {  // the event beat the response
      addedAt = performance.now();
      cy.one("render", () => done([addedAt - t0, performance.now() - t0]));
    }
  });
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--networks", type=int, default=50)
    parser.add_argument("--ports-per-network", type=int, default=10)
    parser.add_argument("--renders", type=int, default=5)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="dashboard-bench-"))
    server = start_server(tmp / "state")
    driver = None
    try:
        identity = IdentityAdmin(server)
        user = identity.persona("member", prefix="bench")
        limits = {"network": -1, "subnet": -1, "port": -1, "router": -1}
        httpx.put(f"{server.url}/v2.0/quotas/{user.project_id}", json={"quota": limits},
                  headers={"x-auth-token": identity.admin.token}, timeout=30).raise_for_status()
        identity.close()
        started = time.perf_counter()
        built = build_topology(server, user, networks=args.networks, ports_per_network=args.ports_per_network)
        setup_s = time.perf_counter() - started

        driver = new_driver(tmp / "profile")
        driver.set_script_timeout(120)
        driver.execute_cdp_cmd("Performance.enable", {})

        def thread_ms() -> float:
            """CPU time of the page's main thread so far (Chrome's ThreadTime metric), in ms."""
            metrics = driver.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]
            return 1000 * next(m["value"] for m in metrics if m["name"] == "ThreadTime")

        page = DashboardPage(driver, server.url)
        page.login(user.username, user.password, user.project_name)
        renders = []
        for _ in range(args.renders):
            page.goto("#/networks")
            page.wait(lambda d: page.js("return !window.__topology"), "the topology to close")
            cpu = thread_ms()
            page.topology()
            page.wait(lambda d: page.js("return window.__topology.firstPaintMs !== undefined"), "the first frame")
            render = page.js("const t = window.__topology; return {load: t.loadMs, layout: t.layoutMs, "
                             "paint: t.firstPaintMs, nodes: t.cy.nodes().length, edges: t.cy.edges().length}")
            render["cpu"] = thread_ms() - cpu
            renders.append(render)
        first_net = page.js("return [...window.__topology.model.network.keys()][0]")
        cpu = thread_ms()
        changes = [driver.execute_async_script(CHANGE_SCRIPT, first_net, f"bench-{i}") for i in range(args.changes)]
        change_cpu = (thread_ms() - cpu) / args.changes
        to_graph = [c[0] for c in changes]
        to_screen = [c[1] for c in changes]
        chromium = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True).stdout.strip()
        result = {
            "networks": built["networks"], "ports": built["ports"], "setup_seconds": round(setup_s, 1),
            "graph": {"nodes": renders[0]["nodes"], "edges": renders[0]["edges"]},
            "first_render_ms": {
                "best": round(min(r["paint"] for r in renders)),
                "median": round(statistics.median(r["paint"] for r in renders)),
                "median_load": round(statistics.median(r["load"] for r in renders)),
                "median_layout": round(statistics.median(r["layout"] for r in renders)),
                "median_main_thread_cpu": round(statistics.median(r["cpu"] for r in renders)),
            },
            "change_on_screen_ms": {"p50": round(percentile(to_screen, 0.5)), "p95": round(percentile(to_screen, 0.95)),
                                    "max": round(max(to_screen)), "p50_in_graph": round(percentile(to_graph, 0.5)),
                                    "main_thread_cpu_per_change": round(change_cpu)},
            "load_average": os.getloadavg()[0], "cpus": os.cpu_count(),
            "browser": chromium,
        }
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            print(f"{built['networks']} networks, {built['ports']} ports; graph {result['graph']['nodes']} nodes, "
                  f"{result['graph']['edges']} edges ({chromium})")
            fr = result["first_render_ms"]
            print(f"first render: best {fr['best']} ms, median {fr['median']} ms "
                  f"(load {fr['median_load']} ms, layout {fr['median_layout']} ms; "
                  f"main-thread CPU {fr['median_main_thread_cpu']} ms)")
            ch = result["change_on_screen_ms"]
            print(f"change on screen ({args.changes} port creates): p50 {ch['p50']} ms, p95 {ch['p95']} ms, "
                  f"max {ch['max']} ms (p50 into the graph {ch['p50_in_graph']} ms; "
                  f"main-thread CPU {ch['main_thread_cpu_per_change']} ms per change)")
            print(f"machine: {result['cpus']} CPUs, load average {result['load_average']:.1f}")
        return 0
    finally:
        if driver is not None:
            driver.quit()
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
