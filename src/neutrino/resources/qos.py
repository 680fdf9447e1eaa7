"""The QoS service plugin's API contract: policies, their rules (under the policy and by alias), and
the rule types the server accepts.

Attribute maps follow neutron-lib's ``qos``, ``qos_bw_limit_direction``, ``qos_default``,
``qos_rules_alias`` and ``qos_rule_type_details`` definitions. A rule kind is described once, as a
:class:`RuleKind`; the sub-collection under ``qos/policies/{id}`` and the ``qos/alias_*`` collection
are both built from it, so the two URLs of one rule can never disagree about its attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from neutrino.resources import types as t
from neutrino.resources.definition import (
    MISSING,
    Attribute,
    Parent,
    Resource,
    bool_attr,
    description_attr,
    id_attr,
    name_attr,
    project_attrs,
    standard_attrs,
    tags_attr,
)
from neutrino.resources.extensions import Extension

DIRECTIONS = ("ingress", "egress")
# DSCP values Neutron accepts (neutron_lib.constants.VALID_DSCP_MARKS): the standard PHBs.
VALID_DSCP_MARKS = (0, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40, 44, 46, 48, 56)
KBPS = t.Integer(0)  # 0 .. 2^31-1, the column's range


@dataclass(frozen=True, slots=True)
class DscpMark:
    """An integer (or its text) that is one of the valid DSCP marks."""

    def convert(self, value: Any) -> Any:
        number = t.Integer(0, 63).convert(value)
        if number not in VALID_DSCP_MARKS:
            raise t.InvalidValue(f"'{number}' is not in {list(VALID_DSCP_MARKS)}")
        return number


@dataclass(frozen=True)
class RuleKind:
    """One kind of QoS rule: its type name and the attributes a request may give.

    ``directions`` are the directions the kind accepts (empty: the kind has none); a policy holds
    at most one rule per (kind, direction).
    """

    type: str
    attributes: tuple[Attribute, ...]
    directions: tuple[str, ...] = ()
    extension: str = "qos"  # the extension that brings the kind's collection
    alias_extension: str | None = "qos-rules-alias"  # the one that brings ``alias_<kind>_rules`` (None: none)

    @property
    def collection(self) -> str:
        return f"{self.type}_rules"

    @property
    def name(self) -> str:
        return f"{self.type}_rule"

    @property
    def parameters(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.attributes)


def _param(name: str, typ: Any, *, default: Any = None, required: bool = False) -> Attribute:
    return Attribute(name, typ, default=MISSING if required else default, allow_post=True, allow_put=True,
                     required=required, filterable=True, sortable=True, column=name)


BANDWIDTH_LIMIT = RuleKind("bandwidth_limit", (
    _param("max_kbps", KBPS, required=True),
    _param("max_burst_kbps", KBPS, default=0),
    _param("direction", t.Enum(DIRECTIONS), default="egress"),
), directions=DIRECTIONS)
DSCP_MARKING = RuleKind("dscp_marking", (
    _param("dscp_mark", DscpMark(), required=True),
))
# Ingress minimums come with ``qos-bw-minimum-ingress``.
MINIMUM_BANDWIDTH = RuleKind("minimum_bandwidth", (
    _param("min_kbps", KBPS, required=True),
    _param("direction", t.Enum(DIRECTIONS), default="egress"),
), directions=DIRECTIONS)

# qos-pps: packet rate limits, either direction (Neutron has no alias URL for them).
PACKET_RATE_LIMIT = RuleKind("packet_rate_limit", (
    _param("max_kpps", KBPS, required=True),
    _param("max_burst_kpps", KBPS, default=0),
    _param("direction", t.Enum(DIRECTIONS), default="egress"),
), directions=DIRECTIONS, extension="qos-pps", alias_extension=None)
# qos-pps-minimum: a placement guarantee in Neutron ("any" direction: one pool for both ways).
MINIMUM_PACKET_RATE = RuleKind("minimum_packet_rate", (
    _param("min_kpps", KBPS, required=True),
    _param("direction", t.Enum(("any", *DIRECTIONS)), default="egress"),
), directions=("any", *DIRECTIONS), extension="qos-pps-minimum", alias_extension="qos-pps-minimum-rule-alias")

RULE_KINDS: tuple[RuleKind, ...] = (BANDWIDTH_LIMIT, DSCP_MARKING, MINIMUM_BANDWIDTH, PACKET_RATE_LIMIT,
                                    MINIMUM_PACKET_RATE)
RULE_KIND_BY_TYPE = {k.type: k for k in RULE_KINDS}

QOS_POLICY = Resource(
    name="policy", collection="policies", path="qos/policies", service="qos_policy", taggable=True, tags_path="policies",
    extension="qos",
    attributes=(
        id_attr(), name_attr(), description_attr(), *project_attrs(),
        # Sharing is an RBAC wildcard entry, as for networks; the value shown is per caller.
        Attribute("shared", t.Boolean(), default=False, allow_post=True, allow_put=True, filterable=True,
                  enforce_policy=True),
        bool_attr("is_default", False, sortable=False, policy=True, extension="qos-default"),
        Attribute("rules", t.ListOf(t.Dict(free_form=True))),
        *standard_attrs(), tags_attr(),
    ),
)


def rule_resource(kind: RuleKind) -> Resource:
    """``qos/policies/{policy_id}/<kind>_rules``: the policy's owner (``ext_parent``) decides."""
    return Resource(
        name=kind.name, collection=kind.collection, path=kind.collection, service=f"qos_{kind.name}",
        parent=Parent("policy", "qos/policies", "qos_policy_id"), policy_name=f"policy_{kind.name}",
        standard_attrs=False, project_owned=False, extension=kind.extension,
        attributes=(id_attr(), *kind.attributes),
    )


