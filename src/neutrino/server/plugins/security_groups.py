"""The security-group service plugin: security groups, their rules, ports' membership of them, and
the address groups rules may point at (``address-group``, as ML2 offers them beside its groups).

Enabled by name (``security_group``) in ``[server] service_plugins``. Besides serving its two
collections it plugs into the core at composition time, never through imports from the core:
ports store and show their groups through :class:`PortSecurityGroupBindings`, a project that makes
a network gets its default group, RBAC refuses to unshare a group other projects' ports use (or an
address group other projects' rules name), and L2 agents see each port's group ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table

from neutrino.db.schema.security_groups import securitygrouprules, securitygroups
from neutrino.resources.address_groups import ADDRESS_GROUP, ADDRESS_GROUP_EXTENSIONS
from neutrino.resources.definition import Resource
from neutrino.resources.extensions import Extension
from neutrino.resources.security_groups import (
    DEFAULT_SECURITY_GROUP_RULE,
    SECURITY_GROUP,
    SECURITY_GROUP_RULE,
    SG_DEFAULT_STATEFULNESS,
)
from neutrino.server.plugins import Components
from neutrino.services.address_groups import AddressGroupService
from neutrino.services.default_security_group_rules import DefaultSecurityGroupRuleService
from neutrino.services.firewall_agents import FirewallAgentService
from neutrino.services.security_groups import (
    PortSecurityGroupBindings,
    SecurityGroupRuleService,
    SecurityGroupService,
)
from neutrino.services.sg_default_statefulness import DefaultStatefulnessService

EXTENSIONS: tuple[Extension, ...] = (
    Extension("security-group", "security-group", "The security groups extension.", "2012-10-05T10:00:00-00:00"),
    Extension("stateful-security-group", "Stateful security group",
              "Indicates if the security group is stateful or not", "2019-11-26T09:00:00-00:00"),
    Extension("security-groups-normalized-cidr", "Normalized CIDR field for security group rules",
              "Add new field with normalized remote_ip_prefix cidr in SG rule", "2020-07-28T10:00:00-00:00"),
    Extension("security-groups-shared-filtering", "Security group filtering on the shared field",
              "Support filtering security groups on the shared field", "2021-10-05T09:00:00-00:00"),
    Extension("rbac-security-groups", "Add security_group type to network RBAC",
              "Add security_group type to network RBAC", "2019-02-14T00:00:00-00:00"),
    Extension("security-groups-rules-belongs-to-default-sg",
              "Security group rule belongs to the project's default security group",
              "Flag to determine if the security group rule belongs to the project's default security group",
              "2023-05-23T10:00:00-00:00"),
    Extension("port-security-groups-filtering", "Port filtering on security groups",
              "Provides security groups filtering when listing ports", "2018-01-09T09:00:00-00:00"),
    Extension("security-groups-default-rules", "Default rules for security groups",
              "Configure set of security group rules used as default rules for every new security group",
              "2022-12-19T10:00:00-00:00"),
    Extension("security-groups-default-statefulness", "Security Groups Default Statefulness",
              "Allows configuring the default value of the 'stateful' attribute for new security groups, on a "
              "per-project or system-wide basis", "2026-04-13T00:00:00-00:00"),
)


class SecurityGroupPlugin:
    name = "security_group"

    def resources(self) -> Sequence[Resource]:
        return (SECURITY_GROUP, SECURITY_GROUP_RULE, DEFAULT_SECURITY_GROUP_RULE, ADDRESS_GROUP,
                SG_DEFAULT_STATEFULNESS)

    def extensions(self) -> Sequence[Extension]:
        return (*EXTENSIONS, *ADDRESS_GROUP_EXTENSIONS)

    def taggable_tables(self) -> Mapping[str, Table]:
        return {"security_group": securitygroups}

    def build_services(self, c: Components) -> Mapping[str, Any]:
        c.quotas.register("security_group", securitygroups)
        c.quotas.register("security_group_rule", securitygrouprules)
        groups = SecurityGroupService(c.db, c.notifier, c.quotas)
        port_groups = PortSecurityGroupBindings(groups)
        # The core's hooks (set here, at composition; the core never imports this plugin).
        c.services["port"].security_groups = port_groups
        c.services["l2_agents"].security_groups = port_groups
        c.services["network"].on_created.append(groups.network_created)
        c.services["rbac_policy"].in_use_checks["security_group"] = groups.rbac_dependents
        c.services["rbac_policy"].in_use_checks["address_group"] = AddressGroupService.rbac_dependents
        firewall = FirewallAgentService(c.db, c.services["l2_agents"])
        c.desired_state["firewall"] = firewall.sync_state
        return {
            "firewall_agents": firewall,
            "address_group": AddressGroupService(c.db, c.notifier),
            "security_group": groups,
            "security_group_rule": SecurityGroupRuleService(c.db, c.notifier, c.quotas, groups),
            DEFAULT_SECURITY_GROUP_RULE.service_key: DefaultSecurityGroupRuleService(c.db, c.notifier),
            SG_DEFAULT_STATEFULNESS.service_key: DefaultStatefulnessService(c.db, c.notifier),
        }
