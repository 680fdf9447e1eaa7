"""Finding and stopping the processes Neutrino started, by pid file or by the namespace they run in.

A pid file alone is weak evidence (the pid may have been reused by an unrelated program), so a
process is only ever signalled after checking what it is (its ``comm``) and, where known, which
network namespace it runs in; the signal then goes through a pidfd opened *before* that check, so
it cannot reach a process that replaced the checked one. Reads come from /proc, so nothing here
needs a helper program.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class NamespaceIdentity:
    """What identifies a network namespace: the (device, inode) of its nsfs file."""

    device: int
    inode: int


@dataclass(frozen=True, slots=True)
class ProcessFacts:
    pid: int
    # The kernel's short command name (/proc/PID/comm, at most 15 characters).
    comm: str
    namespace: NamespaceIdentity | None


def namespace_identity(path: Path) -> NamespaceIdentity | None:
    """Identity of the namespace bound at ``path`` (e.g. /run/netns/NAME), or None if unbound."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return NamespaceIdentity(st.st_dev, st.st_ino)


def process_facts(pid: int) -> ProcessFacts | None:
    """What /proc says about ``pid``, or None if it is gone (or a zombie nobody needs to stop)."""
    try:
        comm = (PROC / str(pid) / "comm").read_text().strip()
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The state letter follows the parenthesised comm, which may itself contain ')'.
    if stat[stat.rfind(")") + 2 : stat.rfind(")") + 3] == "Z":
        return None
    return ProcessFacts(pid, comm, namespace_identity(PROC / str(pid) / "ns" / "net"))


def read_pid_file(path: Path) -> int | None:
    """The pid in a pid file, or None if the file is absent or holds no pid."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def processes_in_namespace(identity: NamespaceIdentity) -> tuple[ProcessFacts, ...]:
    """Every live process whose network namespace is ``identity``."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        facts = process_facts(int(entry.name))
        if facts is not None and facts.namespace == identity:
            found.append(facts)
    return tuple(found)


def _alive(pid: int) -> bool:
    return process_facts(pid) is not None


async def terminate(
    processes: Iterable[ProcessFacts], *, grace_seconds: float = 5.0, poll_seconds: float = 0.05
) -> tuple[ProcessFacts, ...]:
    """SIGTERM each process that still is what ``processes`` says, SIGKILL what outlives the grace.

    Returns the processes that were signalled (and are gone now). A process that already exited,
    or whose pid now belongs to something else, is left alone and not returned.
    """
    signalled: list[tuple[ProcessFacts, int]] = []
    for expected in processes:
        try:
            pidfd = os.pidfd_open(expected.pid)
        except ProcessLookupError:
            continue
        now = process_facts(expected.pid)
        if now is None or now.comm != expected.comm or (
            expected.namespace is not None and now.namespace != expected.namespace
        ):
            os.close(pidfd)
            continue
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(pidfd, signal.SIGTERM)
        signalled.append((expected, pidfd))
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_seconds
        while any(_alive(p.pid) for p, _ in signalled) and loop.time() < deadline:
            await asyncio.sleep(poll_seconds)
        for facts, pidfd in signalled:
            if _alive(facts.pid):
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        deadline = loop.time() + grace_seconds
        while any(_alive(p.pid) for p, _ in signalled) and loop.time() < deadline:
            await asyncio.sleep(poll_seconds)
    finally:
        for _, pidfd in signalled:
            os.close(pidfd)
    return tuple(facts for facts, _ in signalled)
