"""Imports every table module so the shared metadata is complete (for Alembic and tests)."""

from neutrino.db.schema import agents, core, identity, l3, security_groups  # noqa: F401
