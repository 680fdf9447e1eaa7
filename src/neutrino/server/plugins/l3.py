"""The L3 service plugin (entry point ``router``): routers, floating IPs, floating IP pools, port
forwardings and conntrack helpers, with the extensions they implement and their quotas.

It builds on the core plugin's network and port services (router and floating IP ports are
ordinary ports made through them) and registers with the port service the hooks that release
floating IPs and port forwardings when a port is deleted or loses the address they use, and with
the subnet service the hook that gives gateway ports an address on a new external subnet.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table

from neutrino.db.schema import l3 as db
from neutrino.resources.definition import Resource
from neutrino.resources.extensions import Extension
from neutrino.resources.l3 import (
    CONNTRACK_HELPER,
    FLOATINGIP,
    FLOATINGIP_POOL,
    L3_EXTENSIONS,
    PORT_FORWARDING,
    ROUTER,
)
from neutrino.server.plugins import Components
from neutrino.services.conntrack_helpers import ConntrackHelperService
from neutrino.services.floating_ips import FloatingIpPoolService, FloatingIpService
from neutrino.services.l3_agents import L3AgentService
from neutrino.services.l3_ha import HaSettings, L3HaService
from neutrino.services.port_forwardings import PortForwardingService
from neutrino.services.routers import RouterService


class L3Plugin:
    name = "router"

    def resources(self) -> Sequence[Resource]:
        return (ROUTER, FLOATINGIP, FLOATINGIP_POOL, PORT_FORWARDING, CONNTRACK_HELPER)

    def extensions(self) -> Sequence[Extension]:
        return L3_EXTENSIONS

    def taggable_tables(self) -> Mapping[str, Table]:
        return {"router": db.routers, "floatingip": db.floatingips}

    def build_services(self, c: Components) -> Mapping[str, Any]:
        rng = random.Random()
        networks, ports = c.services["network"], c.services["port"]
        c.quotas.register("router", db.routers)
        c.quotas.register("floatingip", db.floatingips)
        floating_ips = FloatingIpService(c.db, c.notifier, c.quotas, networks, ports, rng=rng)
        ports.before_delete.append(floating_ips.release_port)
        ports.after_addresses_change.append(floating_ips.port_addresses_changed)
        server = c.settings.server
        ha = L3HaService(networks, c.services["subnet"], ports, HaSettings(
            server.l3_ha_net_cidr, server.ha_vrrp_advert_int, server.max_l3_agents_per_router))
        routers = RouterService(c.db, c.notifier, c.quotas, networks, ports, rng=rng,
                                gateway_qos="qos-gateway-ip" in c.extensions, ha=ha, ha_by_default=server.l3_ha)
        c.services["subnet"].on_created.append(routers.subnet_created)
        networks.on_created.append(ha.network_created)
        scheduler = c.services.get("l3_scheduler")
        if scheduler is not None:
            scheduler.ha = ha
        l3_agents = L3AgentService(c.db, c.notifier, ports, ha)
        c.desired_state["l3"] = l3_agents.sync_state

        async def update_floatingip_statuses(payload: dict[str, Any]) -> dict[str, Any]:
            """The l3 role's floating IPs as it realised them (docs/agent-contract.md)."""
            return await l3_agents.update_floatingip_statuses(payload["host"], dict(payload.get("statuses") or {}))

        async def update_router_statuses(payload: dict[str, Any]) -> dict[str, Any]:
            """The l3 role's routers as it wired them (docs/agent-contract.md)."""
            return await l3_agents.update_router_statuses(payload["host"], dict(payload.get("statuses") or {}))

        async def update_ha_router_states(payload: dict[str, Any]) -> dict[str, Any]:
            """The VRRP states of the l3 role's HA routers (docs/agent-contract.md)."""
            return await l3_agents.update_ha_states(payload["host"], dict(payload.get("states") or {}))

        c.agent_calls["update_ha_router_states"] = update_ha_router_states
        c.agent_calls["update_floatingip_statuses"] = update_floatingip_statuses
        c.agent_calls["update_router_statuses"] = update_router_statuses
        return {
            "router": routers,
            "floatingip": floating_ips,
            "floatingip_pool": FloatingIpPoolService(c.db),
            "port_forwarding": PortForwardingService(c.db, c.notifier, rng=rng),
            "conntrack_helper": ConntrackHelperService(c.db, c.notifier, rng=rng),
            "l3_agents": l3_agents,
        }
