"""Shared fixtures: live servers started the way users start them, one per database backend."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.databases import temporary_database
from tests.support.live_server import LiveServer, start_server


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Kernel tests need root; without it they would fail for the wrong reason.
    if os.geteuid() != 0:
        for item in items:
            if item.get_closest_marker("kernel"):
                item.add_marker(pytest.mark.skip(reason="kernel tests need root"))


def _live(backend: str, tmp: Path) -> Iterator[LiveServer]:
    with temporary_database(backend, str(tmp)) as url:
        server = start_server(tmp / "state", database_url=url)
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One all-in-one server on SQLite for the whole session (tests use unique names)."""
    yield from _live("sqlite", tmp_path_factory.mktemp("live-sqlite"))


@pytest.fixture(scope="session", params=[
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
    pytest.param("mysql", marks=pytest.mark.mysql),
])
def any_backend_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The same API tests against SQLite, PostgreSQL and MariaDB."""
    yield from _live(request.param, tmp_path_factory.mktemp(f"live-{request.param}"))
