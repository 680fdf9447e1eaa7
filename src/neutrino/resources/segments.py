"""Network segments (``segment``, ``standard-attr-segment``): the L2 pieces a network is made of,
as the admin sees and adds them; and the subnet attributes that tie a subnet to one segment
(``subnet-segmentid-writable``, ``segments-peer-subnet-host-routes``); and the ranges tenant
segments are allocated from (``network-segment-range``)."""

from neutrino.resources import types as t
from neutrino.resources.definition import (
    MISSING,
    Attribute,
    Resource,
    description_attr,
    id_attr,
    name_attr,
    project_attrs,
    standard_attrs,
    tags_attr,
)
from neutrino.resources.extensions import Extension

SEGMENT = Resource(
    name="segment", collection="segments", path="segments", project_owned=False, extension="segment",
    attributes=(
        id_attr(),
        # Accepted (Neutron's definition has it) and not shown: a segment belongs to its network.
        Attribute("tenant_id", t.String(255), allow_post=True, visible=False),
        Attribute("project_id", t.String(255), allow_post=True, visible=False),
        Attribute("network_id", t.Uuid(), allow_post=True, required=True, filterable=True, sortable=True,
                  column="network_id"),
        Attribute("network_type", t.String(32), allow_post=True, required=True, filterable=True, sortable=True,
                  column="network_type"),
        Attribute("physical_network", t.String(64, nullable=True), default=MISSING, allow_post=True,
                  filterable=True, sortable=True, column="physical_network"),
        Attribute("segmentation_id", t.Integer(nullable=True), default=MISSING, allow_post=True, sortable=True,
                  column="segmentation_id"),
        Attribute("name", t.String(255, nullable=True, strict_name=True), default=None, allow_post=True,
                  allow_put=True, filterable=True, sortable=True, column="name"),
        description_attr(),
        *(Attribute(a.name, a.type, filterable=a.filterable, sortable=a.sortable, column=a.column,
                    extension="standard-attr-segment") for a in standard_attrs()),
    ),
)

# Ids of every type a range may name (Neutron's GRE bounds); the type's own are checked on write.
_RANGE_ID = t.Integer(minimum=1, maximum=2 ** 32 - 1)

NETWORK_SEGMENT_RANGE = Resource(
    name="network_segment_range", collection="network_segment_ranges", path="network_segment_ranges",
    taggable=True, extension="network-segment-range",
    attributes=(
        id_attr(), name_attr(), description_attr(),
        # A shared range belongs to no project: null.
        *(Attribute(a.name, a.type, allow_post=True, filterable=True, sortable=True, column=a.column,
                    view_type=t.String(255, nullable=True)) for a in project_attrs()),
        Attribute("default", t.Boolean(), filterable=True, column="default"),
        Attribute("shared", t.Boolean(), default=True, allow_post=True, filterable=True, column="shared"),
        Attribute("network_type", t.Enum(("vlan", "vxlan", "gre", "geneve")), allow_post=True, required=True,
                  filterable=True, sortable=True, column="network_type"),
        Attribute("physical_network", t.String(64, nullable=True), default=None, allow_post=True, filterable=True,
                  sortable=True, column="physical_network"),
        Attribute("minimum", _RANGE_ID, allow_post=True, allow_put=True, required=True, sortable=True,
                  column="minimum"),
        Attribute("maximum", _RANGE_ID, allow_post=True, allow_put=True, required=True, sortable=True,
                  column="maximum"),
        Attribute("used", t.Any_()),
        Attribute("available", t.Any_()),
        *standard_attrs(), tags_attr(allow_post=True),
    ),
)

SEGMENT_EXTENSIONS: tuple[Extension, ...] = (
    Extension("network-segment-range", "Neutron Network Segment Range",
              "Provides support for the network segment range management", "2018-11-29T00:00:00-00:00"),
    Extension("segment", "Segment", "Segments extension.", "2016-02-24T17:00:00-00:00"),
    Extension("standard-attr-segment", "Standard Attribute Segment Extension",
              "Add standard attributes to Segment resource", "2018-04-09T10:00:00-00:00"),
    Extension("subnet-segmentid-writable", "Subnet SegmentID (writable)",
              "Provides a writable segment_id attribute for a subnet resource.", "2018-03-12T00:00:00-00:00"),
    Extension("segments-peer-subnet-host-routes", "Segments peer-subnet host routes",
              "Add host routes to subnets on a routed network (segments)", "2018-06-12T10:00:00-00:00"),
)
