"""The QoS service plugin (entry point ``qos``): policies, their rules, rule types, and the QoS
attributes of networks and ports.

Besides serving its collections it plugs into the core at composition time, never through imports
from the core: networks and ports check the ``qos_policy_id`` they are asked to use through the
policy service (and new networks take their project's default policy), and RBAC refuses to unshare
a policy other projects' networks or ports use. Without this plugin no policy exists, so naming
one is a 404.

The data plane does not enforce QoS yet (no agent applies the rules); the rule types' details say so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table

from neutrino.db.schema.qos import qos_policies
from neutrino.resources.definition import Resource
from neutrino.resources.extensions import Extension
from neutrino.resources.ports import PORT_RESOURCE_REQUEST_EXTENSIONS
from neutrino.resources.qos import (
    ALIAS_RESOURCES,
    QOS_EXTENSIONS,
    QOS_POLICY,
    RULE_KINDS,
    RULE_RESOURCES,
    RULE_TYPE,
)
from neutrino.server.plugins import Components
from neutrino.services.qos import QosPolicyService, QosRuleAliasService, QosRuleService, QosRuleTypeService
from neutrino.services.qos_agents import QosAgentService


class QosPlugin:
    name = "qos"

    def resources(self) -> Sequence[Resource]:
        return (QOS_POLICY, *RULE_RESOURCES, *ALIAS_RESOURCES, RULE_TYPE)

    def extensions(self) -> Sequence[Extension]:
        return (*QOS_EXTENSIONS, *PORT_RESOURCE_REQUEST_EXTENSIONS)

    def taggable_tables(self) -> Mapping[str, Table]:
        return {QOS_POLICY.name: qos_policies}

    def build_services(self, c: Components) -> Mapping[str, Any]:
        policies = QosPolicyService(c.db, c.notifier)
        # The core's hooks (set here, at composition; the core never imports this plugin).
        c.services["network"].qos_policies = policies
        c.services["rbac_policy"].in_use_checks["qos_policy"] = policies.rbac_dependents
        qos_agents = QosAgentService(c.db, c.services["l2_agents"])
        c.desired_state["qos"] = qos_agents.sync_state
        services: dict[str, Any] = {"qos_agents": qos_agents, QOS_POLICY.service_key: policies,
                                    RULE_TYPE.service_key: QosRuleTypeService()}
        aliases = {res.name: res for res in ALIAS_RESOURCES}
        for kind, rule_res in zip(RULE_KINDS, RULE_RESOURCES, strict=True):
            rule_service = QosRuleService(c.db, c.notifier, policies, kind)
            services[rule_res.service_key] = rule_service
            alias_res = aliases.get(f"alias_{kind.name}")
            if alias_res is not None:
                services[alias_res.service_key] = QosRuleAliasService(c.db, rule_service)
        return services
