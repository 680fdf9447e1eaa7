"""The local IP service plugin's API contract (``local_ip``): node-local virtual addresses and their
port associations, after neutron-lib's ``local_ip`` definition."""

from __future__ import annotations

from neutrino.resources import types as t
from neutrino.resources.definition import (
    MISSING,
    Attribute,
    Parent,
    Resource,
    description_attr,
    id_attr,
    name_attr,
    project_attrs,
    standard_attrs,
)
from neutrino.resources.extensions import Extension

IP_MODES = ("translate", "passthrough")

LOCAL_IP = Resource(
    name="local_ip", collection="local_ips", path="local_ips", extension="local_ip",
    attributes=(
        id_attr(), name_attr(), description_attr(), *project_attrs(),
        Attribute("local_port_id", t.Uuid(), default=MISSING, allow_post=True, filterable=True, sortable=True,
                  column="local_port_id"),
        Attribute("network_id", t.Uuid(), default=MISSING, allow_post=True, filterable=True, sortable=True,
                  column="network_id"),
        Attribute("local_ip_address", t.IpAddress(nullable=True), default=MISSING, allow_post=True,
                  filterable=True, sortable=True, column="local_ip_address", enforce_policy=True),
        Attribute("ip_mode", t.Enum(IP_MODES), default="translate", allow_post=True, filterable=True,
                  sortable=True, column="ip_mode"),
        *standard_attrs(),
    ),
)

LOCAL_IP_ASSOCIATION = Resource(
    name="port_association", collection="port_associations", path="port_associations",
    service="local_ip_association", parent=Parent("local_ip", "local_ips", "local_ip_id"),
    policy_name="local_ip_port_association", extension="local_ip", standard_attrs=False, project_owned=False,
    allow_update=False, allow_bulk=False,
    attributes=(
        Attribute("local_ip_id", t.Uuid()),
        Attribute("local_ip_address", t.String(), filterable=True, sortable=True, column="local_ip_address"),
        Attribute("fixed_port_id", t.Uuid(), allow_post=True, required=True, filterable=True, sortable=True,
                  column="fixed_port_id"),
        Attribute("fixed_ip", t.IpAddress(nullable=True), default=None, allow_post=True, filterable=True,
                  sortable=True, column="fixed_ip"),
        Attribute("host", t.String(), filterable=True, sortable=True, column="host"),
        Attribute("project_id", t.String(255), allow_post=True, visible=False),
    ),
)

LOCAL_IP_EXTENSIONS: tuple[Extension, ...] = (
    Extension("local_ip", "Local IP", "Support Node Local Virtual IP", "2021-07-26T10:00:00-00:00"),
)
