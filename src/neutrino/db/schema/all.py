"""Imports every table module so the shared metadata is complete (for Alembic and tests)."""

from neutrino.db.schema import core  # noqa: F401

try:  # identity tables arrive with the identity package
    from neutrino.db.schema import identity  # noqa: F401
except ImportError:  # pragma: no cover
    pass
