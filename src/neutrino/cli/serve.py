"""Running the ASGI server under uvicorn, with clean shutdown on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Awaitable, Callable

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


async def run_uvicorn(server: Server, settings: Settings,
                      on_started: Callable[[], Awaitable[None]] | None = None) -> int:
    protocol = bounded_protocol(settings.server.max_url_length, settings.server.max_header_size)
    config = uvicorn.Config(server.app, host=settings.server.host, port=settings.server.port, log_config=None,
                            access_log=False, lifespan="off", loop="asyncio", http=protocol,
                            timeout_graceful_shutdown=5)
    http = uvicorn.Server(config)
    http.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    loop = asyncio.get_running_loop()

    def stop() -> None:
        http.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    tune_garbage_collector()
    task = asyncio.create_task(http.serve())
    while not http.started and not task.done():
        await asyncio.sleep(0.05)
    if http.started and on_started is not None:
        await on_started()
    await task
    return 0


async def serve(settings: Settings) -> int:
    server = build_server(settings)
    try:
        await server.start()
        return await run_uvicorn(server, settings)
    finally:
        await server.close()
