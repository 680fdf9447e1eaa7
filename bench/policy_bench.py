"""Policy benchmark: how long a member's list of 10,000 ports takes to filter by policy.

What ``GET /v2.0/ports`` spends in the policy engine for a member (rule check per port, then the
attribute filter): the pure cost, without HTTP or the database. Moved out of the unit tests, where a
wall-clock bound failed on a busy machine::

    .venv/bin/python bench/policy_bench.py                 # best of 5 runs over 10,000 ports
    .venv/bin/python bench/policy_bench.py --ports 50000 --runs 3
"""

from __future__ import annotations

import argparse
import time

from neutrino.policy.engine import PolicyEngine
from neutrino.policy.rules import Credentials

MEMBER = Credentials("alice", "proj-a", frozenset({"member", "reader"}))
PORT_FIELDS = ("id", "name", "project_id", "network_id", "tags", "binding:host_id", "binding:vif_type",
               "binding:vif_details", "binding:profile", "binding:vnic_type")


def ports(count: int) -> list[dict]:
    """A member's view: a third owned by another project, on networks a fifth of which are others'."""
    return [{"id": f"p{i}", "name": "", "project_id": "proj-a" if i % 3 else "proj-b", "network_id": "n1",
             "network:project_id": "proj-a" if i % 5 else "proj-c", "tags": [], "binding:host_id": "h1",
             "binding:vif_type": "bridge", "binding:vif_details": {}, "binding:profile": {},
             "binding:vnic_type": "normal"} for i in range(count)]


def filter_once(engine: PolicyEngine, items: list[dict]) -> tuple[int, float]:
    started = time.perf_counter()
    view = engine.for_context(MEMBER)
    fields = view.attribute_filter("port", PORT_FIELDS)
    shown = [fields.readable(p) for p in items if view.check("get_port", p)]
    return len(shown), time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ports", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    items = ports(args.ports)
    times = []
    for _ in range(args.runs):
        shown, seconds = filter_once(PolicyEngine(), items)  # a fresh engine: no warm per-caller cache
        times.append(seconds)
    print(f"policy filter of {args.ports} ports for a member ({shown} shown): best {min(times) * 1000:.1f} ms, "
          f"median {sorted(times)[len(times) // 2] * 1000:.1f} ms over {args.runs} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
