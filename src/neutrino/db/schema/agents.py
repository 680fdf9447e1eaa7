"""Agents: one row per (agent type, host), kept fresh by heartbeats; scheduling bindings."""

from sqlalchemy import JSON, Boolean, Column, DateTime, String, Table, UniqueConstraint

from neutrino.db.schema.base import id_column, metadata

agents = Table(
    "agents", metadata,
    id_column(),
    Column("agent_type", String(255), nullable=False),
    Column("binary", String(255), nullable=False),
    Column("topic", String(255), nullable=False),
    Column("host", String(255), nullable=False, index=True),
    Column("admin_state_up", Boolean, nullable=False, default=True),
    Column("description", String(255), nullable=True),
    Column("availability_zone", String(255), nullable=True),
    Column("configurations", JSON, nullable=False),
    Column("resources_synced", Boolean, nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("heartbeat_timestamp", DateTime, nullable=False),
    UniqueConstraint("agent_type", "host"),
)
