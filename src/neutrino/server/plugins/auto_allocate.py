"""The auto-allocate service plugin (entry point ``auto_allocate``): ``auto-allocated-topology``.

It builds a project's network, subnets and router through the core's and the L3 plugin's services,
so it must come after ``router`` in ``[server] service_plugins``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table

from neutrino.config import ConfigError
from neutrino.resources.auto_allocated_topology import AUTO_ALLOCATE_EXTENSIONS, AUTO_ALLOCATED_TOPOLOGY
from neutrino.resources.definition import Resource
from neutrino.resources.extensions import Extension
from neutrino.server.plugins import Components
from neutrino.services.auto_allocated_topology import AutoAllocatedTopologyService


class AutoAllocatePlugin:
    name = "auto_allocate"

    def resources(self) -> Sequence[Resource]:
        return (AUTO_ALLOCATED_TOPOLOGY,)

    def extensions(self) -> Sequence[Extension]:
        return AUTO_ALLOCATE_EXTENSIONS

    def taggable_tables(self) -> Mapping[str, Table]:
        return {}

    def build_services(self, c: Components) -> Mapping[str, Any]:
        if "router" not in c.services:
            raise ConfigError("service plugin 'auto_allocate' needs the 'router' plugin listed before it")
        return {AUTO_ALLOCATED_TOPOLOGY.service_key: AutoAllocatedTopologyService(
            c.db, c.services["network"], c.services["subnet"], c.services["subnetpool"], c.services["router"])}
