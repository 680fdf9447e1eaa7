"""What metering agents need: the routers of their host that metering labels apply to.

``sync_state(host, "metering")`` answers as Neutron's ``get_sync_data_metering`` does for the host:
every admin-up router bound to the host's L3 agent, with the labels that apply to it (a label of
the router's project, or a ``shared`` one) and their rules; routers no label applies to are left
out (nothing to count there).
"""

from __future__ import annotations

import time

from sqlalchemy import select

from neutrino.contract.metering import MeteringLabel, MeteringRouter, MeteringRule, MeteringState
from neutrino.db.engine import Database
from neutrino.db.schema import advanced as adv
from neutrino.db.schema import l3
from neutrino.db.schema.agents import agents, routerl3agentbindings
from neutrino.services.availability_zones import L3_AGENT_TYPE


class MeteringAgentService:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def sync_state(self, host: str) -> MeteringState:
        b, r = routerl3agentbindings, l3.routers
        labels_t, rules_t = adv.meteringlabels, adv.meteringlabelrules
        async with self.db.read() as conn:
            routers = (await conn.execute(
                select(r.c.id, r.c.project_id, r.c.name, r.c.gw_port_id)
                .select_from(b.join(agents, agents.c.id == b.c.l3_agent_id).join(r, r.c.id == b.c.router_id))
                .where(agents.c.host == host, agents.c.agent_type == L3_AGENT_TYPE, r.c.admin_state_up.is_(True))
                .order_by(r.c.id))).mappings().all()
            if not routers:
                return MeteringState(host=host, generated_at=time.time())
            projects = sorted({row["project_id"] for row in routers})
            label_rows = (await conn.execute(select(labels_t).where(
                labels_t.c.shared.is_(True) | labels_t.c.project_id.in_(projects)).order_by(labels_t.c.id))
            ).mappings().all()
            rule_rows = (await conn.execute(select(rules_t).where(
                rules_t.c.metering_label_id.in_([row["id"] for row in label_rows])).order_by(rules_t.c.id))
            ).mappings().all() if label_rows else []
        rules: dict[str, list[MeteringRule]] = {}
        for row in rule_rows:
            rules.setdefault(row["metering_label_id"], []).append(MeteringRule(
                row["id"], row["direction"], bool(row["excluded"]), row["remote_ip_prefix"],
                row["source_ip_prefix"], row["destination_ip_prefix"]))
        labels = [MeteringLabel(row["id"], row["name"] or "", bool(row["shared"]), row["project_id"],
                                tuple(rules.get(row["id"], ()))) for row in label_rows]
        out = []
        for router in routers:
            mine = tuple(label for label in labels if label.shared or label.project_id == router["project_id"])
            if mine:
                out.append(MeteringRouter(router["id"], router["project_id"], router["name"] or "",
                                          router["gw_port_id"], mine))
        return MeteringState(host=host, routers=tuple(out), generated_at=time.time())


__all__ = ["MeteringAgentService"]
