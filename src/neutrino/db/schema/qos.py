"""Tables of the QoS service plugin: policies, their rules, and each project's default policy.

Uniqueness that clients rely on is a constraint here, not only a check in code:

- one rule per (policy, rule type, direction): ``qos_rules`` is unique on the three, so two
  concurrent creates of the same kind leave one rule and the other request gets 409
  ``QoSRulesConflict`` (DSCP marking rules have no direction; they store ``""``);
- one default policy per project: ``qos_default_policies`` is keyed by project, so two policies
  made default at once cannot both win.

Networks and ports point at policies through their own ``qos_policy_id`` columns (core tables);
the plugin refuses to delete a policy that is still referenced (409 ``QosPolicyInUse``). The
table name ``qos_policies`` is contract: RBAC looks it up by name for ``qos_policy`` entries.
"""

from sqlalchemy import Column, ForeignKey, Integer, PrimaryKeyConstraint, String, Table, UniqueConstraint

from neutrino.db.schema.base import UUID_LEN, id_column, metadata, project_column, standard_columns

qos_policies = Table(
    "qos_policies", metadata,
    id_column(), project_column(), *standard_columns(),
)

qos_rules = Table(
    "qos_rules", metadata,
    id_column(),
    Column("qos_policy_id", String(UUID_LEN), ForeignKey("qos_policies.id", ondelete="CASCADE"),
           nullable=False, index=True),
    # bandwidth_limit | dscp_marking | minimum_bandwidth | packet_rate_limit | minimum_packet_rate
    Column("rule_type", String(32), nullable=False),
    # ingress | egress (| any: minimum_packet_rate); "" for rule types without a direction (dscp_marking).
    Column("direction", String(16), nullable=False, default=""),
    Column("max_kbps", Integer, nullable=True),
    Column("max_burst_kbps", Integer, nullable=True),
    Column("dscp_mark", Integer, nullable=True),
    Column("min_kbps", Integer, nullable=True),
    Column("max_kpps", Integer, nullable=True),
    Column("max_burst_kpps", Integer, nullable=True),
    Column("min_kpps", Integer, nullable=True),
    UniqueConstraint("qos_policy_id", "rule_type", "direction"),
)

qos_default_policies = Table(
    "qos_default_policies", metadata,
    Column("project_id", String(255), nullable=False),
    Column("qos_policy_id", String(UUID_LEN), ForeignKey("qos_policies.id", ondelete="CASCADE"),
           nullable=False, unique=True),
    PrimaryKeyConstraint("project_id"),
)

__all__ = ["qos_policies", "qos_rules", "qos_default_policies"]
