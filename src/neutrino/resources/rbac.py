"""RBAC policies: share networks (and later other objects) with projects."""

from neutrino.resources import types as t
from neutrino.resources.definition import Attribute, Resource, id_attr, project_attrs

OBJECT_TYPES = ("network", "qos_policy", "security_group", "address_scope", "subnetpool", "address_group")
ACTIONS = ("access_as_shared", "access_as_external")

RBAC_POLICY = Resource(
    name="rbac_policy", collection="rbac_policies", path="rbac-policies", standard_attrs=False,
    allow_pagination=False, extension="rbac-policies",
    attributes=(
        id_attr(), *project_attrs(),
        Attribute("object_type", t.Enum(OBJECT_TYPES, lower=True), allow_post=True, required=True,
                  filterable=True, sortable=True, column="object_type"),
        Attribute("object_id", t.Uuid(), allow_post=True, required=True, filterable=True, sortable=True,
                  column="object_id"),
        Attribute("action", t.String(255), allow_post=True, required=True, filterable=True, sortable=True,
                  column="action"),
        Attribute("target_tenant", t.String(255), allow_post=True, allow_put=True, required=True,
                  filterable=True, sortable=True, column="target_project", enforce_policy=True),
        Attribute("target_project", t.String(255), filterable=True, column="target_project"),
    ),
)
