"""Auto-allocated topology (``auto-allocated-topology``): ``GET /v2.0/auto-allocated-topology/{project_id}``
answers the project's ready-made network, making it first if needed (a network with subnets from
the default subnet pools, behind a router whose gateway is on the default external network);
``DELETE`` takes it apart. The member id is a project id (``None`` means the caller's).
``?fields=dry-run`` only checks that a topology could be made (``{"id": "dry-run=pass"}``).
"""

from neutrino.resources import types as t
from neutrino.resources.definition import Attribute, Resource
from neutrino.resources.extensions import Extension

AUTO_ALLOCATED_TOPOLOGY = Resource(
    name="auto_allocated_topology", collection="auto_allocated_topologies", path="auto-allocated-topology",
    standard_attrs=False, allow_create=False, allow_update=False, allow_bulk=False, allow_pagination=False,
    member_is_project=True, show_takes_fields=True, extension="auto-allocated-topology",
    attributes=(
        Attribute("id", t.Uuid()),  # the project's auto-allocated network
        Attribute("project_id", t.String(255), filterable=True),
        Attribute("tenant_id", t.String(255), filterable=True),
    ),
)

AUTO_ALLOCATE_EXTENSIONS: tuple[Extension, ...] = (
    Extension("auto-allocated-topology", "Auto Allocated Topology Services", "Auto Allocated Topology Services.",
              "2016-01-01T00:00:00-00:00"),
)
