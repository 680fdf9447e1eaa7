"""Which fullstack runs are alive on this machine, so that one killed mid-way does not leak forever.

A run that is killed (SIGKILL, a CI timeout) never reaches its tear-down. Its processes die with it
(they are started with a parent-death signal), but its namespaces would stay. So each run registers
itself in ``/run/neutrino-fullstack/<run id>`` with its pid and that process's start time, and every
new run first releases what registered runs whose process is gone left: the harness' namespaces
(``ft-<id>-*``) and its instances' (``nqi-*-<id>``), and what the run noted with ``remember``: a
private RabbitMQ node, a vhost, a database. Nothing else is ever touched.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
from pathlib import Path

from tests.fullstack.underlay import delete_namespace

REGISTRY = Path("/run/neutrino-fullstack")
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn`` for harness processes: SIGTERM when the process that started them dies."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _start_time(pid: int) -> str | None:
    try:
        # Field 22 of /proc/PID/stat, after the parenthesised command name (which may contain spaces).
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def register(run_id: str) -> None:
    """Record this process as the owner of ``run_id``."""
    REGISTRY.mkdir(parents=True, exist_ok=True)
    pid = os.getpid()
    partial = REGISTRY / f".{run_id}.new"  # never seen half-written by a concurrent reaper
    partial.write_text(f"{pid} {_start_time(pid)}\n")
    partial.replace(REGISTRY / run_id)


def remember(run_id: str, kind: str, *values: str) -> None:
    """Note something outside the kernel the run owns (``rabbit NODE DIR``, ``vhost NAME``, ``database NAME``)."""
    with open(REGISTRY / run_id, "a") as registry:
        registry.write(" ".join((kind, *values)) + "\n")


def unregister(run_id: str) -> None:
    (REGISTRY / run_id).unlink(missing_ok=True)


def _alive(record: str) -> bool:
    try:
        pid_text, started = record.splitlines()[0].split()
        return _start_time(int(pid_text)) == started
    except (ValueError, IndexError):
        return False


def _release(kind: str, values: list[str]) -> None:
    """Undo one ``remember``ed thing, if it looks like what the harness makes (never anything else)."""
    if kind == "rabbit" and len(values) == 2:
        node, base = values[0], Path(values[1])
        if node.startswith("neutrino-ft-") and base.name.startswith("neutrino-ft-rabbit-"):
            subprocess.run(["rabbitmqctl", "-n", node, "-q", "stop", str(base / "pid")], capture_output=True,
                           timeout=60, check=False)
            shutil.rmtree(base, ignore_errors=True)
    elif kind == "vhost" and len(values) == 1 and values[0].startswith("neutrino-ft-"):
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", values[0]], capture_output=True, timeout=60,
                       check=False)
    elif kind == "database" and len(values) == 1 and values[0].startswith("neutrino_test_"):
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc",
                        f'DROP DATABASE IF EXISTS "{values[0]}" WITH (FORCE)'], capture_output=True, timeout=60,
                       check=False)


def reap_abandoned_runs() -> list[str]:
    """Delete the namespaces (and stop the private broker) of registered runs whose process is gone."""
    if not REGISTRY.is_dir():
        return []
    reaped = []
    namespaces = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
    for entry in REGISTRY.iterdir():
        if entry.name.startswith("."):
            continue
        try:
            record = entry.read_text()
        except OSError:
            continue
        if _alive(record):
            continue
        run_id = entry.name
        for line in record.splitlines()[1:]:
            kind, *values = line.split()
            _release(kind, values)
            reaped.append(line)
        for name in namespaces:
            if name.startswith(f"ft-{run_id}-") or (name.startswith("nqi-") and name.endswith(f"-{run_id}")):
                delete_namespace(name)
                reaped.append(name)
        entry.unlink(missing_ok=True)
    return reaped
