"""The metering service plugin's API contract: labels and their rules (``metering``,
``metering_source_and_destination_fields``), after neutron-lib's ``metering`` and
``metering_source_and_destination_filters`` definitions. Labels and rules are made and deleted by
the admin, never updated; a label's project reads it.
"""

from __future__ import annotations

from neutrino.resources import types as t
from neutrino.resources.definition import Attribute, Resource, bool_attr, id_attr, project_attrs
from neutrino.resources.extensions import Extension


def _prefix(name: str, *, put: bool = False, extension: str = "") -> Attribute:
    return Attribute(name, t.Cidr(nullable=True), default=None, allow_post=True, allow_put=put, filterable=True,
                     sortable=True, column=name, filter_type=t.String(), extension=extension)


METERING_LABEL = Resource(
    name="metering_label", collection="metering_labels", path="metering/metering-labels", extension="metering",
    standard_attrs=False, allow_update=False,
    attributes=(
        id_attr(),
        Attribute("name", t.String(255, strict_name=True), default="", allow_post=True, filterable=True,
                  sortable=True, column="name"),
        Attribute("description", t.String(1024), default="", allow_post=True, filterable=True, sortable=True,
                  column="description"),
        *project_attrs(),
        bool_attr("shared", False, put=False),
    ),
)

METERING_LABEL_RULE = Resource(
    name="metering_label_rule", collection="metering_label_rules", path="metering/metering-label-rules",
    extension="metering", standard_attrs=False, allow_update=False, project_owned=False,
    attributes=(
        id_attr(),
        Attribute("metering_label_id", t.Uuid(), allow_post=True, required=True, filterable=True, sortable=True,
                  column="metering_label_id"),
        Attribute("direction", t.Enum(("ingress", "egress")), allow_post=True, required=True, filterable=True,
                  sortable=True, column="direction"),
        bool_attr("excluded", False, put=False),
        _prefix("remote_ip_prefix"),
        _prefix("source_ip_prefix", extension="metering_source_and_destination_fields"),
        _prefix("destination_ip_prefix", extension="metering_source_and_destination_fields"),
        # Accepted (Neutron's map has it) but a rule is its label's: neither stored nor shown.
        Attribute("project_id", t.String(255), allow_post=True, visible=False),
        Attribute("tenant_id", t.String(255), allow_post=True, visible=False),
    ),
)

METERING_EXTENSIONS: tuple[Extension, ...] = (
    Extension("metering", "Neutron Metering", "Neutron Metering extension.", "2013-06-12T10:00:00-00:00"),
    Extension("metering_source_and_destination_fields", "Neutron Metering with source and destination filtering",
              "Neutron Metering extension that enables the use of source and destination IP prefixes to create "
              "metering label rules.", "2020-08-21T08:12:00-00:00", requires=("metering",)),
)
