"""Agents: one row per (agent type, host), kept fresh by heartbeats; scheduling bindings."""

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)

# The binding tables' foreign keys name networks and routers: their tables must be on the metadata
# whenever these are (``metadata.create_all`` resolves every foreign key it sees).
from neutrino.db.schema import core, l3  # noqa: F401
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

# Which DHCP agents serve which networks, and which L3 agent hosts which router. The key settles
# two concurrent schedulings of one pair; rows go with their network, router or agent.
networkdhcpagentbindings = Table(
    "networkdhcpagentbindings", metadata,
    Column("network_id", String(36), ForeignKey("networks.id", ondelete="CASCADE"), nullable=False),
    Column("dhcp_agent_id", String(36), ForeignKey("agents.id", ondelete="CASCADE"), nullable=False,
           index=True),
    PrimaryKeyConstraint("network_id", "dhcp_agent_id"),
)

routerl3agentbindings = Table(
    "routerl3agentbindings", metadata,
    Column("router_id", String(36), ForeignKey("routers.id", ondelete="CASCADE"), nullable=False),
    Column("l3_agent_id", String(36), ForeignKey("agents.id", ondelete="CASCADE"), nullable=False,
           index=True),
    PrimaryKeyConstraint("router_id", "l3_agent_id"),
)

# Per-role provisioning of a port (Neutron's provisioning blocks, kept as what is done rather than
# what is pending): a row says ``entity`` (an agent role: "l2", "firewall") finished the port on
# ``host``. A port goes ACTIVE once every role its host runs has a row for that host (rows of
# another host, the port moved, do not count) and, if it needs DHCP, a "dhcp" row says a DHCP agent
# serving its network (on ``host``, any host) has it (services/provisioning.py). Rows go with the port.
port_provisioning = Table(
    "port_provisioning", metadata,
    Column("port_id", String(36), ForeignKey("ports.id", ondelete="CASCADE"), nullable=False),
    Column("entity", String(32), nullable=False),
    Column("host", String(255), nullable=False),
    PrimaryKeyConstraint("port_id", "entity"),
)

# Named leases between server processes (every host): background jobs run only in the holder.
# ``expires_at`` is seconds since the epoch by the holder's clock (server hosts keep NTP time).
server_leases = Table(
    "server_leases", metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(255), nullable=False),
    Column("expires_at", Float, nullable=False),
)
