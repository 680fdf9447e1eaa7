"""Daemons that live inside a network namespace (radvd, keepalived): one per key (a router id).

Each daemon has a configuration file and a pid file under ``run_dir/<key>.*``; it is started with
``nsenter --net=/run/netns/<netns>`` and daemonizes itself, so it outlives the agent that started
it (an agent restart must not disturb routers). ``ensure`` is idempotent: a running daemon whose
configuration file already holds the wanted text is left alone (same pid), a changed one is
rewritten and the daemon told to reload (SIGHUP), a missing one is started and waited for. A
process is only signalled after its pid file's pid is checked to be this daemon (its ``comm``),
through :mod:`neutrino.dataplane.processes`.
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
from neutrino.dataplane.processes import process_facts, read_pid_file, terminate

Argv = Callable[[Path, Path], Sequence[str]]  # (config file, pid file) -> the daemon's arguments


class DaemonError(Exception):
    """A daemon did not start (its log's last lines say why) or could not be told to reload."""


@dataclass(frozen=True, slots=True)
class DaemonState:
    pid: int | None
    # Digest of the configuration file the daemon runs with (None: no daemon or no file).
    config_digest: str | None


def config_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class NamespacedDaemons:
    """The daemons of one program for one owner (host); ``run_dir`` is that owner's own directory."""

    def __init__(self, program: str, comm: str, run_dir: Path, argv: Argv, *, netns_dir: Path = NETNS_DIR,
                 start_timeout: float = 10.0) -> None:
        self.program = program
        self.comm = comm
        self.run_dir = run_dir
        self._argv = argv
        self._netns_dir = netns_dir
        self._start_timeout = start_timeout

    def config_path(self, key: str) -> Path:
        return self.run_dir / f"{key}.conf"

    def pid_path(self, key: str) -> Path:
        return self.run_dir / f"{key}.pid"

    def log_path(self, key: str) -> Path:
        return self.run_dir / f"{key}.log"

    def _pid(self, key: str) -> int | None:
        pid = read_pid_file(self.pid_path(key))
        facts = process_facts(pid) if pid is not None else None
        return pid if facts is not None and facts.comm == self.comm else None

    def keys(self) -> tuple[str, ...]:
        """Every key with a pid or configuration file here (running or left behind)."""
        if not self.run_dir.is_dir():
            return ()
        return tuple(sorted({p.name.rsplit(".", 1)[0] for p in self.run_dir.iterdir()
                             if p.suffix in (".pid", ".conf")}))

    def state(self, key: str) -> DaemonState:
        pid = self._pid(key)
        if pid is None:
            return DaemonState(None, None)
        try:
            text = self.config_path(key).read_text()
        except OSError:
            return DaemonState(pid, None)
        return DaemonState(pid, config_digest(text))

    async def ensure(self, key: str, netns: str, config: str) -> int:
        """The daemon for ``key`` runs in ``netns`` with ``config``; returns its pid."""
        namespace = self._netns_dir / checked_namespace_name(netns)
        if not namespace.exists():
            raise NamespaceNotFound(netns)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        conf = self.config_path(key)
        try:
            changed = conf.read_text() != config
        except OSError:
            changed = True
        if changed:
            conf.write_text(config)
        pid = self._pid(key)
        if pid is not None:
            if changed:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGHUP)
            return pid
        self.pid_path(key).unlink(missing_ok=True)
        argv = ["nsenter", f"--net={namespace}", self.program, *self._argv(conf, self.pid_path(key))]
        proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate()  # the daemon forks; the parent exits at once
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._start_timeout
        while loop.time() < deadline:
            pid = self._pid(key)
            if pid is not None:
                return pid
            await asyncio.sleep(0.05)
        raise DaemonError(f"{self.program} for {key} in {netns} did not start (exit {proc.returncode}): "
                          f"{err.decode().strip()} {self._log_tail(key)}".strip())

    def _log_tail(self, key: str, lines: int = 5) -> str:
        try:
            return " | ".join(self.log_path(key).read_text().splitlines()[-lines:])
        except OSError:
            return ""

    async def stop(self, key: str) -> None:
        """Stop the daemon of ``key`` (if it runs) and remove its files; none running is success."""
        pid = self._pid(key)
        if pid is not None:
            facts = process_facts(pid)
            if facts is not None:
                await terminate([facts])
        for path in (self.pid_path(key), self.config_path(key), self.log_path(key)):
            path.unlink(missing_ok=True)


__all__ = ["DaemonError", "DaemonState", "NamespacedDaemons", "config_digest"]
