"""Throw-away databases on the machine's shared PostgreSQL and MariaDB (unique names, dropped after)."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

BACKENDS = ("sqlite", "postgresql", "mysql")


def _psql(sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1",
                    "-qc", sql], check=True, capture_output=True)


def _mysql(sql: str) -> None:
    subprocess.run(["mysql", "-uroot", "-h127.0.0.1", "-e", sql], check=True, capture_output=True)


@contextmanager
def temporary_database(backend: str, sqlite_dir: str) -> Iterator[str]:
    """Yield an async SQLAlchemy URL for a fresh, empty database of ``backend``."""
    name = f"neutrino_test_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{sqlite_dir}/{name}.sqlite"
        return
    if backend == "postgresql":
        _psql(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
        finally:
            _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    if backend == "mysql":
        _mysql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        try:
            yield f"mysql+asyncmy://root@127.0.0.1:3306/{name}?charset=utf8mb4"
        finally:
            _mysql(f"DROP DATABASE IF EXISTS `{name}`")
        return
    raise ValueError(backend)
