"""Network IP availability (admin/service read-only view)."""

from neutrino.resources import types as t
from neutrino.resources.definition import Attribute, Resource

NETWORK_IP_AVAILABILITY = Resource(
    name="network_ip_availability", collection="network_ip_availabilities", path="network-ip-availabilities",
    standard_attrs=False, allow_create=False, allow_update=False, allow_delete=False, allow_bulk=False,
    allow_pagination=False,  # no ids to page by, as in Neutron
    extension="network-ip-availability",
    attributes=(
        Attribute("network_id", t.Uuid(), filterable=True, sortable=True, column="id"),
        Attribute("network_name", t.String(), filterable=True, sortable=True, column="name"),
        Attribute("project_id", t.String(), filterable=True, sortable=True, column="project_id"),
        Attribute("tenant_id", t.String(), filterable=True, sortable=True, column="project_id"),
        Attribute("ip_version", t.Integer(), filterable=True, filter_type=t.Integer()),
        # Exact counts as Neutron shows them: a /64 alone is beyond any 64-bit integer.
        Attribute("total_ips", t.Integer(), view_type=t.Count()),
        Attribute("used_ips", t.Integer(), view_type=t.Count()),
        Attribute("subnet_ip_availability", t.Any_()),
        # Sizes and use of the CIDRs and of the allocation pools apart (each subnet has its own too).
        Attribute("ip_availability_details", t.Any_(), extension="network-ip-availability-details"),
    ),
)
