"""Running the ASGI server under uvicorn, with clean shutdown on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import signal
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import uvicorn

from neutrino.api.transport import bounded_protocol
from neutrino.config import Settings
from neutrino.server import Server, build_server


def tune_garbage_collector() -> None:
    """Collect cycles less eagerly in a long-running server.

    A 10,000-row list holds a few hundred thousand containers until its response is written; at
    CPython's default thresholds (700, 10, 10) that runs hundreds of collections which re-scan the
    long-lived heap (modules, schema, cached SQL): about half the CPU of such a request. What
    exists once the server is built is frozen out of collection, and the young generation is
    collected once 100,000 more containers live than before (not 700). Garbage without cycles
    is freed by reference counting as before; 200,000 was faster still but let cyclic garbage
    add ~25 MB at 10,000 ports (docs/benchmarks.md).
    """
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


class AddressInUse(Exception):
    """A listen address is taken (or not ours to bind); said in one line, before any other work."""


@dataclass
class Listeners:
    """The sockets the server will serve on, bound before anything else happens."""

    api: socket.socket
    metrics: socket.socket | None = None

    def close(self) -> None:
        for sock in (self.api, self.metrics):
            if sock is not None:
                sock.close()


def bind_listener(host: str, port: int, what: str = "the API") -> socket.socket:
    """A bound (not yet listening) TCP socket on ``host:port``, or :class:`AddressInUse`."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise AddressInUse(f"cannot listen for {what} on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is no obstacle
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise AddressInUse(f"cannot listen for {what} on {host}:{port}: {exc.strerror.lower()}") from None
    sock.set_inheritable(True)
    return sock


def bind_listeners(settings: Settings) -> Listeners:
    """Bind the API port (and the metrics port if configured) first: a taken port is reported
    before the database is migrated or any agent starts."""
    api = bind_listener(settings.server.host, settings.server.port)
    listen = settings.server.metrics_listen
    if listen in ("", "off"):
        return Listeners(api)
    host, _, port = listen.rpartition(":")
    try:
        return Listeners(api, bind_listener(host.strip("[]"), int(port), "metrics"))
    except AddressInUse:
        api.close()
        raise


def _uvicorn(app: Any, sock: socket.socket, protocol: Any) -> tuple[uvicorn.Server, socket.socket]:
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", loop="asyncio",
                            http=protocol, timeout_graceful_shutdown=5)
    http = uvicorn.Server(config)
    http.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    return http, sock


async def run_uvicorn(server: Server, settings: Settings, listeners: Listeners,
                      on_started: Callable[[], Awaitable[None]] | None = None) -> int:
    protocol = bounded_protocol(settings.server.max_url_length, settings.server.max_header_size)
    servers = [_uvicorn(server.app, listeners.api, protocol)]
    if server.metrics_app is not None and listeners.metrics is not None:
        servers.append(_uvicorn(server.metrics_app, listeners.metrics, protocol))
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for http, _ in servers:
            http.should_exit = True
        server.dashboard.hub.close()  # open event streams would hold the shutdown for its whole grace time

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    tune_garbage_collector()
    tasks = [asyncio.create_task(http.serve(sockets=[sock])) for http, sock in servers]
    while not all(http.started for http, _ in servers) and not any(t.done() for t in tasks):
        await asyncio.sleep(0.05)
    if all(http.started for http, _ in servers) and on_started is not None:
        await on_started()
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    stop()
    await asyncio.gather(*tasks, return_exceptions=True)
    return 0


async def serve(settings: Settings) -> int:
    listeners = bind_listeners(settings)
    try:
        server = build_server(settings)
        try:
            await server.start()
            return await run_uvicorn(server, settings, listeners)
        finally:
            await server.close()
    finally:
        listeners.close()


def run_server(settings: Settings) -> int:
    """``neutrino server``: one process, or API and RPC worker processes (docs/configuration.md)."""
    from neutrino.cli.workers import Supervisor, plan_workers

    api, rpc = plan_workers(settings)
    if api == 1 and rpc == 0:
        return asyncio.run(serve(settings))
    return Supervisor(settings, api, rpc).run()
