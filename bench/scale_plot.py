"""Draw ``bench/scale_sim.py``'s results against N: messages, server CPU and convergence time.

    .venv/bin/python bench/scale_plot.py results.json [more.json ...] --out docs/benchmarks

Writes ``<out>-scale-messages.png``, ``<out>-scale-cpu.png`` and ``<out>-scale-converge.png``.
Needs matplotlib, which only this script uses (``pip install matplotlib``; not a dependency of
neutrino itself).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _series(results: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    pts = sorted((r["hosts"], r[key]) for r in results if r.get(key) is not None)
    return [p[0] for p in pts], [p[1] for p in pts]


def _figure(results: list[dict[str, Any]], keys: dict[str, str], ylabel: str, title: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for key, label in keys.items():
        xs, ys = _series(results, key)
        if xs:
            ax.plot(xs, ys, marker="o", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("simulated hosts (N)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    args = parser.parse_args()
    results: list[dict[str, Any]] = []
    for path in args.inputs:
        data = json.loads(path.read_text())
        results.extend(data["results"] if isinstance(data, dict) else data)
    out = str(args.out)
    _figure(results, {"events_per_port_create": "port create (5 hosts per network)",
                      "events_per_port_create_default_group": "port create, default group",
                      "events_per_network_create": "network + subnet create",
                      "events_per_network_update": "network update"},
            "events delivered to agents per operation", "Messages per operation", Path(out + "-scale-messages.png"))
    _figure(results, {"server_cpu_ms_per_heartbeat": "server CPU per heartbeat (ms)"},
            "ms", "Server CPU per heartbeat (all workers)", Path(out + "-scale-cpu.png"))
    _figure(results, {"converge_after_server_restart_s": "after a server restart",
                      "converge_after_broker_restart_s": "after a broker restart"},
            "seconds until every host resynced", "Convergence after a restart", Path(out + "-scale-converge.png"))


if __name__ == "__main__":
    main()
