"""The auto-allocate plugin's table: which network and router were made for a project on request.

One row per project (the key), so two concurrent first requests cannot both record a topology:
the loser cleans up what it made and answers with the winner's network. The row goes with its
network; a router deleted under it leaves the row without one.
"""

from sqlalchemy import Column, ForeignKey, PrimaryKeyConstraint, String, Table

# The foreign keys name networks and routers: their tables must be on the metadata too.
from neutrino.db.schema import core, l3  # noqa: F401
from neutrino.db.schema.base import UUID_LEN, metadata

auto_allocated_topologies = Table(
    "auto_allocated_topologies", metadata,
    Column("project_id", String(255), nullable=False),
    Column("network_id", String(UUID_LEN), ForeignKey("networks.id", ondelete="CASCADE"), nullable=False),
    Column("router_id", String(UUID_LEN), ForeignKey("routers.id", ondelete="SET NULL"), nullable=True),
    PrimaryKeyConstraint("project_id"),
)

__all__ = ["auto_allocated_topologies"]
