"""Ports' ``resource_request`` (``port-resource-request``, in the ``port-resource-request-groups``
format): what placement must find on a host before a port with guaranteed minimums may be bound
there, as Neutron's QoS plugin states it for Nova.

A port asks for resources when its QoS policy (its own, else its network's) holds minimum rules:
one request group for the minimum bandwidth rules (traits: the physical network of the network's
first segment, or the tunnel trait on an overlay, and the port's VNIC type) and one for the minimum
packet rate rules (trait: the VNIC type). Group ids are uuid5 of the port id over the rules' ids,
so they stay stable while the rules do. Without minimum rules the request is ``null``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.db.schema import core as db

TUNNEL_TRAIT = "CUSTOM_NETWORK_TUNNEL_PROVIDER"
_BANDWIDTH_CLASSES = {"ingress": "NET_BW_IGR_KILOBIT_PER_SEC", "egress": "NET_BW_EGR_KILOBIT_PER_SEC"}
_PACKET_RATE_CLASSES = {"ingress": "NET_PACKET_RATE_IGR_KILOPACKET_PER_SEC",
                        "egress": "NET_PACKET_RATE_EGR_KILOPACKET_PER_SEC",
                        "any": "NET_PACKET_RATE_KILOPACKET_PER_SEC"}


@dataclass(frozen=True, slots=True)
class MinimumRule:
    id: str
    rule_type: str  # minimum_bandwidth | minimum_packet_rate
    direction: str
    amount: int     # min_kbps or min_kpps


def custom_trait(name: str) -> str:
    """os-traits' normalisation: upper case, anything but [A-Z0-9_] to ``_``, ``CUSTOM_`` first."""
    norm = re.sub(r"[^A-Z0-9_]", "_", name.upper())
    return norm if norm.startswith("CUSTOM_") else f"CUSTOM_{norm}"


def _group(port_id: str, rules: Sequence[MinimumRule], classes: Mapping[str, str], traits: list[str]
           ) -> dict[str, Any]:
    name = ":".join(r.id for r in rules)
    return {"id": str(uuid.uuid5(uuid.UUID(port_id), name)), "required": traits,
            "resources": {classes[r.direction]: r.amount for r in rules}}


def resource_request(port_id: str, vnic_type: str, physical_network: str | None,
                     rules: Iterable[MinimumRule]) -> dict[str, Any] | None:
    """The port's request, or None when its policy guarantees nothing."""
    rules = list(rules)
    vnic_trait = custom_trait(f"VNIC_TYPE_{vnic_type}")
    groups = []
    bandwidth = [r for r in rules if r.rule_type == "minimum_bandwidth"]
    if bandwidth:
        net_trait = custom_trait(f"PHYSNET_{physical_network}") if physical_network else TUNNEL_TRAIT
        groups.append(_group(port_id, bandwidth, _BANDWIDTH_CLASSES, [net_trait, vnic_trait]))
    packet_rate = [r for r in rules if r.rule_type == "minimum_packet_rate"]
    if packet_rate:
        groups.append(_group(port_id, packet_rate, _PACKET_RATE_CLASSES, [vnic_trait]))
    if not groups:
        return None
    return {"request_groups": groups, "same_subtree": [g["id"] for g in groups]}


async def minimum_rules(conn: AsyncConnection, policy_ids: Iterable[str]) -> dict[str, list[MinimumRule]]:
    """Each policy's minimum rules; none at all without the QoS plugin's tables."""
    ids = sorted({p for p in policy_ids if p})
    rules_table = db.metadata.tables.get("qos_rules")
    out: dict[str, list[MinimumRule]] = {}
    if rules_table is None or not ids:
        return out
    c = rules_table.c
    amounts = [c.min_kbps] + ([c.min_kpps] if "min_kpps" in c else [])
    rows = await conn.execute(select(c.id, c.qos_policy_id, c.rule_type, c.direction, *amounts).where(
        c.qos_policy_id.in_(ids), c.rule_type.in_(("minimum_bandwidth", "minimum_packet_rate"))).order_by(c.id))
    for row in rows.mappings():
        amount = row["min_kbps"] if row["rule_type"] == "minimum_bandwidth" else row.get("min_kpps")
        if amount is not None:
            out.setdefault(row["qos_policy_id"], []).append(
                MinimumRule(row["id"], row["rule_type"], row["direction"] or "any", int(amount)))
    return out


async def first_physical_networks(conn: AsyncConnection, network_ids: Iterable[str]) -> dict[str, str | None]:
    """The physical network of each network's first segment (None on an overlay)."""
    ids = sorted(set(network_ids))
    s = db.network_segments
    out: dict[str, str | None] = {}
    if not ids:
        return out
    rows = await conn.execute(select(s.c.network_id, s.c.physical_network).where(s.c.network_id.in_(ids))
                              .order_by(s.c.network_id, s.c.segment_index))
    for net_id, physnet in rows:
        out.setdefault(net_id, physnet or None)
    return out


async def port_resource_requests(conn: AsyncConnection, ports: Sequence[Mapping[str, Any]],
                                 network_policies: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """``resource_request`` of each port that has one (ports are rows: id, network_id,
    qos_policy_id, binding_vnic_type)."""
    effective = {p["id"]: p["qos_policy_id"] or network_policies.get(p["network_id"]) for p in ports}
    if not any(effective.values()):
        return {}
    rules = await minimum_rules(conn, [p for p in effective.values() if p])
    if not rules:
        return {}
    wanting = [p for p in ports if effective[p["id"]] in rules]
    physnets = await first_physical_networks(conn, [p["network_id"] for p in wanting])
    out = {}
    for port in wanting:
        request = resource_request(port["id"], port["binding_vnic_type"], physnets.get(port["network_id"]),
                                   rules[effective[port["id"]]])
        if request is not None:
            out[port["id"]] = request
    return out
