"""Quotas: a per-project limits resource whose id is the project id."""

from neutrino.resources import types as t
from neutrino.resources.definition import Attribute, MemberAction, Resource

QUOTA = Resource(
    name="quota", collection="quotas", path="quotas", standard_attrs=False, project_owned=False,
    allow_create=False, allow_bulk=False, allow_pagination=False, extension="quotas",
    attributes=(
        Attribute("project_id", t.String(255), filterable=True),
        Attribute("tenant_id", t.String(255), filterable=True),
    ),
    member_actions=(
        MemberAction("default", method="GET", handler="get_default", policy="get_quota", fetch_target=False),
        MemberAction("details", method="GET", handler="get_details", policy="get_quota", fetch_target=False),
    ),
)
