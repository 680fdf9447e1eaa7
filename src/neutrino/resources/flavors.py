"""The flavors service plugin's API contract (``flavors``, ``service-type``) and the router flavor
attribute (``l3-flavors``, declared on routers in :mod:`neutrino.resources.l3`).

Attribute maps follow neutron-lib's ``flavors`` and ``servicetype`` definitions: flavors and
service profiles are the admin's; a flavor's ``service_profiles`` sub-collection binds profiles
to it; ``service-providers`` lists the drivers a flavor's profile may name.
"""

from __future__ import annotations

from neutrino.resources import types as t
from neutrino.resources.definition import (
    Attribute,
    MemberAction,
    Parent,
    Resource,
    bool_attr,
    id_attr,
    name_attr,
)
from neutrino.resources.extensions import Extension

LONG = 1024

FLAVOR = Resource(
    name="flavor", collection="flavors", path="flavors", extension="flavors", standard_attrs=False,
    project_owned=False,
    attributes=(
        id_attr(), name_attr(),
        Attribute("description", t.String(LONG, nullable=True), default="", allow_post=True, allow_put=True,
                  filterable=True, sortable=True, column="description"),
        Attribute("service_type", t.String(36), allow_post=True, required=True, filterable=True, sortable=True,
                  column="service_type"),
        Attribute("service_profiles", t.ListOf(t.Uuid(), unique=True), default=[], allow_post=True, allow_put=True),
        bool_attr("enabled", True),
    ),
    member_actions=(
        MemberAction("next_providers", method="GET", policy="get_flavor"),
    ),
)

SERVICE_PROFILE = Resource(
    name="service_profile", collection="service_profiles", path="service_profiles", extension="flavors",
    standard_attrs=False, project_owned=False,
    attributes=(
        id_attr(),
        Attribute("description", t.String(LONG, nullable=True), default="", allow_post=True, allow_put=True,
                  filterable=True, sortable=True, column="description"),
        Attribute("driver", t.String(LONG), default="", allow_post=True, allow_put=True, filterable=True,
                  sortable=True, column="driver"),
        Attribute("metainfo", t.String(None), default="", allow_post=True, allow_put=True, sortable=True,
                  column="metainfo"),
        bool_attr("enabled", True),
    ),
)

# ``flavors/{id}/service_profiles``: a body ``{"service_profile": {"id": ...}}`` binds one.
FLAVOR_SERVICE_PROFILE = Resource(
    name="service_profile", collection="service_profiles", path="service_profiles", service="flavor_service_profile",
    parent=Parent("flavor", "flavors", "flavor_id"), policy_name="flavor_service_profile", extension="flavors",
    standard_attrs=False, project_owned=False, allow_update=False, allow_bulk=False, allow_pagination=False,
    attributes=(
        Attribute("id", t.Uuid(), allow_post=True, required=True, filterable=True),
        Attribute("project_id", t.String(255), allow_post=True, visible=False),
    ),
)

SERVICE_PROVIDER = Resource(
    name="service_provider", collection="service_providers", path="service-providers", extension="service-type",
    standard_attrs=False, project_owned=False, allow_create=False, allow_show=False, allow_update=False,
    allow_delete=False, allow_bulk=False, allow_pagination=False,
    attributes=(
        Attribute("service_type", t.String(), filterable=True),
        Attribute("name", t.String(), filterable=True),
        Attribute("default", t.Boolean(), filterable=True),
    ),
)

FLAVOR_EXTENSIONS: tuple[Extension, ...] = (
    Extension("flavors", "Neutron Service Flavors", "Flavor specification for Neutron advanced services.",
              "2015-09-17T10:00:00-00:00"),
    Extension("service-type", "Neutron Service Type Management",
              "API for retrieving service providers for Neutron advanced services", "2013-01-20T00:00:00-00:00"),
    Extension("l3-flavors", "Router Flavor Extension", "Flavor support for routers.", "2016-05-17T00:00:00-00:00",
              requires=("flavors", "router")),
)
