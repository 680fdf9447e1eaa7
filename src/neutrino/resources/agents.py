"""Agents (admin only): registered by the agents themselves through ``report_state``."""

from neutrino.resources import types as t
from neutrino.resources.definition import Attribute, Resource, id_attr

AGENT = Resource(
    name="agent", collection="agents", path="agents", standard_attrs=False, project_owned=False,
    allow_create=False, allow_bulk=False, extension="agent",
    attributes=(
        id_attr(),
        Attribute("agent_type", t.String(), filterable=True, sortable=True, column="agent_type"),
        Attribute("binary", t.String(), filterable=True, sortable=True, column="binary"),
        Attribute("topic", t.String(), filterable=True, sortable=True, column="topic"),
        Attribute("host", t.String(), filterable=True, sortable=True, column="host"),
        Attribute("admin_state_up", t.Boolean(), allow_put=True, filterable=True, sortable=True,
                  column="admin_state_up"),
        Attribute("description", t.String(255, nullable=True), allow_put=True, filterable=True, sortable=True,
                  column="description"),
        Attribute("alive", t.Boolean(), filterable=True),
        Attribute("availability_zone", t.String(nullable=True), filterable=True, column="availability_zone"),
        Attribute("configurations", t.Any_()),
        Attribute("resources_synced", t.Boolean(nullable=True)),
        Attribute("heartbeat_timestamp", t.String(), sortable=True, column="heartbeat_timestamp"),
        Attribute("started_at", t.String(), sortable=True, column="started_at"),
        Attribute("created_at", t.String(), sortable=True, column="created_at"),
    ),
)
