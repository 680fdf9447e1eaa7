"""Imports every table module so the shared metadata is complete (for Alembic and tests)."""

from neutrino.db.schema import advanced, agents, auto_allocate, core, identity, l3, qos, security_groups  # noqa: F401
