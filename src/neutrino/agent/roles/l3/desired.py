"""The l3 role's desired state as the reconciler keeps it: routers by id."""

from __future__ import annotations

from neutrino.contract.l3 import L3Router, L3State


def keyed(state: L3State) -> dict[str, L3Router]:
    """Every router the host serves (see ``plan.served``), by id."""
    return {router.router_id: router for router in state.routers}


def router_ports(routers: dict[str, L3Router]) -> frozenset[str]:
    """Ids of every interface and gateway port of these routers."""
    return frozenset(port.port_id for r in routers.values()
                     for port in (*r.interfaces, *((r.gateway,) if r.gateway is not None else ())))
