"""Port binding through mechanism drivers (as ML2 does): who can wire this port on that host?

The first mechanism driver that can serve one of the network's segments on the host binds the port.
``linuxbridge`` needs an alive Linux bridge agent on the host that can carry the segment type:
VXLAN with a tunnel IP, flat on a mapped physical network, local always. VLAN segments exist in
the API and model, but this kernel has no 802.1Q devices, so no agent here can bind them; the
reason is put in ``binding:vif_details`` (admin-only) and logged. For the same reason a trunk's
parent port is not bound unless an agent of the host reports it can wire trunks (``trunks`` in its
configuration). Like Neutron's Linux bridge driver, ``linuxbridge`` binds ``normal`` VNICs only (a
VM's tap device): a port asking for SR-IOV, macvtap or the like is not bound, and says why.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.contract.names import bridge_name
from neutrino.db.schema import core as db
from neutrino.services.agents import L2_AGENT_TYPES, AgentService
from neutrino.services.trunk_details import trunk_of_parent

log = logging.getLogger(__name__)
BINDING_FAILED = "binding_failed"


class MechanismDriver(Protocol):
    name: str
    supported_vnic_types: tuple[str, ...]

    def try_bind(self, segments: Sequence[Mapping[str, Any]], agents: Sequence[Mapping[str, Any]],
                 network_id: str) -> tuple[str, dict[str, Any]] | str:
        """(vif_type, vif_details) on success, or the reason it cannot bind."""
        ...


class LinuxBridgeMechanism:
    name = "linuxbridge"
    supported_vnic_types = ("normal",)

    def try_bind(self, segments: Sequence[Mapping[str, Any]], agents: Sequence[Mapping[str, Any]],
                 network_id: str) -> tuple[str, dict[str, Any]] | str:
        l2 = [a for a in agents if a["agent_type"] in L2_AGENT_TYPES]
        if not l2:
            return "no alive Linux bridge agent on the host"
        reasons = []
        for seg in segments:
            for agent in l2:
                conf = agent["configurations"] or {}
                ok, why = self._can_serve(seg, conf)
                if ok:
                    return "bridge", {"port_filter": True, "connectivity": "l2",
                                      "bridge_name": bridge_name(network_id)}
                reasons.append(why)
        return "; ".join(dict.fromkeys(reasons)) or "network has no segment"

    @staticmethod
    def _can_serve(seg: Mapping[str, Any], conf: Mapping[str, Any]) -> tuple[bool, str]:
        ntype = seg["network_type"]
        if ntype == "vxlan":
            if conf.get("tunneling_ip") and "vxlan" in (conf.get("tunnel_types") or []):
                return True, ""
            return False, "the agent has no VXLAN tunnel IP"
        if ntype == "flat":
            if seg["physical_network"] in (conf.get("bridge_mappings") or {}):
                return True, ""
            return False, f"physical network {seg['physical_network']} is not mapped on the host"
        if ntype == "local":
            return True, ""
        if ntype == "vlan":
            return False, "VLAN segments cannot be bound: this kernel has no 802.1Q VLAN devices"
        return False, f"unsupported network type {ntype}"


def trunk_refusal(agents: Sequence[Mapping[str, Any]]) -> str | None:
    """Why a trunk's parent port cannot be bound with these agents (None if one can wire trunks):
    subports are 802.1Q devices, and each L2 agent says in its configuration whether it can make them."""
    l2 = [a for a in agents if a["agent_type"] in L2_AGENT_TYPES]
    reasons = []
    for agent in l2:
        trunks = (agent["configurations"] or {}).get("trunks") or {}
        if trunks.get("supported"):
            return None
        reasons.append(trunks.get("reason") or "the agent does not support trunks")
    detail = "; ".join(dict.fromkeys(reasons)) or "no alive Linux bridge agent on the host"
    return f"the port is a trunk's parent and no agent on the host can wire trunk subports: {detail}"


class MechanismBinder:
    """The PortBinder the port service uses: tries each enabled mechanism driver in order."""

    def __init__(self, agents: AgentService, drivers: Sequence[MechanismDriver]) -> None:
        self.agents = agents
        self.drivers = list(drivers)

    async def bind(self, conn: AsyncConnection, port: Mapping[str, Any], host: str) -> tuple[str, dict[str, Any]]:
        segs = (await conn.execute(select(db.network_segments).where(
            db.network_segments.c.network_id == port["network_id"]).order_by(
            db.network_segments.c.segment_index))).mappings().all()
        agents = await self.agents.alive_agents(conn, [t for t in L2_AGENT_TYPES], host)
        if await trunk_of_parent(conn, port["id"]):
            refusal = trunk_refusal(agents)
            if refusal:
                log.info("binding of trunk parent port %s on host %s refused: %s", port.get("id"), host, refusal)
                return BINDING_FAILED, {"reason": refusal}
        reasons = []
        vnic = port.get("binding_vnic_type") or "normal"
        for driver in self.drivers:
            if vnic not in driver.supported_vnic_types:
                reasons.append(f"{driver.name}: vnic_type {vnic} is not supported (it binds "
                               f"{', '.join(driver.supported_vnic_types)})")
                continue
            result = driver.try_bind(segs, agents, port["network_id"])
            if isinstance(result, tuple):
                return result
            reasons.append(f"{driver.name}: {result}")
        reason = "; ".join(reasons) or "no mechanism driver enabled"
        log.info("binding of port %s on host %s failed: %s", port.get("id"), host, reason)
        return BINDING_FAILED, {"reason": reason}

    async def rebind_failed(self, conn: AsyncConnection, host: str) -> list[str]:
        """An agent (re)appeared on ``host``: retry the ports whose binding failed there."""
        p = db.ports
        rows = (await conn.execute(select(p).where(p.c.binding_host_id == host,
                                                   p.c.binding_vif_type == BINDING_FAILED))).mappings().all()
        rebound = []
        for row in rows:
            vif_type, details = await self.bind(conn, row, host)
            if vif_type != BINDING_FAILED:
                await conn.execute(update(p).where(p.c.id == row["id"]).values(
                    binding_vif_type=vif_type, binding_vif_details=details,
                    revision_number=p.c.revision_number + 1))
                rebound.append(row["id"])
        return rebound


def build_mechanisms(names: Sequence[str]) -> list[MechanismDriver]:
    known: dict[str, type[Any]] = {"linuxbridge": LinuxBridgeMechanism}
    out = []
    for name in names:
        if name not in known:
            raise ValueError(f"unknown mechanism driver '{name}' (known: {sorted(known)})")
        out.append(known[name]())
    return out
