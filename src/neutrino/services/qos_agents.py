"""What a host's qos role needs from the database (``sync_state(host, "qos")``), always complete.

Every port bound to the host through an L2 agent whose effective policy (the port's own, else its
network's, as Neutron resolves it) has a rule the data plane acts on, with the limits resolved:
the agent shapes and marks, it never reads policies. An egress ``minimum_bandwidth`` travels with
the port's network type and physical network (the agent guarantees it on that network's uplink).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from neutrino.contract.qos import BandwidthLimit, PacketRateLimit, QosPort, QosState
from neutrino.db.engine import Database
from neutrino.db.schema import core as db
from neutrino.db.schema.qos import qos_rules
from neutrino.services.l2_agents import L2AgentService

# Rule types this backend supports, with their parameters: exactly what the qos role enforces (a
# policy holding anything else cannot be attached: 409 QosRuleNotSupported). Neutron's Open vSwitch
# driver also lists minimum_packet_rate and ingress minimum_bandwidth, which no Neutron data plane
# enforces (Placement reserves them when Nova schedules); with no Placement here they would be
# promises nobody keeps, so they are refused (docs/architecture.md, "Minimum bandwidth").
SUPPORTED: dict[str, tuple[str, ...]] = {
    "bandwidth_limit": ("max_kbps", "max_burst_kbps", "direction"),
    "dscp_marking": ("dscp_mark",),
    "packet_rate_limit": ("max_kpps", "max_burst_kpps", "direction"),
    "minimum_bandwidth": ("min_kbps", "direction"),
}
# Kinds enforced in some directions only.
SUPPORTED_DIRECTIONS: dict[str, tuple[str, ...]] = {"minimum_bandwidth": ("egress",)}


def enforced(rule_type: str, direction: str | None) -> bool:
    """Whether the data plane enforces a rule of this kind and direction."""
    if rule_type not in SUPPORTED:
        return False
    allowed = SUPPORTED_DIRECTIONS.get(rule_type)
    return allowed is None or (direction or "egress") in allowed


# What the qos role acts on (minimum_bandwidth: its egress direction).
SHAPED = ("bandwidth_limit", "dscp_marking", "packet_rate_limit", "minimum_bandwidth")


class QosAgentService:
    def __init__(self, database: Database, l2: L2AgentService) -> None:
        self.db = database
        self.l2 = l2

    async def sync_state(self, host: str) -> QosState:
        async with self.db.read() as conn:
            ports, _, _ = await self.l2._bound_ports(conn, host)  # noqa: SLF001 - the same binding rules
            net_ids = sorted({p.network_id for p in ports})
            network_policy: dict[str, Any] = dict((await conn.execute(select(
                db.networks.c.id, db.networks.c.qos_policy_id).where(db.networks.c.id.in_(net_ids)))).all()) \
                if net_ids else {}
            effective = {p.port_id: p.qos_policy_id or network_policy.get(p.network_id) for p in ports}
            policy_ids = sorted({pid for pid in effective.values() if pid})
            rows = (await conn.execute(select(qos_rules).where(
                qos_rules.c.qos_policy_id.in_(policy_ids), qos_rules.c.rule_type.in_(SHAPED)))
            ).mappings().all() if policy_ids else []
        by_policy: dict[str, list[Any]] = {}
        for row in rows:
            by_policy.setdefault(row["qos_policy_id"], []).append(row)
        out = []
        for port in ports:
            policy = effective[port.port_id]
            rules = by_policy.get(policy or "", [])
            if not rules:
                continue
            limits = {r["direction"]: BandwidthLimit(int(r["max_kbps"]), int(r["max_burst_kbps"] or 0))
                      for r in rules if r["rule_type"] == "bandwidth_limit" and r["max_kbps"]}
            dscp = next((int(r["dscp_mark"]) for r in rules if r["rule_type"] == "dscp_marking"), None)
            pps = {r["direction"]: PacketRateLimit(int(r["max_kpps"]), int(r["max_burst_kpps"] or 0))
                   for r in rules if r["rule_type"] == "packet_rate_limit" and r["max_kpps"]}
            minimum = next((int(r["min_kbps"]) for r in rules
                            if r["rule_type"] == "minimum_bandwidth" and r["direction"] == "egress" and r["min_kbps"]), 0)
            if not (limits or pps or minimum or dscp is not None):
                continue  # only an ingress minimum: nothing for the data plane
            out.append(QosPort(port.port_id, port.device, str(policy), limits.get("egress"), limits.get("ingress"),
                               dscp, port.revision, pps.get("egress"), pps.get("ingress"), minimum,
                               port.segment.network_type, port.segment.physical_network))
        return QosState(host, tuple(out), time.time())


__all__ = ["QosAgentService", "SHAPED", "SUPPORTED", "SUPPORTED_DIRECTIONS", "enforced"]
