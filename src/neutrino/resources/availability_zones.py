"""Availability zones (``GET /v2.0/availability_zones``): a read-only view derived from agents.

One entry per (zone, resource): DHCP agents make zones for ``network``, L3 agents for ``router``.
There is no member URL, no paging and no sorting, as in Neutron; ``name``, ``resource`` and
``state`` filter the list (``availability_zone_filter``).
"""

from neutrino.resources import types as t
from neutrino.resources.definition import Attribute, Resource
from neutrino.resources.extensions import Extension

RESOURCE_KINDS = ("network", "router")
STATES = ("available", "unavailable")

AVAILABILITY_ZONE = Resource(
    name="availability_zone", collection="availability_zones", path="availability_zones",
    service="availability_zone", standard_attrs=False, project_owned=False, allow_create=False, allow_show=False,
    allow_update=False, allow_delete=False, allow_bulk=False, allow_pagination=False,
    extension="availability_zone",
    attributes=(
        Attribute("name", t.String(255), filterable=True),
        Attribute("resource", t.String(255), filterable=True),
        Attribute("state", t.String(255), filterable=True),
    ),
)

AZ_EXTENSIONS: tuple[Extension, ...] = (
    Extension("availability_zone", "Availability Zone", "The availability zone extension.",
              "2015-01-01T10:00:00-00:00"),
    Extension("network_availability_zone", "Network Availability Zone", "Availability zone support for network.",
              "2015-01-01T10:00:00-00:00"),
    Extension("availability_zone_filter", "Availability Zone Filter Extension",
              "Add filter parameters to AvailabilityZone resource", "2018-06-22T10:00:00-00:00"),
)
