"""Tables of the advanced-service plugins: flavors and service profiles, metering labels and rules,
network logs, and local IPs.

A flavor's service profiles are a binding table keyed by both ids, so one profile is bound to one
flavor once; a router made with a flavor holds it by a foreign key (``routers.flavor_id``), so an
in-use flavor cannot disappear. A metering rule goes with its label; a local IP association goes
with its local IP and with its port.
"""

from sqlalchemy import Column, ForeignKey, PrimaryKeyConstraint, String, Table, Text, UniqueConstraint

from neutrino.db.schema.base import (
    UUID_LEN,
    bool_column,
    id_column,
    metadata,
    project_column,
    standard_columns,
)

flavors = Table(
    "flavors", metadata,
    id_column(),
    Column("name", String(255), nullable=False, default=""),
    Column("description", String(1024), nullable=False, default=""),
    Column("service_type", String(36), nullable=False),
    bool_column("enabled", True),
)

serviceprofiles = Table(
    "serviceprofiles", metadata,
    id_column(),
    Column("description", String(1024), nullable=False, default=""),
    Column("driver", String(1024), nullable=False, default=""),
    Column("metainfo", Text, nullable=False, default=""),
    bool_column("enabled", True),
)

flavorserviceprofilebindings = Table(
    "flavorserviceprofilebindings", metadata,
    Column("flavor_id", String(UUID_LEN), ForeignKey("flavors.id", ondelete="CASCADE"), nullable=False),
    Column("service_profile_id", String(UUID_LEN), ForeignKey("serviceprofiles.id"), nullable=False, index=True),
    PrimaryKeyConstraint("flavor_id", "service_profile_id"),
)

meteringlabels = Table(
    "meteringlabels", metadata,
    id_column(), project_column(),
    Column("name", String(255), nullable=False, default=""),
    Column("description", String(1024), nullable=False, default=""),
    bool_column("shared", False),
)

meteringlabelrules = Table(
    "meteringlabelrules", metadata,
    id_column(),
    Column("metering_label_id", String(UUID_LEN), ForeignKey("meteringlabels.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("direction", String(16), nullable=False),
    Column("remote_ip_prefix", String(64), nullable=True),
    Column("source_ip_prefix", String(64), nullable=True),
    Column("destination_ip_prefix", String(64), nullable=True),
    bool_column("excluded", False),
)

# Network logs (``logging``): which security group events of which ports a project wants logged.
logs = Table(
    "logs", metadata,
    id_column(), project_column(), *standard_columns(),
    Column("resource_type", String(36), nullable=False),
    Column("resource_id", String(UUID_LEN), nullable=True, index=True),
    Column("target_id", String(UUID_LEN), nullable=True, index=True),
    Column("event", String(255), nullable=False),
    bool_column("enabled", True),
)

local_ips = Table(
    "local_ips", metadata,
    id_column(), project_column(), *standard_columns(),
    Column("local_port_id", String(UUID_LEN), ForeignKey("ports.id"), nullable=False, index=True),
    Column("network_id", String(UUID_LEN), ForeignKey("networks.id"), nullable=False, index=True),
    Column("local_ip_address", String(64), nullable=False),
    Column("ip_mode", String(32), nullable=False),
)

local_ip_associations = Table(
    "local_ip_associations", metadata,
    Column("local_ip_id", String(UUID_LEN), ForeignKey("local_ips.id", ondelete="CASCADE"), nullable=False),
    Column("fixed_port_id", String(UUID_LEN), ForeignKey("ports.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("fixed_ip", String(64), nullable=False),
    PrimaryKeyConstraint("local_ip_id", "fixed_port_id"),
    UniqueConstraint("fixed_port_id", "fixed_ip"),
)

__all__ = ["flavors", "serviceprofiles", "flavorserviceprofilebindings", "meteringlabels", "meteringlabelrules",
           "logs", "local_ips", "local_ip_associations"]
