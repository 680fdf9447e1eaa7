"""Long-running processes inside a network namespace, found again by their pid file.

One job, shared by every daemon an agent keeps in a namespace (radvd and keepalived in router
namespaces, dnsmasq in ``qdhcp-``, the metadata proxy in either): start a program inside a named
namespace (``nsenter --net=/run/netns/<netns>``), find it again from its pid file, tell it to
reload (SIGHUP) and stop it. The drivers decide what to run and which files it reads; this module
never writes a file the program reads, only removes the pid file it owns.

A process runs detached from the agent (it daemonizes itself, or is started in its own session),
so it outlives an agent restart; the next agent *adopts* it from the pid file with the same pid.
A pid file alone is weak evidence (the pid may have been reused), so a process counts as the
daemon only if /proc shows the program (its ``comm``, or a mark in its command line where the
``comm`` is the interpreter's), a command line that names this very pid file, and, when the caller
says where it should run, that namespace. Signals go through
:func:`neutrino.dataplane.processes.terminate` (pidfd after the check).

:class:`NamespacedDaemons` is the common shape on top of it for a daemon configured by one file per
key (radvd, keepalived): ``<run_dir>/<key>.conf``, ``.pid``, ``.log``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from neutrino.contract.names import checked_namespace_name
from neutrino.dataplane.netlink import NETNS_DIR, NamespaceNotFound
from neutrino.dataplane.processes import (
    ProcessFacts,
    namespace_identity,
    process_facts,
    read_pid_file,
    terminate,
)


class DaemonError(Exception):
    """A daemon did not start (its output or log's last lines say why)."""


@dataclass(frozen=True, slots=True)
class Program:
    """What a daemon is: how it is started and how its process is recognised."""

    # The command before the daemon's own arguments: ("dnsmasq",), (python, "-m", module).
    command: tuple[str, ...]
    # /proc/PID/comm of the daemon (None where it is the interpreter's, e.g. python3).
    comm: str | None = None
    # An argument its command line must hold, for programs whose comm does not name them.
    mark: str | None = None
    # True: the program forks into the background itself, and the launching command exits (non-zero
    # on failure). False: it stays in the foreground; it is started in a session of its own, with
    # its output appended to the log file.
    daemonizes: bool = True
    # How long a started daemon may take to write its pid file.
    start_timeout: float = 10.0


def _cmdline(pid: int) -> tuple[str, ...]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ()
    return tuple(part.decode(errors="replace") for part in raw.split(b"\0") if part)


class DaemonRunner:
    """Runs one program in namespaces: one process per pid file, which the caller names."""

    def __init__(self, program: Program, *, netns_dir: Path = NETNS_DIR) -> None:
        self.program = program
        self.netns_dir = netns_dir

    def namespace_path(self, netns: str) -> Path:
        return self.netns_dir / checked_namespace_name(netns)

    def find(self, pid_file: Path, netns: str | None = None) -> ProcessFacts | None:
        """The live daemon named by ``pid_file`` (running in ``netns`` when given), or None."""
        pid = read_pid_file(pid_file)
        facts = process_facts(pid) if pid is not None else None
        if facts is None or (self.program.comm is not None and facts.comm != self.program.comm):
            return None
        cmdline = _cmdline(facts.pid)
        if self.program.mark is not None and self.program.mark not in cmdline:
            return None
        if not any(str(pid_file) in part for part in cmdline):
            return None  # a reused pid: some other process, or the same program for another key
        if netns is not None:
            inside = namespace_identity(self.namespace_path(netns))
            if inside is None or facts.namespace != inside:
                return None
        return facts

    def arguments(self, facts: ProcessFacts) -> tuple[str, ...]:
        """The arguments the daemon runs with (its command line after the program's command)."""
        return _cmdline(facts.pid)[len(self.program.command):]

    def reload(self, facts: ProcessFacts) -> None:
        """SIGHUP: the daemon re-reads its files (a daemon that just exited is no error)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(facts.pid, signal.SIGHUP)

    async def start(self, netns: str, arguments: Sequence[str], pid_file: Path, *,
                    log_file: Path | None = None) -> ProcessFacts:
        """Start the daemon in ``netns``; returns it once its pid file names it. The caller has
        checked that none runs for ``pid_file`` (a stale pid file is removed here)."""
        namespace = self.namespace_path(netns)
        if not namespace.exists():
            raise NamespaceNotFound(netns)
        pid_file.unlink(missing_ok=True)
        argv = ["nsenter", f"--net={namespace}", *self.program.command, *arguments]
        failure = ""
        if self.program.daemonizes:
            launcher = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE)
            # The daemon forks once it is set up; the launching command exits then.
            _, err = await asyncio.wait_for(launcher.communicate(), timeout=30)
            failure = f"(exit {launcher.returncode}) {err.decode().strip()}"
            if launcher.returncode != 0:
                raise DaemonError(f"{self._name} in {netns} failed {failure} {_tail(log_file)}".strip())
        else:
            with open(log_file if log_file is not None else os.devnull, "ab") as log:
                await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL, stdout=log,
                                                     stderr=log, start_new_session=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.program.start_timeout
        while (started := self.find(pid_file, netns)) is None:
            if loop.time() >= deadline:
                raise DaemonError(f"{self._name} in {netns} did not start (no pid in {pid_file}) "
                                  f"{failure} {_tail(log_file)}".strip())
            await asyncio.sleep(0.02)
        return started

    async def stop(self, pid_file: Path, netns: str | None = None) -> bool:
        """Stop the daemon named by ``pid_file`` (in ``netns`` when given; anywhere otherwise, e.g.
        after its namespace was removed) and remove the pid file; True if it ran."""
        found = self.find(pid_file, netns)
        if found is not None:
            await terminate([found])
        pid_file.unlink(missing_ok=True)
        return found is not None

    @property
    def _name(self) -> str:
        return self.program.mark or self.program.command[0]


def _tail(log_file: Path | None, lines: int = 5) -> str:
    if log_file is None:
        return ""
    try:
        return " | ".join(log_file.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# ---- daemons configured by one file per key (radvd, keepalived) -----------------------------------------

Argv = Callable[[Path, Path], Sequence[str]]  # (config file, pid file) -> the daemon's arguments


@dataclass(frozen=True, slots=True)
class DaemonState:
    pid: int | None
    # Digest of the configuration file the daemon runs with (None: no daemon or no file).
    config_digest: str | None


def config_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class NamespacedDaemons:
    """The daemons of one program for one owner (host), one per key (a router id); ``run_dir`` is that
    owner's own directory, holding ``<key>.conf``, ``<key>.pid``, ``<key>.log`` and whatever else the
    program keeps as ``<key>.*`` (all removed by :meth:`stop`).

    ``ensure`` is idempotent: a running daemon whose configuration file already holds the wanted text
    is left alone (same pid), a changed one is rewritten and the daemon told to reload (SIGHUP), a
    missing one is started and waited for.
    """

    def __init__(self, program: str, comm: str, run_dir: Path, argv: Argv, *, netns_dir: Path = NETNS_DIR,
                 start_timeout: float = 10.0) -> None:
        self.runner = DaemonRunner(Program((program,), comm=comm, start_timeout=start_timeout), netns_dir=netns_dir)
        self.run_dir = run_dir
        self._argv = argv

    def config_path(self, key: str) -> Path:
        return self.run_dir / f"{key}.conf"

    def pid_path(self, key: str) -> Path:
        return self.run_dir / f"{key}.pid"

    def log_path(self, key: str) -> Path:
        return self.run_dir / f"{key}.log"

    def keys(self) -> tuple[str, ...]:
        """Every key with a pid or configuration file here (running or left behind)."""
        if not self.run_dir.is_dir():
            return ()
        return tuple(sorted({p.name.split(".", 1)[0] for p in self.run_dir.iterdir()
                             if p.suffix in (".pid", ".conf")}))

    def state(self, key: str) -> DaemonState:
        found = self.runner.find(self.pid_path(key))
        if found is None:
            return DaemonState(None, None)
        try:
            text = self.config_path(key).read_text()
        except OSError:
            return DaemonState(found.pid, None)
        return DaemonState(found.pid, config_digest(text))

    async def ensure(self, key: str, netns: str, config: str) -> int:
        """The daemon for ``key`` runs in ``netns`` with ``config``; returns its pid."""
        if not self.runner.namespace_path(netns).exists():
            raise NamespaceNotFound(netns)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        conf = self.config_path(key)
        try:
            changed = conf.read_text() != config
        except OSError:
            changed = True
        if changed:
            conf.write_text(config)
        found = self.runner.find(self.pid_path(key))
        if found is not None:
            if changed:
                self.runner.reload(found)
            return found.pid
        started = await self.runner.start(netns, self._argv(conf, self.pid_path(key)), self.pid_path(key),
                                          log_file=self.log_path(key))
        return started.pid

    async def stop(self, key: str) -> None:
        """Stop the daemon of ``key`` (if it runs) and remove its files; none running is success."""
        await self.runner.stop(self.pid_path(key))
        if self.run_dir.is_dir():
            for path in self.run_dir.glob(f"{key}.*"):
                path.unlink(missing_ok=True)


__all__ = ["DaemonError", "DaemonRunner", "DaemonState", "NamespacedDaemons", "Program", "config_digest"]
