"""Subnet pools and address scopes (subnet_allocation, address-scope, subnetpool-prefix-ops)."""

from typing import Any

from neutrino.resources import types as t
from neutrino.resources.definition import (
    Attribute,
    MemberAction,
    Resource,
    description_attr,
    id_attr,
    name_attr,
    project_attrs,
    standard_attrs,
    tags_attr,
)

_NAME = t.String(255, strict_name=True)
# Neutron shows a pool's prefix lengths as strings ("24"), except in the answer to an update.
_SHOWN_PREFIXLEN = t.Any_()


def _pool_name(value: Any) -> Any:
    """A subnet pool's name is required and, unlike other names, may not be blank."""
    if value == "":
        raise t.InvalidValue("'' Blank strings are not permitted")
    return _NAME.convert(value)


SUBNETPOOL = Resource(
    name="subnetpool", collection="subnetpools", path="subnetpools", taggable=True,
    attributes=(
        id_attr(),
        Attribute("name", t.Custom(_pool_name), allow_post=True, allow_put=True, required=True, filterable=True,
                  sortable=True, column="name", filter_type=t.String()),
        description_attr(), *project_attrs(),
        Attribute("prefixes", t.ListOf(t.Cidr()), allow_post=True, allow_put=True, required=True),
        Attribute("ip_version", t.Integer(), filterable=True, sortable=True, column="ip_version",
                  filter_type=t.Integer()),
        Attribute("min_prefixlen", t.Integer(nullable=True), default=None, allow_post=True, allow_put=True,
                  filterable=True, sortable=True, column="min_prefixlen", view_type=_SHOWN_PREFIXLEN),
        Attribute("max_prefixlen", t.Integer(nullable=True), default=None, allow_post=True, allow_put=True,
                  filterable=True, sortable=True, column="max_prefixlen", view_type=_SHOWN_PREFIXLEN),
        Attribute("default_prefixlen", t.Integer(nullable=True), default=None, allow_post=True,
                  allow_put=True, filterable=True, sortable=True, column="default_prefixlen",
                  view_type=_SHOWN_PREFIXLEN),
        Attribute("default_quota", t.Integer(minimum=0, nullable=True), default=None, allow_post=True,
                  allow_put=True, filterable=True, sortable=True, column="default_quota"),
        Attribute("address_scope_id", t.Uuid(nullable=True), default=None, allow_post=True, allow_put=True,
                  filterable=True, sortable=True, column="address_scope_id"),
        Attribute("shared", t.Boolean(), default=False, allow_post=True, filterable=True, sortable=True,
                  column="shared", enforce_policy=True),
        Attribute("is_default", t.Boolean(), default=False, allow_post=True, allow_put=True, filterable=True,
                  sortable=True, column="is_default", enforce_policy=True),
        *standard_attrs(), tags_attr(),
    ),
    member_actions=(
        MemberAction("add_prefixes", policy="add_prefixes"),
        MemberAction("remove_prefixes", policy="remove_prefixes"),
        MemberAction("onboard_network_subnets", policy="onboard_network_subnets"),
    ),
)

ADDRESS_SCOPE = Resource(
    name="address_scope", collection="address_scopes", path="address-scopes", standard_attrs=False,
    attributes=(
        id_attr(), name_attr(), *project_attrs(),
        Attribute("ip_version", t.Enum((4, 6), integers=True), allow_post=True, required=True, filterable=True,
                  sortable=True, column="ip_version", filter_type=t.Integer()),
        Attribute("shared", t.Boolean(), default=False, allow_post=True, allow_put=True, filterable=True,
                  sortable=True, column="shared", enforce_policy=True),
    ),
    extension="address-scope",
)
