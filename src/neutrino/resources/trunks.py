"""Trunks (``trunk``, ``trunk-details``): a parent port carrying subports, each tagged with a VLAN
id, so one instance interface reaches several networks.

Subports need 802.1Q devices on the host, which this kernel lacks: the API and model are complete,
and the L2 agent says in its reported configuration that it cannot wire trunks, so binding a
trunk's parent port fails with that reason (see services/binding.py).
"""

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

SUBPORT = t.Dict(required=("port_id",), optional=("segmentation_type", "segmentation_id"),
                 types=(("port_id", t.Uuid()),))

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
        Attribute("sub_ports", t.ListOf(SUBPORT), default=[], allow_post=True),
        *standard_attrs(), tags_attr(allow_post=True),
    ),
)

TRUNK_EXTENSIONS: tuple[Extension, ...] = (
    Extension("trunk", "Trunk Extension", "Provides support for trunk ports", "2016-01-01T10:00:00-00:00"),
    Extension("trunk-details", "Trunk port details", "Expose trunk port details",
              "2016-01-01T10:00:00-00:00"),
)
