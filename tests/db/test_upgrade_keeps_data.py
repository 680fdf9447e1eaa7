"""Data survives upgrades: a database filled through the API at an older schema revision, upgraded
with ``neutrino db upgrade``, shows every object exactly as before, on SQLite, PostgreSQL and MariaDB.

The older databases are the fixtures of ``tests/db/upgrade_fixtures`` (see ``tests.db.upgrade_data``
for how one is captured); schema changes are new Alembic revisions on top of the head, never an
edited or regenerated earlier one, so every fixture keeps loading at its own revision.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory

from neutrino.db.migrate import alembic_config, head_revision, upgrade
from tests.db.upgrade_data import FIXTURES, load_rows, snapshot
from tests.support.databases import temporary_database
from tests.support.live_server import start_server

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres),
            pytest.param("mysql", marks=pytest.mark.mysql)]


def _fixtures() -> list[Path]:
    found = sorted(FIXTURES.glob("*.json"))
    assert found, f"no upgrade fixtures in {FIXTURES}"
    return found


def test_the_revisions_form_one_line_whose_head_has_a_fixture_or_a_parent_with_one() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1, f"several heads: {script.get_heads()}"
    revisions = [r.revision for r in script.walk_revisions()]
    captured = {p.stem for p in _fixtures()}
    assert captured <= set(revisions), f"fixtures of unknown revisions: {captured - set(revisions)}"
    # The newest fixture is the head or the revision just before it: a new revision is added after
    # the fixture of the one it supersedes has been captured.
    assert revisions[0] in captured or (len(revisions) > 1 and revisions[1] in captured), revisions


def _same(before: Any, after: Any, where: str) -> list[str]:
    """Differences an upgrade may not make: every object is still there, with the same values.

    Which attributes an object shows is the API's shape (extensions, and the object itself, decide
    which exist: ``is_default`` only on external networks), not its data: an attribute shown before
    and not after is not compared; every attribute shown both times must keep its value.
    """
    if isinstance(before, dict) and isinstance(after, dict):
        return [d for key, value in before.items() if key in after for d in _same(value, after[key], f"{where}.{key}")]
    if isinstance(before, list) and isinstance(after, list) and all(isinstance(i, dict) and "id" in i for i in before):
        by_id = {i.get("id"): i for i in after if isinstance(i, dict)}
        return [d for item in before for d in (_same(item, by_id[item["id"]], f"{where}[{item['id']}]")
                                              if item["id"] in by_id else [f"{where}[{item['id']}] missing"])]
    return [] if before == after else [f"{where}: {before!r} became {after!r}"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fixture", _fixtures(), ids=lambda p: p.stem)
def test_neutrino_db_upgrade_keeps_every_object(backend: str, fixture: Path, tmp_path: Path) -> None:
    captured = json.loads(fixture.read_text())
    with temporary_database(backend, str(tmp_path)) as url:
        upgrade(url, captured["revision"])
        asyncio.run(load_rows(url, captured["tables"]))

        result = subprocess.run([sys.executable, "-m", "neutrino.cli.main", "db", "upgrade"],
                                env=dict(os.environ, NEUTRINO_DATABASE_URL=url, NEUTRINO_STATE_DIR=str(tmp_path)),
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        assert "database at head" in result.stdout

        server = start_server(tmp_path / "state", database_url=url)
        try:
            shown = snapshot(server, captured["made"])
        finally:
            server.stop()
    differences = [d for name, before in captured["api"].items() for d in _same(before, shown[name], name)]
    assert differences == [], f"upgrade from {captured['revision']} to {head_revision()} on {backend}: " + \
        "; ".join(differences[:20])
