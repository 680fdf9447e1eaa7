"""Trunks (``trunk``, ``trunk-details``): a parent port carrying subports, each tagged with a VLAN
id, so one instance interface reaches several networks.

Subports need 802.1Q devices on the host, which this kernel lacks: the API and model are complete,
and the L2 agent says in its reported configuration that it cannot wire trunks, so binding a
trunk's parent port fails with that reason (see services/binding.py).
"""

from typing import Any

from neutrino.resources import types as t
from neutrino.resources.definition import (
    Attribute,
    MemberAction,
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

INHERIT = "inherit"


def check_subports(value: Any) -> list[dict[str, Any]]:
    """Neutron's ``type:subports``, checked before any port is looked up: a list of dicts with
    distinct port UUIDs, each giving both segmentation details (or ``inherit``) unless it gives only
    its port (as removals do), no segmentation id twice per type."""
    if not isinstance(value, list):
        raise t.InvalidValue(f"Invalid data format for subports: '{value}' is not a list")
    port_ids: set[str] = set()
    taken: list[tuple[Any, Any]] = []  # values of any JSON type, hashable or not
    for sub in value:
        if not isinstance(sub, dict):
            raise t.InvalidValue(f"Invalid data format for subport: '{sub}' is not a dict")
        if "port_id" not in sub:
            raise t.InvalidValue("A valid port UUID must be specified")
        try:
            t.Uuid().convert(sub["port_id"])
        except t.InvalidValue:
            raise t.InvalidValue(f"Invalid UUID for subport: '{sub['port_id']}'") from None
        if sub["port_id"] in port_ids:
            raise t.InvalidValue(f"Non unique UUID for subport: '{sub['port_id']}'")
        port_ids.add(sub["port_id"])
        seg_type, seg_id = sub.get("segmentation_type"), sub.get("segmentation_id")
        if seg_type == INHERIT:
            continue
        if (not seg_type or seg_id is None) and len(sub) > 1:
            raise t.InvalidValue(f"Invalid subport details '{sub}': missing segmentation information. Must "
                                 "specify both segmentation_id and segmentation_type")
        if (seg_type, seg_id) in taken:
            raise t.InvalidValue(f"Segmentation ID '{seg_id}' for '{sub['port_id']}' is not unique")
        if seg_id is not None:
            taken.append((seg_type, seg_id))
    return value


TRUNK = Resource(
    name="trunk", collection="trunks", path="trunks", taggable=True, extension="trunk",
    member_actions=(
        MemberAction("add_subports", method="PUT", policy="add_subports"),
        MemberAction("remove_subports", method="PUT", policy="remove_subports"),
        MemberAction("get_subports", method="GET", policy="get_subports"),
    ),
    attributes=(
        id_attr(), name_attr(), description_attr(), *project_attrs(),
        bool_attr("admin_state_up", True),
        Attribute("status", t.String(), filterable=True, sortable=True, column="status"),
        Attribute("port_id", t.Uuid(), allow_post=True, required=True, filterable=True, sortable=True,
                  column="port_id"),
        Attribute("sub_ports", t.Custom(check_subports), default=[], allow_post=True),
        *standard_attrs(), tags_attr(allow_post=True),
    ),
)

TRUNK_EXTENSIONS: tuple[Extension, ...] = (
    Extension("trunk", "Trunk Extension", "Provides support for trunk ports", "2016-01-01T10:00:00-00:00"),
    Extension("trunk-details", "Trunk port details", "Expose trunk port details",
              "2016-01-01T10:00:00-00:00"),
)
