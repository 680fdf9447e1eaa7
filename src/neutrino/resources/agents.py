"""Agents (admin only): registered by the agents themselves through ``report_state``.

The DHCP and L3 scheduler endpoints hang off agents as declared actions answered by the scheduling
services (``agents/{id}/dhcp-networks[/{network_id}]``, ``agents/{id}/l3-routers[/{router_id}]``).
Neutron's scheduler controllers check their admin-only rules themselves, before looking anything
up, so a non-admin gets 403 even for an agent that does not exist: ``fetch_target=False``.
"""

from neutrino.resources import types as t
from neutrino.resources.definition import Attribute, MemberAction, Resource, id_attr
from neutrino.resources.extensions import Extension


def scheduler_actions(name: str, service: str) -> tuple[MemberAction, ...]:
    """List (GET), add (POST ``{"network_id": id}``) and remove (DELETE ``.../{id}``) for one
    scheduler collection such as ``dhcp-networks``; policies ``get_<name>``, ``create_<singular>``,
    ``delete_<singular>`` as Neutron names them."""
    singular = name.removesuffix("s")
    key = name.replace("-", "_")
    return (
        MemberAction(name, method="GET", handler=key, policy=f"get_{name}", fetch_target=False, service=service),
        MemberAction(name, method="POST", handler=f"add_{key.removesuffix('s')}", policy=f"create_{singular}",
                     status=201, null_body=True, fetch_target=False, service=service),
        MemberAction(name, method="DELETE", handler=f"remove_{key.removesuffix('s')}", policy=f"delete_{singular}",
                     status=204, sub_id=True, fetch_target=False, service=service),
    )


AGENT = Resource(
    name="agent", collection="agents", path="agents", standard_attrs=False, project_owned=False,
    allow_create=False, allow_bulk=False, extension="agent",
    member_actions=(*scheduler_actions("dhcp-networks", "dhcp_scheduler"),
                    *scheduler_actions("l3-routers", "l3_scheduler")),
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
        # agent_sort_key: every attribute but ``configurations`` sorts (``alive`` by heartbeat age).
        Attribute("alive", t.Boolean(), filterable=True, sortable=True),
        Attribute("availability_zone", t.String(nullable=True), filterable=True, sortable=True,
                  column="availability_zone"),
        Attribute("configurations", t.Any_()),
        # Whether the agent's last report of its resources reached placement (agent-resources-synced):
        # as the agent says in report_state; None until it says.
        Attribute("resources_synced", t.Boolean(nullable=True), sortable=True, column="resources_synced",
                  extension="agent-resources-synced"),
        Attribute("heartbeat_timestamp", t.String(), sortable=True, column="heartbeat_timestamp"),
        Attribute("started_at", t.String(), sortable=True, column="started_at"),
        Attribute("created_at", t.String(), sortable=True, column="created_at"),
    ),
)

DHCP_SCHEDULER_EXTENSIONS: tuple[Extension, ...] = (
    Extension("dhcp_agent_scheduler", "DHCP Agent Scheduler", "Schedule networks among dhcp agents",
              "2013-02-07T10:00:00-00:00"),
)
