"""``neutrino server`` as worker processes: API workers on one shared socket, RPC workers for agents.

The supervisor binds the listening socket, then starts ``api_workers`` processes that accept on it
(the kernel spreads connections) and ``rpc_workers`` processes that only answer the agents' RPC on
the bus; a worker that dies is started again. Nothing one worker must see lives in another's
memory: state is in the shared database, live events come over the bus (``server.changes``), and
``/metrics`` adds up every worker through prometheus_client's multiprocess directory.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import tempfile
import time
import uuid
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING

from neutrino.config import ConfigError, Settings

if TYPE_CHECKING:
    from neutrino.cli.serve import Listeners

log = logging.getLogger(__name__)

# A worker that exits within this many seconds of its start has a problem restarting cannot fix
# (schema out of date, database refused): the server stops with its exit status instead of looping.
EARLY_EXIT_SECONDS = 10.0


def can_run_workers(settings: Settings) -> bool:
    """Workers share nothing in memory: they need a database and a bus every process reaches."""
    return not settings.database_url.startswith("sqlite") and not settings.bus.url.startswith("memory")


def plan_workers(settings: Settings) -> tuple[int, int]:
    """(API workers, RPC workers) for ``neutrino server``; (1, 0) is one process doing everything."""
    server = settings.server
    if server.api_workers == 0 or server.api_workers < -1 or server.rpc_workers < -1:
        raise ConfigError("[server] api_workers must be at least 1 and rpc_workers at least 0 (-1: the default)")
    shared = can_run_workers(settings)
    api = server.api_workers if server.api_workers >= 1 else (os.cpu_count() or 1) if shared else 1
    rpc = server.rpc_workers if server.rpc_workers >= 0 else 1 if shared else 0
    if (api > 1 or rpc > 0) and not shared:
        raise ConfigError(
            f"[server] api_workers = {api} and rpc_workers = {rpc} need worker processes, which share "
            "nothing in memory: set [database] url to PostgreSQL or MySQL and [bus] url to amqp://, or "
            "run one process (api_workers = 1, rpc_workers = 0)")
    return api, rpc


@dataclass
class _Slot:
    kind: str  # "api" | "rpc"
    index: int
    process: BaseProcess | None = None
    started: float = 0.0


class Supervisor:
    def __init__(self, settings: Settings, api: int, rpc: int) -> None:
        self.settings = settings
        self.slots = [_Slot("api", i) for i in range(api)] + [_Slot("rpc", i) for i in range(rpc)]
        self.stopping = False
        self.context = multiprocessing.get_context("spawn")
        # One start of this server host: every worker (a restarted one too) names it to the agents,
        # so they resync when the host restarts, not when a heartbeat lands on another worker.
        self.epoch = uuid.uuid4().hex

    def _start(self, slot: _Slot, listeners: Listeners) -> None:
        process = self.context.Process(target=worker_main, name=f"neutrino-{slot.kind}-{slot.index}",
                                       args=(self.settings, slot.kind, listeners if slot.kind == "api" else None, self.epoch))
        process.start()
        slot.process, slot.started = process, time.monotonic()
        log.info("started %s worker %d (pid %s)", slot.kind, slot.index, process.pid)

    def _stop(self, *_: object) -> None:
        self.stopping = True

    def run(self) -> int:
        from neutrino.cli.serve import bind_listeners

        listeners = bind_listeners(self.settings)  # the API's (and metrics') sockets, shared by API workers
        metrics_dir = tempfile.mkdtemp(prefix="neutrino-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # the workers inherit it
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._stop)
        status = 0
        try:
            for slot in self.slots:
                self._start(slot, listeners)
            while not self.stopping:
                sentinels = [s.process.sentinel for s in self.slots if s.process is not None]
                multiprocessing.connection.wait(sentinels, timeout=0.5)
                for slot in self.slots:
                    process = slot.process
                    if self.stopping or process is None or process.is_alive():
                        continue
                    code = process.exitcode or 0
                    if time.monotonic() - slot.started < EARLY_EXIT_SECONDS and code != 0:
                        log.error("%s worker %d exited with %s right after starting: stopping",
                                  slot.kind, slot.index, code)
                        status = code if code > 0 else 1
                        self.stopping = True
                        break
                    log.warning("%s worker %d (pid %s) exited with %s: starting it again",
                                slot.kind, slot.index, process.pid, code)
                    self._start(slot, listeners)
        finally:
            self._shutdown()
            listeners.close()
            shutil.rmtree(metrics_dir, ignore_errors=True)
        return status

    def _shutdown(self) -> None:
        alive = [s.process for s in self.slots if s.process is not None and s.process.is_alive()]
        for process in alive:
            process.terminate()
        deadline = time.monotonic() + 15
        for process in alive:
            process.join(max(deadline - time.monotonic(), 0.1))
            if process.is_alive():
                process.kill()
                process.join()


def worker_main(settings: Settings, kind: str, listeners: Listeners | None, epoch: str) -> None:
    """A worker process (started by :class:`Supervisor` with the spawn method)."""
    from neutrino.db.migrate import SchemaOutOfDate
    from neutrino.logging_setup import configure_logging

    configure_logging(settings.server.log_level)
    try:
        code = asyncio.run(_api_worker(settings, listeners, epoch) if kind == "api" else _rpc_worker(settings, epoch))
    except SchemaOutOfDate as exc:
        log.error("%s", exc)
        code = 3
    except KeyboardInterrupt:
        code = 0
    raise SystemExit(code)


async def _api_worker(settings: Settings, listeners: Listeners | None, epoch: str) -> int:
    from neutrino.cli.serve import run_uvicorn
    from neutrino.server import build_server

    server = build_server(settings, role="api", epoch=epoch)
    try:
        # With no RPC workers, the API workers answer the agents (and contend for the lease) too.
        await server.start(answer_agents=plan_workers(settings)[1] == 0)
        assert listeners is not None
        return await run_uvicorn(server, settings, listeners)
    finally:
        await server.close()


async def _rpc_worker(settings: Settings, epoch: str) -> int:
    from neutrino.server import build_server

    server = build_server(settings, role="rpc", epoch=epoch)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopped.set)
    try:
        await server.start()
        await stopped.wait()
        return 0
    finally:
        await server.close()
