"""Security groups and their rules (extension ``security-group`` and friends).

Rule values with Neutron-typed conversion errors (protocol, ethertype, ports, remote prefix) are
accepted as given here and converted by the service, which raises those typed errors.
"""

from typing import Any

from neutrino.resources import types as t
from neutrino.resources.definition import (
    Attribute,
    Resource,
    bool_attr,
    description_attr,
    id_attr,
    project_attrs,
    standard_attrs,
    tags_attr,
)


def _ethertype_filter(value: Any) -> Any:
    for ethertype in ("IPv4", "IPv6"):
        if isinstance(value, str) and value.lower() == ethertype.lower():
            return ethertype
    raise t.InvalidValue(f"'{value}' is not in ['IPv4', 'IPv6']")


SECURITY_GROUP = Resource(
    name="security_group", collection="security_groups", path="security-groups", taggable=True,
    extension="security-group",
    attributes=(
        id_attr(),
        # Length check only (no name-character rule for groups); "default" is refused by the service.
        Attribute("name", t.String(255), default="", allow_post=True, allow_put=True, filterable=True,
                  sortable=True, column="name"),
        description_attr(), *project_attrs(),
        Attribute("stateful", t.Boolean(), default=True, allow_post=True, allow_put=True, filterable=True,
                  sortable=True, column="stateful"),
        Attribute("shared", t.Boolean(), filterable=True),
        Attribute("security_group_rules", t.ListOf(t.Dict(free_form=True))),
        *standard_attrs(), tags_attr(),
    ),
)

SECURITY_GROUP_RULE = Resource(
    name="security_group_rule", collection="security_group_rules", path="security-group-rules",
    extension="security-group",
    attributes=(
        id_attr(), *project_attrs(),
        Attribute("security_group_id", t.String(36), allow_post=True, required=True, filterable=True,
                  sortable=True, column="security_group_id"),
        Attribute("direction", t.Enum(("ingress", "egress")), allow_post=True, required=True, filterable=True,
                  sortable=True, column="direction"),
        Attribute("ethertype", t.Any_(), default="IPv4", allow_post=True, filterable=True, sortable=True,
                  column="ethertype", filter_type=t.Custom(_ethertype_filter), view_type=t.String()),
        Attribute("protocol", t.Any_(), default=None, allow_post=True, filterable=True, sortable=True,
                  column="protocol", filter_type=t.String(), view_type=t.String(nullable=True)),
        Attribute("port_range_min", t.Any_(), default=None, allow_post=True, filterable=True, sortable=True,
                  column="port_range_min", filter_type=t.Integer(), view_type=t.Integer(nullable=True)),
        Attribute("port_range_max", t.Any_(), default=None, allow_post=True, filterable=True, sortable=True,
                  column="port_range_max", filter_type=t.Integer(), view_type=t.Integer(nullable=True)),
        Attribute("remote_ip_prefix", t.Any_(), default=None, allow_post=True, filterable=True, sortable=True,
                  column="remote_ip_prefix", filter_type=t.String(), view_type=t.String(nullable=True)),
        Attribute("remote_group_id", t.String(36, nullable=True), default=None, allow_post=True,
                  filterable=True, sortable=True, column="remote_group_id"),
        Attribute("remote_address_group_id", t.String(36, nullable=True), default=None, allow_post=True,
                  filterable=True, sortable=True, column="remote_address_group_id"),
        Attribute("normalized_cidr", t.String(nullable=True), filterable=True, sortable=True,
                  column="normalized_cidr"),
        Attribute("belongs_to_default_sg", t.Boolean(), filterable=True),
        # Only the description of a rule may change after creation.
        Attribute("description", t.String(255), default="", allow_post=True, allow_put=True, filterable=True,
                  sortable=True, column="description",
                  # The rules a group is made with show a null description, as in Neutron.
                  view_type=t.String(255, nullable=True)),
        *standard_attrs(),
    ),
)


def _rule_template_attrs() -> tuple[Attribute, ...]:
    """The rule attributes a default-rule template shares with rules (all set at create only)."""
    return tuple(Attribute(a.name, a.type, default=a.default, allow_post=True, required=a.required,
                           filterable=True, sortable=True,
                           column=a.column, filter_type=a.filter_type, view_type=a.view_type)
                 for a in SECURITY_GROUP_RULE.attributes
                 if a.name in ("direction", "ethertype", "protocol", "port_range_min", "port_range_max",
                               "remote_ip_prefix", "remote_group_id", "remote_address_group_id"))


# ``security-groups-default-rules``: the admin-managed template of the rules new groups get.
# ``remote_group_id`` may be ``PARENT``: the group being made. Templates are made and deleted,
# never changed.
DEFAULT_SECURITY_GROUP_RULE = Resource(
    name="default_security_group_rule", collection="default_security_group_rules",
    path="default-security-group-rules", extension="security-groups-default-rules", standard_attrs=False,
    project_owned=False, allow_update=False,
    attributes=(
        id_attr(), *_rule_template_attrs(),
        Attribute("description", t.String(255), default="", allow_post=True, filterable=True, column="description"),
        Attribute("used_in_default_sg", t.Boolean(), allow_post=True, required=True, filterable=True,
                  column="used_in_default_sg"),
        Attribute("used_in_non_default_sg", t.Boolean(), allow_post=True, required=True, filterable=True,
                  column="used_in_non_default_sg"),
    ),
)


# ``security-groups-default-statefulness``: a null project is the whole cloud's record (the admin's).
SG_DEFAULT_STATEFULNESS = Resource(
    name="security_groups_default_statefulness", collection="security_groups_default_statefulness",
    path="security-groups-default-statefulness", extension="security-groups-default-statefulness",
    # One record per project: a list body would be a bulk create whose key is the resource's own.
    standard_attrs=False, project_owned=False, allow_bulk=False,
    attributes=(
        id_attr(),
        Attribute("project_id", t.String(255, nullable=True), default=None, allow_post=True, filterable=True,
                  sortable=True, column="project_id"),
        Attribute("tenant_id", t.String(255, nullable=True), default=None, allow_post=True, filterable=True,
                  sortable=True, column="project_id"),
        bool_attr("stateful", True),
    ),
)
