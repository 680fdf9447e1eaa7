"""``neutrino identity ...`` commands against a real (temporary) database."""

import argparse
import io

import pytest
import pytest_asyncio

import neutrino.db.schema.identity  # noqa: F401  (registers the identity tables on the metadata)
from neutrino.config import Settings
from neutrino.db.engine import Database
from neutrino.db.schema.base import metadata
from neutrino.identity.cli import format_table, register
from neutrino.identity.store import bootstrap

in_test_loop = pytest.mark.asyncio(loop_scope="function")


async def _fresh_database(tmp_path, *, bootstrapped):
    settings = Settings()
    settings.database.url = f"sqlite+aiosqlite:///{tmp_path / 'identity.sqlite'}"
    db = Database(settings.database_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        if bootstrapped:
            await bootstrap(db, admin_password="admin-pw")
    finally:
        await db.dispose()
    return settings


@pytest_asyncio.fixture(loop_scope="function")
async def settings(tmp_path):
    return await _fresh_database(tmp_path, bootstrapped=True)


def _parser():
    parser = argparse.ArgumentParser(prog="neutrino")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


async def _run(settings, *argv):
    args = _parser().parse_args(["identity", *argv])
    out = io.StringIO()
    status = await args.handler(args, settings, out=out)
    return status, out.getvalue()


@in_test_loop
async def test_project_create_then_list(settings):
    status, out = await _run(settings, "project", "create", "web", "--description", "web tier")
    assert status == 0 and "web tier" in out
    status, out = await _run(settings, "project", "list")
    assert status == 0
    header, *rows = out.splitlines()
    assert header.split() == ["ID", "NAME", "DOMAIN", "ENABLED", "DESCRIPTION"]
    assert sorted(r.split()[1] for r in rows) == ["admin", "service", "web"]


@in_test_loop
async def test_user_create_with_project_grants_member(settings):
    await _run(settings, "project", "create", "web")
    status, out = await _run(settings, "user", "create", "alice", "--password", "s3cret", "--project", "web")
    assert status == 0 and "alice" in out and "s3cret" not in out
    status, out = await _run(settings, "role", "assignment", "list", "--user", "alice")
    assert out.splitlines()[1].split() == ["member", "alice", "web"]


@in_test_loop
async def test_role_add_is_idempotent(settings):
    await _run(settings, "project", "create", "web")
    await _run(settings, "user", "create", "bob", "--password", "pw")
    status, out = await _run(settings, "role", "add", "--project", "web", "--user", "bob", "reader")
    assert status == 0 and "granted" in out
    status, out = await _run(settings, "role", "add", "--project", "web", "--user", "bob", "reader")
    assert status == 0 and "already granted" in out
    status, out = await _run(settings, "role", "assignment", "list", "--project", "web")
    assert [line.split() for line in out.splitlines()[1:]] == [["reader", "bob", "web"]]


@in_test_loop
async def test_commands_work_on_a_migrated_database_never_bootstrapped(tmp_path):
    settings = await _fresh_database(tmp_path, bootstrapped=False)
    assert (await _run(settings, "project", "create", "blue"))[0] == 0
    status, _ = await _run(settings, "user", "create", "alice", "--password", "pw", "--project", "blue",
                           "--role", "reader")
    assert status == 0
    status, out = await _run(settings, "role", "assignment", "list")
    assert out.splitlines()[1].split() == ["reader", "alice", "blue"]


@in_test_loop
async def test_role_list_shows_standard_roles(settings):
    status, out = await _run(settings, "role", "list")
    assert {line.split()[1] for line in out.splitlines()[1:]} == {"admin", "manager", "member", "reader", "service"}


@in_test_loop
async def test_user_list_shows_bootstrap_admin(settings):
    status, out = await _run(settings, "user", "list")
    assert [line.split()[1] for line in out.splitlines()[1:]] == ["admin"]


@in_test_loop
async def test_errors_are_reported_with_status_one(settings, capsys):
    status, _ = await _run(settings, "role", "add", "--project", "nowhere", "--user", "admin", "member")
    assert status == 1
    assert "nowhere" in capsys.readouterr().err
    await _run(settings, "project", "create", "web")
    status, _ = await _run(settings, "project", "create", "web")
    assert status == 1 and "Duplicate" in capsys.readouterr().err


def test_table_columns_are_aligned():
    text = format_table(("A", "LONGER"), [("xxxx", 1), ("y", None)])
    assert text.splitlines() == ["A     LONGER", "xxxx  1", "y"]
