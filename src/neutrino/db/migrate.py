"""Alembic migrations, driven in code: ``neutrino db upgrade`` and the server's start-up check."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from neutrino.db.engine import Database, make_private

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class SchemaOutOfDate(Exception):
    """The database is not at the code's schema head; the message says what to run."""


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    head = script.get_current_head()
    assert head is not None
    return head


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema to ``revision``; blocking (Alembic drives its own event loop here)."""
    make_private(url)  # before SQLite creates the file with the umask's mode
    command.upgrade(alembic_config(url), revision)


async def current_revision(db: Database) -> str | None:
    async with db.engine.connect() as conn:
        return await conn.run_sync(_current)


def _current(sync_conn: object) -> str | None:
    return MigrationContext.configure(sync_conn).get_current_revision()  # type: ignore[arg-type]


async def ensure_current(db: Database) -> None:
    """Refuse to serve an old schema: the operator must run ``neutrino db upgrade`` first."""
    current = await current_revision(db)
    head = head_revision()
    if current != head:
        raise SchemaOutOfDate(
            f"database schema is at revision {current or '(empty)'} but this Neutrino needs {head}; "
            "run `neutrino db upgrade --config FILE` first")