def alias_resource(kind: RuleKind) -> Resource:
    """``qos/alias_<kind>_rules/{id}``: the same rule addressed without its policy (read, update,
    delete). The body key is Neutron's resource name for it, ``alias_<kind>_rule``."""
    return Resource(
        name=f"alias_{kind.name}", collection=f"alias_{kind.collection}", path=f"qos/alias_{kind.collection}",
        service=f"qos_alias_{kind.name}", policy_name=f"alias_{kind.name}", standard_attrs=False, project_owned=False,
        allow_create=False, allow_bulk=False, extension=kind.alias_extension or "qos-rules-alias",
        attributes=(id_attr(), *(_put_only(a) for a in kind.attributes)),
    )


def _put_only(attr: Attribute) -> Attribute:
    return replace(attr, allow_post=False, required=False, default=MISSING)


RULE_TYPE = Resource(
    name="rule_type", collection="rule_types", path="qos/rule-types", service="qos_rule_type",
    standard_attrs=False, project_owned=False, allow_create=False, allow_update=False, allow_delete=False,
    allow_bulk=False, allow_pagination=False, extension="qos",
    attributes=(
        Attribute("type", t.String()),
        Attribute("drivers", t.ListOf(t.Dict(free_form=True))),
        # qos-rule-type-filter: every type the API knows, or only those all drivers support.
        Attribute("all_rules", t.Boolean(), visible=False, filterable=True),
        Attribute("all_supported", t.Boolean(), visible=False, filterable=True),
    ),
)

RULE_RESOURCES: tuple[Resource, ...] = tuple(rule_resource(k) for k in RULE_KINDS)
ALIASED_KINDS: tuple[RuleKind, ...] = tuple(k for k in RULE_KINDS if k.alias_extension)
ALIAS_RESOURCES: tuple[Resource, ...] = tuple(alias_resource(k) for k in ALIASED_KINDS)


def _ext(alias: str, name: str, description: str, updated: str) -> Extension:
    return Extension(alias, name, description, updated)


QOS_EXTENSIONS: tuple[Extension, ...] = (
    _ext("qos", "Quality of Service", "The Quality of Service extension.", "2015-06-08T10:00:00-00:00"),
    _ext("qos-bw-limit-direction", "Direction for QoS bandwidth limit rule",
         "Allow to configure QoS bandwidth limit rule with specific direction: ingress or egress",
         "2017-04-10T10:00:00-00:00"),
    _ext("qos-default", "QoS default policy", "Expose the QoS default policy per project",
         "2017-041-06T10:00:00-00:00"),
    _ext("qos-rules-alias", "Quality of Service rules alias API",
         "API to enable GET, PUT and DELETE operations on QoS policy rules without specifying policy ID",
         "2018-10-07T10:00:00-00:00"),
    _ext("qos-rule-type-details", "Details of QoS rule types",
         "Expose details about QoS rule types supported by loaded backend drivers", "2017-06-22T10:00:00-00:00"),
    _ext("qos-rule-type-filter", "Allow to filter the list of QoS rule types",
         'Allows to filter the QoS rule type list adding two new flags. "all_rules" prints all implemented QoS '
         'rule types. "all_supported" prints only those QoS rule types supported by all loaded drivers.',
         "2022-02-02T10:00:00-00:00"),
    _ext("qos-bw-minimum-ingress", "Ingress direction for QoS minimum bandwidth rule",
         "Allow to configure QoS minumum bandwidth rule with ingress direction.", "2018-07-09T10:00:00-00:00"),
    _ext("qos-port-network-policy", "QoS port network policy ID",
         "Adds a the QoS network ID to the port definition", "2019-11-01T10:00:00-00:00"),
    _ext("qos-pps", "QoS Rule Type Packet per Second Extension", "Add QoS Rule Type Packet per Second",
         "2021-05-12T10:00:00-00:00"),
    _ext("qos-pps-minimum", "QoS minimum packet rate rule", "Allow to configure QoS minimum packet rate rule.",
         "2021-07-14T10:00:00-00:00"),
    _ext("qos-pps-minimum-rule-alias", "QoS minimum packet rate rule alias",
         "API to enable GET, PUT and DELETE operations on QoS minimum packet rate rule without specifying policy ID",
         "2021-10-22T10:00:00-00:00"),
)
