"""Fixtures for identity API tests: an in-process app, and a live server on 127.0.0.1 for real clients.

Both mount the identity at ``/identity`` inside a tiny app whose ``GET /`` is a network versions
document, as the Neutrino server does. Their clock is movable so expiry is tested without waiting.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from argon2 import PasswordHasher
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

import neutrino.db.schema.identity  # noqa: F401  (registers the identity tables on the metadata)
from neutrino.config import Settings
from neutrino.db.engine import Database
from neutrino.db.schema.base import metadata
from neutrino.identity.app import build_identity_app
from neutrino.identity.model import BootstrapResult
from neutrino.identity.passwords import PasswordHashing
from neutrino.identity.store import IdentityStore, bootstrap

ADMIN_PASSWORD = "admin-secret"
DEMO_PASSWORD = "demo-secret"
SERVICE_PASSWORD = "service-secret"


class MovableClock:
    """Real time plus an offset tests may move forward (read from the server's thread too)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


async def _network_versions(request: Request) -> JSONResponse:
    url = str(request.base_url).rstrip("/")
    return JSONResponse({"versions": [{"id": "v2.0", "status": "CURRENT",
                                       "links": [{"rel": "self", "href": f"{url}/v2.0/"}]}]})


def server_app(db: Database, store: IdentityStore, public_url: str) -> Starlette:
    return Starlette(routes=[
        Route("/", _network_versions),
        Mount("/identity", build_identity_app(db, Settings(), public_url=public_url, store=store)),
    ])


async def make_database(path: Path) -> Database:
    db = Database(f"sqlite+aiosqlite:///{path}")
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    return db


# ---- in-process ----------------------------------------------------------------------------------


@dataclass
class InProcessIdentity:
    client: httpx.AsyncClient
    store: IdentityStore
    clock: MovableClock
    ids: BootstrapResult
    admin_password: str = ADMIN_PASSWORD
    demo_password: str = DEMO_PASSWORD

    async def token(self, name: str, password: str, project: str) -> str:
        response = await self.client.post("/identity/v3/auth/tokens", json=self.password_auth(name, password, project))
        assert response.status_code == 201, response.text
        return response.headers["X-Subject-Token"]

    @staticmethod
    def password_auth(name: str, password: str, project: str | None = None) -> dict[str, Any]:
        """A token request as tempest sends it: user and project by name, domain by name."""
        auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {
            "user": {"name": name, "password": password, "domain": {"name": "Default"}}}}}
        if project is not None:
            auth["scope"] = {"project": {"name": project, "domain": {"name": "Default"}}}
        return {"auth": auth}


@pytest_asyncio.fixture(loop_scope="function")
async def identity(tmp_path) -> Any:
    db = await make_database(tmp_path / "identity.sqlite")
    clock = MovableClock()
    # Real argon2id with test-sized cost; the live server below keeps the production cost.
    store = IdentityStore(db, clock=clock,
                          hashing=PasswordHashing(PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)))
    ids = await bootstrap(db, admin_password=ADMIN_PASSWORD, demo_password=DEMO_PASSWORD,
                          service_password=SERVICE_PASSWORD, store=store)
    app = server_app(db, store, "http://neutrino.test:9696")
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://neutrino.test:9696") as client:
            yield InProcessIdentity(client=client, store=store, clock=clock, ids=ids)
    finally:
        await db.dispose()


# ---- live server ---------------------------------------------------------------------------------


@dataclass
class LiveIdentity:
    base_url: str
    clock: MovableClock
    ids: BootstrapResult
    tmp_dir: Path
    admin_password: str = ADMIN_PASSWORD
    demo_password: str = DEMO_PASSWORD
    service_password: str = SERVICE_PASSWORD
    _errors: list[BaseException] = field(default_factory=list)

    @property
    def auth_url(self) -> str:
        return f"{self.base_url}/identity/v3"


@pytest.fixture(scope="module")
def live_identity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveIdentity]:
    """The identity served by uvicorn on a free port of 127.0.0.1, in a thread with its own loop."""
    tmp_dir = tmp_path_factory.mktemp("live-identity")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    clock = MovableClock()
    state: dict[str, Any] = {}
    errors: list[BaseException] = []

    async def serve() -> None:
        db = await make_database(tmp_dir / "identity.sqlite")
        try:
            store = IdentityStore(db, clock=clock)
            state["ids"] = await bootstrap(db, admin_password=ADMIN_PASSWORD, demo_password=DEMO_PASSWORD,
                                           service_password=SERVICE_PASSWORD, store=store)
            server = uvicorn.Server(uvicorn.Config(server_app(db, store, base_url), log_level="warning",
                                                   lifespan="off"))
            state["server"] = server
            await server.serve(sockets=[sock])
        finally:
            await db.dispose()

    def run() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:  # reported to the waiting test below
            errors.append(exc)

    thread = threading.Thread(target=run, name="live-identity", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not (state.get("server") and state["server"].started):
            if errors or not thread.is_alive():
                raise RuntimeError(f"identity server did not start: {errors!r}")
            if time.monotonic() > deadline:
                raise TimeoutError("identity server did not start within 30 s")
            time.sleep(0.02)
        yield LiveIdentity(base_url=base_url, clock=clock, ids=state["ids"], tmp_dir=tmp_dir, _errors=errors)
    finally:
        if "server" in state:
            state["server"].should_exit = True
        thread.join(timeout=15)
        sock.close()
