"""The one MetaData every table belongs to, and the column shapes tables share.

Tables are SQLAlchemy Core ``Table`` objects (no ORM): services work with rows and plain dicts,
which keeps list queries cheap and keeps ORM objects from crossing seams.
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, DateTime, Integer, MetaData, String

# Explicit constraint names so Alembic migrations are identical on SQLite, PostgreSQL and MySQL.
metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

UUID_LEN = 36
PROJECT_LEN = 255
NAME_LEN = 255


def id_column() -> Column:
    return Column("id", String(UUID_LEN), primary_key=True)


def project_column(nullable: bool = False) -> Column:
    return Column("project_id", String(PROJECT_LEN), nullable=nullable, index=True, default="")


def standard_columns() -> list[Column]:
    """Neutron's standard attributes, stored inline on each resource's own row."""
    return [
        Column("name", String(NAME_LEN), nullable=False, default=""),
        Column("description", String(NAME_LEN), nullable=False, default=""),
        Column("created_at", DateTime, nullable=False),
        Column("updated_at", DateTime, nullable=False),
        Column("revision_number", Integer, nullable=False, default=0),
    ]


def json_column(name: str, nullable: bool = False) -> Column:
    return Column(name, JSON, nullable=nullable)


def bool_column(name: str, default: bool) -> Column:
    return Column(name, Boolean, nullable=False, default=default)
