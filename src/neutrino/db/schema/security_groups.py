"""Tables of the security-group plugin: groups, their rules, port bindings, and each project's default.

Uniqueness that clients rely on is a constraint here, not only a check in code:

- one default group per project (``default_security_groups`` is keyed by project), so two requests
  that both find "no default yet" cannot both create one: the loser's transaction is retried and
  then finds the winner's group;
- one rule per effect in a group: ``fingerprint`` is the rule's normalised effect (protocol by
  number, "any address" equal to no prefix, ...) and is unique per group, so concurrent identical
  creates leave exactly one rule;
- a group bound to a port cannot disappear under it (the binding's foreign key has no cascade);
- an address group named by a rule (``remote_address_group_id``) cannot disappear under it either,
  and one address appears once per address group (the association's key).
"""

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)

from neutrino.db.schema.base import (
    NAME_LEN,
    UUID_LEN,
    bool_column,
    id_column,
    metadata,
    project_column,
    standard_columns,
)


def match_columns() -> tuple[Column, ...]:
    """What a rule matches, shared by rules and the default-rule template."""
    return (
        Column("direction", String(16), nullable=False),
        Column("ethertype", String(8), nullable=False),
        Column("protocol", String(40), nullable=True),
        Column("port_range_min", Integer, nullable=True),
        Column("port_range_max", Integer, nullable=True),
        Column("remote_ip_prefix", String(64), nullable=True),
    )


securitygroups = Table(
    "securitygroups", metadata,
    id_column(), project_column(), *standard_columns(),
    bool_column("stateful", True),
)

securitygrouprules = Table(
    "securitygrouprules", metadata,
    id_column(), project_column(),
    # Rules have a description but no name; template-made rules have none (null), as in Neutron.
    Column("description", String(NAME_LEN), nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("revision_number", Integer, nullable=False, default=0),
    Column("security_group_id", String(UUID_LEN), ForeignKey("securitygroups.id", ondelete="CASCADE"),
           nullable=False, index=True),
    # Rules of other groups that point at a deleted group go with it.
    Column("remote_group_id", String(UUID_LEN), ForeignKey("securitygroups.id", ondelete="CASCADE"),
           nullable=True, index=True),
    # No cascade: deleting an address group a rule uses is refused (AddressGroupInUse).
    Column("remote_address_group_id", String(UUID_LEN), ForeignKey("address_groups.id"), nullable=True,
           index=True),
    *match_columns(),
    Column("normalized_cidr", String(64), nullable=True),
    Column("fingerprint", String(255), nullable=False),
    UniqueConstraint("security_group_id", "fingerprint"),
)

# The admin-managed template new groups take their rules from (``security-groups-default-rules``).
# ``remote_group_id`` is ``PARENT`` (the new group itself) or null; the legacy four rows are seeded
# by the migration that makes the table.
default_security_group_rules = Table(
    "default_security_group_rules", metadata,
    id_column(),
    Column("description", String(255), nullable=False, default=""),
    *match_columns(),
    Column("remote_group_id", String(UUID_LEN), nullable=True),
    Column("remote_address_group_id", String(UUID_LEN), nullable=True),
    bool_column("used_in_default_sg", True),
    bool_column("used_in_non_default_sg", True),
)

securitygroupportbindings = Table(
    "securitygroupportbindings", metadata,
    Column("port_id", String(UUID_LEN), ForeignKey("ports.id", ondelete="CASCADE"), nullable=False),
    Column("security_group_id", String(UUID_LEN), ForeignKey("securitygroups.id"), nullable=False, index=True),
    # The order the groups were given in, so a port shows them back the same way.
    Column("position", Integer, nullable=False, default=0),
    PrimaryKeyConstraint("port_id", "security_group_id"),
)

# Address groups (``address-group``): named sets of CIDRs that rules point at instead of one prefix.
address_groups = Table(
    "address_groups", metadata,
    id_column(), project_column(), *standard_columns(),
)

address_associations = Table(
    "address_associations", metadata,
    Column("address_group_id", String(UUID_LEN), ForeignKey("address_groups.id", ondelete="CASCADE"),
           nullable=False),
    # Normalised CIDR ("10.0.0.0/24"), as Neutron stores it.
    Column("address", String(64), nullable=False),
    PrimaryKeyConstraint("address_group_id", "address"),
)

default_security_groups = Table(
    "default_security_groups", metadata,
    Column("project_id", String(255), nullable=False),
    Column("security_group_id", String(UUID_LEN), ForeignKey("securitygroups.id", ondelete="CASCADE"),
           nullable=False, unique=True),
    PrimaryKeyConstraint("project_id"),
)

# ``security-groups-default-statefulness``: the ``stateful`` value new groups get when the request
# does not say, per project (``project_id``) or for the whole cloud (``project_id`` NULL, one row).
sg_default_statefulness = Table(
    "sg_default_statefulness", metadata,
    Column("id", String(UUID_LEN), primary_key=True),
    Column("project_id", String(255), nullable=True, unique=True),
    bool_column("stateful", True),
)

__all__ = ["sg_default_statefulness", "securitygroups", "securitygrouprules", "securitygroupportbindings", "default_security_groups",
           "address_groups", "address_associations"]
