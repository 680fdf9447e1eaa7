"""Regenerate the single migration (0001) from db/schema by Alembic autogenerate.

Run after changing tables: ``.venv/bin/python scripts/regenerate_migration.py``. The template
(db/migrations/script.py.mako) adds the seed data and the "Revises: (none)" header; env.py makes
the downgrade drop tables whole. Then run tests/db/test_migration.py (all three backends).
"""

import tempfile

from alembic import command

from neutrino.db.migrate import MIGRATIONS_DIR, alembic_config

for old in (MIGRATIONS_DIR / "versions").glob("0001_*.py"):
    old.unlink()
with tempfile.TemporaryDirectory() as tmp:
    command.revision(alembic_config(f"sqlite+aiosqlite:///{tmp}/empty.sqlite"), message="initial schema",
                     autogenerate=True, rev_id="0001")
