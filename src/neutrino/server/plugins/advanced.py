"""Advanced-service plugins: flavors (entry point ``flavors``), with the service providers list and
router flavors; metering labels and rules (``metering``); network logs (``log``); local IPs
(``local_ip``); NDP proxies (``ndp_proxy``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table

from neutrino.resources.definition import Resource
from neutrino.resources.extensions import Extension
from neutrino.resources.flavors import (
    FLAVOR,
    FLAVOR_EXTENSIONS,
    FLAVOR_SERVICE_PROFILE,
    SERVICE_PROFILE,
    SERVICE_PROVIDER,
)
from neutrino.resources.l3 import NDP_PROXY, NDP_PROXY_EXTENSIONS
from neutrino.resources.local_ips import LOCAL_IP, LOCAL_IP_ASSOCIATION, LOCAL_IP_EXTENSIONS
from neutrino.resources.logs import LOG, LOG_EXTENSIONS, LOGGABLE_RESOURCE
from neutrino.resources.metering import METERING_EXTENSIONS, METERING_LABEL, METERING_LABEL_RULE
from neutrino.server.plugins import Components
from neutrino.services.flavors import (
    SERVICE_TYPES,
    FlavorService,
    FlavorServiceProfileService,
    ServiceProfileService,
    ServiceProviderService,
)
from neutrino.services.local_ips import LocalIpAssociationService, LocalIpService
from neutrino.services.logs import LoggableResourceService, LogService
from neutrino.services.metering import MeteringLabelRuleService, MeteringLabelService
from neutrino.services.metering_agents import MeteringAgentService
from neutrino.services.ndp_proxies import NdpProxyService


class FlavorsPlugin:
    name = "flavors"

    def resources(self) -> Sequence[Resource]:
        return (FLAVOR, SERVICE_PROFILE, FLAVOR_SERVICE_PROFILE, SERVICE_PROVIDER)

    def extensions(self) -> Sequence[Extension]:
        return FLAVOR_EXTENSIONS

    def taggable_tables(self) -> Mapping[str, Table]:
        return {}

    def build_services(self, c: Components) -> Mapping[str, Any]:
        types = [SERVICE_TYPES[n] for n in c.plugin_names if n in SERVICE_TYPES]
        flavors = FlavorService(c.db, c.notifier, service_types=types)
        return {"flavor": flavors, "service_profile": ServiceProfileService(c.db, c.notifier),
                "flavor_service_profile": FlavorServiceProfileService(flavors),
                "service_provider": ServiceProviderService(c.plugin_names)}


class MeteringPlugin:
    name = "metering"

    def resources(self) -> Sequence[Resource]:
        return (METERING_LABEL, METERING_LABEL_RULE)

    def extensions(self) -> Sequence[Extension]:
        return METERING_EXTENSIONS

    def taggable_tables(self) -> Mapping[str, Table]:
        return {}

    def build_services(self, c: Components) -> Mapping[str, Any]:
        c.desired_state["metering"] = MeteringAgentService(c.db).sync_state
        return {"metering_label": MeteringLabelService(c.db, c.notifier),
                "metering_label_rule": MeteringLabelRuleService(c.db, c.notifier)}


class LogPlugin:
    name = "log"

    def resources(self) -> Sequence[Resource]:
        return (LOG, LOGGABLE_RESOURCE)

    def extensions(self) -> Sequence[Extension]:
        return LOG_EXTENSIONS

    def taggable_tables(self) -> Mapping[str, Table]:
        return {}

    def build_services(self, c: Components) -> Mapping[str, Any]:
        return {"log": LogService(c.db, c.notifier), "loggable_resource": LoggableResourceService()}


class LocalIpPlugin:
    name = "local_ip"

    def resources(self) -> Sequence[Resource]:
        return (LOCAL_IP, LOCAL_IP_ASSOCIATION)

    def extensions(self) -> Sequence[Extension]:
        return LOCAL_IP_EXTENSIONS

    def taggable_tables(self) -> Mapping[str, Table]:
        return {}

    def build_services(self, c: Components) -> Mapping[str, Any]:
        local_ips = LocalIpService(c.db, c.notifier, c.services["port"])
        return {"local_ip": local_ips, "local_ip_association": LocalIpAssociationService(local_ips)}


class NdpProxyPlugin:
    name = "ndp_proxy"

    def resources(self) -> Sequence[Resource]:
        return (NDP_PROXY,)

    def extensions(self) -> Sequence[Extension]:
        return NDP_PROXY_EXTENSIONS

    def taggable_tables(self) -> Mapping[str, Table]:
        return {}

    def build_services(self, c: Components) -> Mapping[str, Any]:
        return {"ndp_proxy": NdpProxyService(c.db, c.notifier)}
