"""A server on PostgreSQL and a broker vhost of its own, with no agent role: the tests of event
routing attach their own agents (listeners or a real role) to its bus."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.fullstack.broker import shared_broker_vhost
from tests.support.databases import temporary_database
from tests.support.live_server import LiveServer, start_server


@dataclass
class Rig:
    server: LiveServer
    bus_url: str
    tag: str


@contextmanager
def routing_rig(workdir: Path) -> Iterator[Rig]:
    with shared_broker_vhost() as url, temporary_database("postgresql", str(workdir / "db")) as db_url:
        tag = uuid.uuid4().hex[:6]
        config = f'[bus]\nurl = "{url}"\n[agent]\nhost = "srv-{tag}"\nroles = []\nagent_down_time_seconds = 900\n'
        server = start_server(workdir / "state", database_url=db_url, extra_config=config)
        try:
            yield Rig(server, url, tag)
        finally:
            server.stop()
