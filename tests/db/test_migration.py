"""The one migration on each backend: it builds exactly the tables the code declares, seeds the
identity's default domain, and comes down and goes up again cleanly.

Run the way ``neutrino db upgrade`` runs it (Alembic over the async engine), on a throw-away
database of SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select

import neutrino.db.schema.all  # noqa: F401  (every table on the metadata)
from neutrino.db.engine import Database
from neutrino.db.migrate import alembic_config, head_revision, upgrade
from neutrino.db.schema.base import metadata
from neutrino.db.schema.identity import DEFAULT_DOMAIN_ROW, domains
from tests.support.databases import temporary_database

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres),
            pytest.param("mysql", marks=pytest.mark.mysql)]


def _schema_differences(sync_conn: object) -> list[object]:
    context = MigrationContext.configure(sync_conn, opts={"compare_type": True})  # type: ignore[arg-type]
    return list(compare_metadata(context, metadata))


def _tables(sync_conn: object) -> set[str]:
    return set(inspect(sync_conn).get_table_names())


async def _inspect(url: str) -> tuple[list[object], set[str], list[dict[str, object]], str | None]:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            diffs = await conn.run_sync(_schema_differences)
            tables = await conn.run_sync(_tables)
            rows = [dict(r) for r in (await conn.execute(select(domains))).mappings()] if "domains" in tables else []
            revision = await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())
        return diffs, tables, rows, revision
    finally:
        await db.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_migration_matches_the_code_and_seeds_the_default_domain(backend: str, tmp_path: Path) -> None:
    with temporary_database(backend, str(tmp_path)) as url:
        upgrade(url)
        diffs, tables, rows, revision = asyncio.run(_inspect(url))
        assert revision == head_revision()
        assert diffs == [], f"the migration and db/schema differ on {backend}: {diffs}"
        assert {"address_groups", "address_associations", "routers", "domains"} <= tables
        assert rows == [DEFAULT_DOMAIN_ROW]

        # Down to nothing and up again: the seed comes back once, not twice.
        command.downgrade(alembic_config(url), "base")
        _, tables, _, revision = asyncio.run(_inspect(url))
        assert tables <= {"alembic_version"} and revision is None
        upgrade(url)
        _, _, rows, revision = asyncio.run(_inspect(url))
        assert revision == head_revision() and rows == [DEFAULT_DOMAIN_ROW]
