"""Tables of the core plugin: networks, segments, subnets, ports, IP allocations, pools, RBAC, tags.

Uniqueness that clients rely on is a constraint here, not only a check in code:
MAC per network, IP per subnet, segmentation id per (type, physical network).
"""

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)

from neutrino.db.schema.base import bool_column, id_column, metadata, project_column, standard_columns

networks = Table(
    "networks", metadata,
    id_column(), project_column(), *standard_columns(),
    bool_column("admin_state_up", True),
    Column("status", String(16), nullable=False, default="ACTIVE"),
    Column("mtu", Integer, nullable=False),
    bool_column("port_security_enabled", True),
    bool_column("router_external", False),
    bool_column("is_default", False),
    Column("availability_zone_hints", JSON, nullable=False),
    Column("dns_domain", String(255), nullable=False, default=""),
    Column("qos_policy_id", String(36), nullable=True),
)

network_segments = Table(
    "network_segments", metadata,
    id_column(), *standard_columns(),
    Column("network_id", String(36), ForeignKey("networks.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("network_type", String(32), nullable=False),
    # '' instead of NULL so the unique constraint below also covers tunnel types.
    Column("physical_network", String(64), nullable=False, default=""),
    # flat segments use 0 so one flat network per physical network is a constraint too.
    Column("segmentation_id", Integer, nullable=True),
    Column("segment_index", Integer, nullable=False, default=0),
    UniqueConstraint("network_type", "physical_network", "segmentation_id"),
)

# Admin-managed ranges the type drivers allocate tenant segments from (network-segment-range).
# The configured ranges are the ``default`` rows (ids derived from their bounds, rewritten from the
# configuration); a non-shared range is one project's. Allocation stays settled by the unique
# constraint of network_segments, so ranges never make two networks share an id.
network_segment_ranges = Table(
    "network_segment_ranges", metadata,
    id_column(), project_column(), *standard_columns(),
    bool_column("default", False),
    bool_column("shared", True),
    Column("network_type", String(32), nullable=False),
    Column("physical_network", String(64), nullable=False, default=""),
    Column("minimum", Integer, nullable=False),
    Column("maximum", Integer, nullable=False),
    Index("ix_network_segment_ranges_type", "network_type", "physical_network"),
)

# Trunks (trunk): a parent port carrying subports, each tagged with a VLAN id. A port is the parent
# of at most one trunk and a subport of at most one trunk; a VLAN id is used once per trunk.
trunks = Table(
    "trunks", metadata,
    id_column(), project_column(), *standard_columns(),
    bool_column("admin_state_up", True),
    Column("status", String(16), nullable=False, default="DOWN"),
    Column("port_id", String(36), ForeignKey("ports.id"), nullable=False, unique=True),
)

subports = Table(
    "subports", metadata,
    Column("port_id", String(36), ForeignKey("ports.id"), primary_key=True),
    Column("trunk_id", String(36), ForeignKey("trunks.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("segmentation_type", String(32), nullable=False),
    Column("segmentation_id", Integer, nullable=False),
    UniqueConstraint("trunk_id", "segmentation_type", "segmentation_id"),
)

# A port's inactive bindings (binding-extended): where it is also bound during a live migration.
# Its active binding is the port row's own binding_* columns.
port_bindings = Table(
    "port_bindings", metadata,
    Column("port_id", String(36), ForeignKey("ports.id", ondelete="CASCADE"), nullable=False),
    Column("host", String(255), nullable=False),
    Column("vnic_type", String(64), nullable=False, default="normal"),
    Column("profile", JSON, nullable=False),
    Column("vif_type", String(64), nullable=False),
    Column("vif_details", JSON, nullable=False),
    Column("status", String(16), nullable=False, default="INACTIVE"),
    PrimaryKeyConstraint("port_id", "host"),
)

subnetpools = Table(
    "subnetpools", metadata,
    id_column(), project_column(), *standard_columns(),
    Column("ip_version", Integer, nullable=False),
    Column("min_prefixlen", Integer, nullable=False),
    Column("max_prefixlen", Integer, nullable=False),
    Column("default_prefixlen", Integer, nullable=False),
    Column("default_quota", Integer, nullable=True),
    Column("address_scope_id", String(36), nullable=True),
    bool_column("shared", False),
    bool_column("is_default", False),
    Column("prefixes", JSON, nullable=False),
    # Serialises concurrent allocations from one pool: each allocation bumps it (compare-and-swap).
    Column("allocation_generation", Integer, nullable=False, default=0),
)

address_scopes = Table(
    "address_scopes", metadata,
    id_column(), project_column(),
    Column("name", String(255), nullable=False, default=""),
    Column("ip_version", Integer, nullable=False),
    bool_column("shared", False),
)

subnets = Table(
    "subnets", metadata,
    id_column(), project_column(), *standard_columns(),
    Column("network_id", String(36), ForeignKey("networks.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("ip_version", Integer, nullable=False),
    Column("cidr", String(64), nullable=False),
    Column("gateway_ip", String(64), nullable=True),
    bool_column("enable_dhcp", True),
    Column("ipv6_ra_mode", String(32), nullable=True),
    Column("ipv6_address_mode", String(32), nullable=True),
    Column("subnetpool_id", String(36), ForeignKey("subnetpools.id"), nullable=True, index=True),
    Column("segment_id", String(36), ForeignKey("network_segments.id"), nullable=True),
    bool_column("dns_publish_fixed_ip", False),
    Column("allocation_pools", JSON, nullable=False),
    Column("dns_nameservers", JSON, nullable=False),
    Column("host_routes", JSON, nullable=False),
    Column("service_types", JSON, nullable=False),
)

ports = Table(
    "ports", metadata,
    id_column(), project_column(), *standard_columns(),
    Column("network_id", String(36), ForeignKey("networks.id"), nullable=False),
    Column("mac_address", String(32), nullable=False),
    bool_column("admin_state_up", True),
    Column("status", String(16), nullable=False, default="DOWN"),
    Column("device_id", String(255), nullable=False, default="", index=True),
    Column("device_owner", String(255), nullable=False, default="", index=True),
    bool_column("port_security_enabled", True),
    Column("binding_host_id", String(255), nullable=False, default="", index=True),
    Column("binding_vnic_type", String(64), nullable=False, default="normal"),
    Column("binding_profile", JSON, nullable=False),
    Column("binding_vif_type", String(64), nullable=False, default="unbound"),
    Column("binding_vif_details", JSON, nullable=False),
    Column("allowed_address_pairs", JSON, nullable=False),
    Column("extra_dhcp_opts", JSON, nullable=False),
    Column("ip_allocation", String(16), nullable=False, default="immediate"),
    Column("dns_name", String(255), nullable=False, default=""),
    Column("dns_domain", String(255), nullable=False, default=""),
    Column("qos_policy_id", String(36), nullable=True),
    bool_column("propagate_uplink_status", False),
    Column("numa_affinity_policy", String(16), nullable=True),
    Column("device_profile", String(255), nullable=True),
    # Copy of this port's IP allocations in API shape, so listing thousands of ports needs no join;
    # the ipallocations table stays the source of truth and carries the uniqueness constraint.
    Column("fixed_ips", JSON, nullable=False),
    UniqueConstraint("network_id", "mac_address"),
    Index("ix_ports_network_id_device_owner", "network_id", "device_owner"),
)

ipallocations = Table(
    "ipallocations", metadata,
    Column("ip_address", String(64), nullable=False),
    Column("subnet_id", String(36), ForeignKey("subnets.id", ondelete="CASCADE"), nullable=False),
    Column("network_id", String(36), nullable=False, index=True),
    Column("port_id", String(36), ForeignKey("ports.id", ondelete="CASCADE"), nullable=False, index=True),
    PrimaryKeyConstraint("subnet_id", "ip_address"),
)

rbac_policies = Table(
    "rbac_policies", metadata,
    id_column(), project_column(),
    Column("object_type", String(32), nullable=False),
    Column("object_id", String(36), nullable=False),
    Column("action", String(32), nullable=False),
    Column("target_project", String(255), nullable=False),
    UniqueConstraint("object_type", "object_id", "action", "target_project"),
    Index("ix_rbac_policies_target", "object_type", "action", "target_project"),
)

tags = Table(
    "tags", metadata,
    Column("resource_type", String(64), nullable=False),
    Column("resource_id", String(36), nullable=False),
    Column("tag", String(255), nullable=False),
    PrimaryKeyConstraint("resource_type", "resource_id", "tag"),
    Index("ix_tags_tag", "resource_type", "tag"),
)

quotas = Table(
    "quotas", metadata,
    Column("project_id", String(255), nullable=False),
    Column("resource", String(64), nullable=False),
    Column("limit", Integer, nullable=False),
    PrimaryKeyConstraint("project_id", "resource"),
)

__all__ = ["networks", "network_segments", "network_segment_ranges", "trunks", "subports", "port_bindings", "subnets", "subnetpools", "address_scopes", "ports",
           "ipallocations", "rbac_policies", "tags", "quotas", "Boolean", "DateTime"]
