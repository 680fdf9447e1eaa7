"""The server survives its database restarting: requests fail cleanly while it is down, then work again.

The machine's shared PostgreSQL must never be restarted by a test, so this one runs a PostgreSQL of
its own (``initdb``/``pg_ctl`` from the installed server binaries, its own port and data directory)
and restarts that one under a running ``neutrino up``. A restart is what really drops every pooled
connection at once, idle and busy, and refuses new ones for a while: the pool must notice, answer
503 (never 500) while the database is away, and reconnect without the server being restarted.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.live_server import free_port, start_server
from tests.support.neutron_http import api, created, neutron_error, ok
from tests.support.tenants import cloud_persona

pytestmark = pytest.mark.postgres


def server_binary(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or ([shutil.which(name)] if shutil.which(name) else [])
    if not found:
        pytest.skip(f"PostgreSQL server binary {name} is not installed")
    return str(found[-1])


@dataclass
class PrivatePostgres:
    """A PostgreSQL instance of this test alone; run as the ``postgres`` user when we are root."""

    base: Path
    port: int

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/neutrino"

    def _run(self, *argv: str, timeout: float = 120) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=timeout, check=False)
        assert done.returncode == 0, f"{' '.join(argv)}: {done.stdout}{done.stderr}"

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres")
        self._run(server_binary("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.base} -c fsync=off"
        self._run(server_binary("pg_ctl"), "-D", str(self.data), "-l", str(self.base / "log"), "-o", options,
                  "-w", "start")

    def stop(self) -> None:
        self._run(server_binary("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def create_database(self) -> None:
        self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "postgres",
                  "-v", "ON_ERROR_STOP=1", "-qc", "CREATE DATABASE neutrino")


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    base = Path(tempfile.mkdtemp(prefix="neutrino-pg-"))
    base.chmod(0o755)
    instance = PrivatePostgres(base, free_port())
    try:
        instance.init()
        instance.start()
        instance.create_database()
        yield instance
    finally:
        subprocess.run([server_binary("pg_ctl"), "-D", str(instance.data), "-m", "immediate", "stop"],
                       capture_output=True, check=False,
                       **({"user": "postgres"} if os.geteuid() == 0 else {}))  # type: ignore[call-overload]
        shutil.rmtree(base, ignore_errors=True)


def other_client(client: httpx.Client) -> httpx.Client:
    """A second HTTP connection with the same token, so the server serves two requests at once."""
    return httpx.Client(base_url=client.base_url, headers=client.headers, timeout=30)


def test_requests_work_again_after_the_database_restarts(private_postgres: PrivatePostgres, tmp_path: Path) -> None:
    server = start_server(tmp_path / "state", database_url=private_postgres.url)
    try:
        with api(server, cloud_persona(server, "neutrino-admin")) as adm:
            before = created(adm.post("/networks", json={"network": {"name": f"before-{uuid.uuid4().hex[:6]}"}}),
                             "network")
            # Fill the pool with connections (several at once), so the restart kills more than one.
            with other_client(adm) as other:
                for _ in range(3):
                    ok(other.get("/networks"))
                    ok(adm.get("/ports"))

            private_postgres.stop()
            # While it is away: a clean, typed answer, never a 500 and never a hang.
            for resp in (adm.get("/networks"), adm.post("/networks", json={"network": {"name": "while-down"}})):
                neutron_error(resp, 503, "ServiceUnavailable")
            private_postgres.start()

            # Every request after the restart works: reads, writes, and reads on every pooled connection.
            for _ in range(12):
                assert before["id"] in [n["id"] for n in ok(adm.get("/networks"), "networks")]
            after = created(adm.post("/networks", json={"network": {"name": f"after-{uuid.uuid4().hex[:6]}"}}),
                            "network")
            names = {n["name"] for n in ok(adm.get("/networks"), "networks")}
            assert {before["name"], after["name"]} <= names and "while-down" not in names

            # A quick restart nobody asked anything during: not even the first request afterwards
            # may fail on a pooled connection the database closed.
            for _ in range(3):
                ok(other_client(adm).get("/networks"))
            private_postgres.stop()
            private_postgres.start()
            for _ in range(12):
                assert after["id"] in [n["id"] for n in ok(adm.get("/networks"), "networks")]
            created(adm.post("/networks", json={"network": {"name": f"again-{uuid.uuid4().hex[:6]}"}}), "network")
            assert server.process.poll() is None, "the server must not have exited"
    finally:
        server.stop()
