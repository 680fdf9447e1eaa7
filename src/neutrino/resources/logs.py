"""The logging service plugin's API contract (``logging``): network logs of security group events
and the resource types that can be logged, after neutron-lib's ``logging`` definition (prefix
``/log``). Logs are the admin's, as Neutron's default policy has them.
"""

from __future__ import annotations

from neutrino.resources import types as t
from neutrino.resources.definition import (
    Attribute,
    Resource,
    bool_attr,
    description_attr,
    id_attr,
    name_attr,
    project_attrs,
    standard_attrs,
)
from neutrino.resources.extensions import Extension

LOG_EVENTS = ("ACCEPT", "DROP", "ALL")

LOG = Resource(
    name="log", collection="logs", path="log/logs", extension="logging",
    attributes=(
        id_attr(), name_attr(), description_attr(), *project_attrs(),
        Attribute("resource_type", t.String(36), allow_post=True, required=True, filterable=True, sortable=True,
                  column="resource_type"),
        Attribute("resource_id", t.Uuid(nullable=True), default=None, allow_post=True, filterable=True,
                  sortable=True, column="resource_id"),
        Attribute("event", t.Enum(LOG_EVENTS), default="ALL", allow_post=True, filterable=True, column="event"),
        Attribute("target_id", t.Uuid(nullable=True), default=None, allow_post=True, filterable=True,
                  sortable=True, column="target_id"),
        bool_attr("enabled", True),
        *standard_attrs(),
    ),
)

LOGGABLE_RESOURCE = Resource(
    name="loggable_resource", collection="loggable_resources", path="log/loggable-resources", extension="logging",
    standard_attrs=False, project_owned=False, allow_create=False, allow_show=False, allow_update=False,
    allow_delete=False, allow_bulk=False, allow_pagination=False,
    attributes=(Attribute("type", t.String()),),
)

LOG_EXTENSIONS: tuple[Extension, ...] = (
    Extension("logging", "Logging API Extension", "Provides a logging API for resources such as security group "
              "and firewall.", "2017-01-01T10:00:00-00:00", requires=("security-group",)),
)
