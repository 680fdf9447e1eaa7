"""The core plugin: networks, subnets, subnet pools, address scopes, ports, RBAC, quotas, IP
availability — with the type drivers ML2 would have."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table

from neutrino.db.schema import core as db
from neutrino.plugins import Components
from neutrino.resources.definition import Resource
from neutrino.resources.extensions import CORE_EXTENSIONS, Extension
from neutrino.resources.networks import NETWORK
from neutrino.resources.ports import PORT
from neutrino.resources.quotas import QUOTA
from neutrino.resources.rbac import RBAC_POLICY
from neutrino.resources.subnets import SUBNET
from neutrino.services.networks import NetworkService
from neutrino.services.ports import PortService
from neutrino.services.rbac import RbacService
from neutrino.services.subnets import SubnetService
from neutrino.services.type_drivers import TypeDrivers


class CorePlugin:
    name = "core"

    def resources(self) -> Sequence[Resource]:
        return (NETWORK, SUBNET, PORT, RBAC_POLICY, QUOTA)

    def extensions(self) -> Sequence[Extension]:
        return CORE_EXTENSIONS

    def taggable_tables(self) -> Mapping[str, Table]:
        return {"network": db.networks, "subnet": db.subnets, "port": db.ports}

    def build_services(self, c: Components) -> Mapping[str, Any]:
        rng = random.Random()
        types = TypeDrivers(c.settings.ml2)
        c.quotas.register("network", db.networks)
        c.quotas.register("subnet", db.subnets)
        c.quotas.register("port", db.ports)
        c.quotas.register("subnetpool", db.subnetpools)
        c.quotas.register("rbac_policy", db.rbac_policies)
        networks = NetworkService(c.db, c.notifier, c.quotas, types, rng)
        services: dict[str, Any] = {
            "network": networks,
            "subnet": SubnetService(c.db, c.notifier, c.quotas, networks, c.settings.ml2, rng=rng),
            "port": PortService(c.db, c.notifier, c.quotas, networks, c.settings.ml2, rng=rng),
            "rbac_policy": RbacService(c.db, c.notifier, c.quotas),
            "quota": c.quotas,
            "type_drivers": types,
        }
        return services
