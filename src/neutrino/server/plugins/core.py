"""The core plugin: networks, subnets, subnet pools, address scopes, ports, RBAC, quotas, IP
availability, agents with their DHCP/L3 schedulers and availability zones — with the type drivers
ML2 would have."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table

from neutrino.db.schema import core as db
from neutrino.resources.agents import AGENT, DHCP_SCHEDULER_EXTENSIONS
from neutrino.resources.availability import NETWORK_IP_AVAILABILITY
from neutrino.resources.availability_zones import AVAILABILITY_ZONE, AZ_EXTENSIONS
from neutrino.resources.definition import Resource
from neutrino.resources.extensions import CORE_EXTENSIONS, Extension
from neutrino.resources.networks import NETWORK
from neutrino.resources.ports import PORT, PORT_BINDING, PORT_BINDING_EXTENSIONS
from neutrino.resources.quotas import QUOTA
from neutrino.resources.rbac import RBAC_POLICY
from neutrino.resources.segments import NETWORK_SEGMENT_RANGE, SEGMENT, SEGMENT_EXTENSIONS
from neutrino.resources.subnetpools import ADDRESS_SCOPE, SUBNETPOOL
from neutrino.resources.subnets import SUBNET
from neutrino.resources.trunks import TRUNK, TRUNK_EXTENSIONS
from neutrino.server.plugins import Components
from neutrino.services.address_scopes import AddressScopeService
from neutrino.services.agents import AgentService
from neutrino.services.availability_zones import AvailabilityZoneService
from neutrino.services.binding import MechanismBinder, build_mechanisms
from neutrino.services.dhcp_agents import DhcpAgentService
from neutrino.services.ip_availability import IpAvailabilityService
from neutrino.services.l2_agents import L2AgentService
from neutrino.services.metadata_agents import MetadataAgentService
from neutrino.services.networks import NetworkService
from neutrino.services.port_bindings import PortBindingService
from neutrino.services.ports import PortService
from neutrino.services.rbac import RbacService
from neutrino.services.scheduling import AgentFailover, DhcpAgentScheduler, L3AgentScheduler
from neutrino.services.segment_ranges import NetworkSegmentRangeService
from neutrino.services.segments import SegmentService
from neutrino.services.subnetpools import SubnetPoolService
from neutrino.services.subnets import SubnetService
from neutrino.services.trunks import TrunkService
from neutrino.services.type_drivers import TypeDrivers

# Heartbeats of agents that are alive and report nothing new, arriving within this window, are
# written together (services/agents.py): at 1000 agents every 30 s, about eight per transaction.
HEARTBEAT_BATCH_SECONDS = 0.25


class CorePlugin:
    name = "core"

    def resources(self) -> Sequence[Resource]:
        return (NETWORK, SUBNET, SUBNETPOOL, ADDRESS_SCOPE, PORT, RBAC_POLICY, QUOTA, NETWORK_IP_AVAILABILITY,
                AGENT, AVAILABILITY_ZONE, SEGMENT, NETWORK_SEGMENT_RANGE, TRUNK, PORT_BINDING)

    def extensions(self) -> Sequence[Extension]:
        return (*CORE_EXTENSIONS, *AZ_EXTENSIONS, *DHCP_SCHEDULER_EXTENSIONS, *SEGMENT_EXTENSIONS,
                *TRUNK_EXTENSIONS, *PORT_BINDING_EXTENSIONS)

    def taggable_tables(self) -> Mapping[str, Table]:
        return {"network": db.networks, "subnet": db.subnets, "subnetpool": db.subnetpools, "port": db.ports,
                NETWORK_SEGMENT_RANGE.name: db.network_segment_ranges, TRUNK.name: db.trunks}

    def build_services(self, c: Components) -> Mapping[str, Any]:
        rng = random.Random()
        types = TypeDrivers(c.settings.ml2)
        c.quotas.register("network", db.networks)
        c.quotas.register("subnet", db.subnets)
        c.quotas.register("port", db.ports)
        c.quotas.register("subnetpool", db.subnetpools)
        c.quotas.register("rbac_policy", db.rbac_policies)
        networks = NetworkService(c.db, c.notifier, c.quotas, types, rng)
        address_scopes = AddressScopeService(c.db, c.notifier)
        subnetpools = SubnetPoolService(c.db, c.notifier, c.quotas, address_scopes, rng=rng)
        agents = AgentService(c.db, c.notifier, agent_down_time=c.settings.agent.agent_down_time_seconds,
                              report_interval=c.settings.agent.report_interval_seconds,
                              resync_rate=c.settings.server.agent_resync_rate, batch_window=HEARTBEAT_BATCH_SECONDS)
        binder = MechanismBinder(agents, build_mechanisms(c.settings.ml2.mechanism_drivers))
        agents.on_l2_agent_arrived.append(binder.rebind_failed)
        ports = PortService(c.db, c.notifier, c.quotas, networks, c.settings.ml2, binder=binder, rng=rng)
        trunks = TrunkService(c.db, c.notifier)
        ports.before_delete.append(trunks.check_port_delete)
        dhcp_agents = DhcpAgentService(c.db, c.notifier, ports, dns_domain=c.settings.ml2.dns_domain)
        dhcp_scheduler = DhcpAgentScheduler(c.db, c.notifier, agents, networks,
                                            agents_per_network=c.settings.ml2.dhcp_agents_per_network,
                                            ports=dhcp_agents)
        # Routers come with the L3 plugin, built after the core: looked up when first needed.
        l3_scheduler = L3AgentScheduler(c.db, c.notifier, agents, lambda: c.services.get("router"))
        c.notifier.add_listener(dhcp_scheduler.on_committed)
        c.notifier.add_listener(l3_scheduler.on_committed)
        l2_agents = L2AgentService(c.db, c.notifier, agents)
        # DHCP provisioning blocks: a port waits for its network's DHCP agent (dhcp_ready_on_ports),
        # again after its addresses change, and no longer once no alive agent serves the network.
        provisioning = l2_agents.provisioning
        ports.after_addresses_change.append(provisioning.reblock_dhcp)
        ports.after_mac_change.append(provisioning.reblock_dhcp_mac)

        async def dhcp_ready_on_ports(payload: dict[str, Any]) -> dict[str, Any]:
            """The DHCP role serves these ports (docs/agent-contract.md)."""
            return await provisioning.dhcp_ready(payload["host"], list(payload.get("ports") or ()))

        c.agent_calls["dhcp_ready_on_ports"] = dhcp_ready_on_ports
        server = c.settings.server
        failover = AgentFailover(dhcp_scheduler if server.allow_automatic_dhcp_failover else None,
                                 l3_scheduler if server.allow_automatic_l3agent_failover else None,
                                 interval=max(c.settings.agent.agent_down_time_seconds / 2, 1.0), rng=rng,
                                 periodic=(provisioning.release_unserved,))
        c.desired_state["l2"] = l2_agents.sync_state
        c.desired_state["dhcp"] = dhcp_agents.sync_state
        c.desired_state["metadata"] = MetadataAgentService(c.db).sync_state
        services: dict[str, Any] = {
            "network": networks,
            "subnet": SubnetService(c.db, c.notifier, c.quotas, networks, c.settings.ml2, subnetpools=subnetpools,
                                    rng=rng),
            "subnetpool": subnetpools,
            "address_scope": address_scopes,
            "network_ip_availability": IpAvailabilityService(c.db),
            "port": ports,
            "agent": agents,
            "dhcp_scheduler": dhcp_scheduler,
            "l3_scheduler": l3_scheduler,
            "agent_failover": failover,
            "availability_zone": AvailabilityZoneService(c.db),
            "l2_agents": l2_agents,
            "dhcp_agents": dhcp_agents,
            "rbac_policy": RbacService(c.db, c.notifier, c.quotas),
            "quota": c.quotas,
            "type_drivers": types,
            "segment": SegmentService(c.db, c.notifier, networks),
            TRUNK.service_key: trunks,
            PORT_BINDING.service_key: PortBindingService(c.db, c.notifier, ports),
            NETWORK_SEGMENT_RANGE.service_key: NetworkSegmentRangeService(c.db, c.notifier, types),
        }
        return services
