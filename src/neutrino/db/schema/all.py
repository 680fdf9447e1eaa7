"""Imports every table module so the shared metadata is complete (for Alembic and tests)."""

from neutrino.db.schema import agents, core, identity  # noqa: F401
