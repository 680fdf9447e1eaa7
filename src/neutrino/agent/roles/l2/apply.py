"""Carry out an l2 plan through the netlink driver; the only place the role changes the kernel.

Phases run in plan order (see ``actions.PHASES``). Within a phase, actions on different kernel
objects run concurrently, a few at a time; actions on one object run in plan order. A failure is
recorded, not raised, so one broken network never stops the others from being wired; the role
withholds ``update_device_up`` for what failed and the next resync tries again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from neutrino.agent.roles.l2.actions import (
    Action,
    AddFdbEntry,
    AttachUplink,
    ConvergeTap,
    EnsureBridge,
    EnsureVxlan,
    RemoveDevice,
    RemoveFdbEntry,
    phase_of,
    subject_of,
)
from neutrino.dataplane.netlink import VXLAN_DEFAULT_PORT, NetlinkDriver

log = logging.getLogger(__name__)

# Failures of these leave the network without a working bridge: what would follow on that network
# is skipped (it could otherwise act on a device that is not what the plan thought it was).
_BLOCKING = (EnsureBridge, EnsureVxlan, AttachUplink)


@dataclass(frozen=True, slots=True)
class ActionFailure:
    action: Action
    error: str


@dataclass(frozen=True, slots=True)
class ApplyResult:
    applied: tuple[Action, ...]
    failed: tuple[ActionFailure, ...]

    @property
    def failed_networks(self) -> frozenset[str]:
        """Networks whose shared wiring (bridge, uplink, FDB) failed: none of their ports is up."""
        return frozenset(
            f.action.network_id
            for f in self.failed
            if f.action.network_id is not None and not isinstance(f.action, ConvergeTap | RemoveFdbEntry)
        )

    @property
    def failed_devices(self) -> frozenset[str]:
        """Taps whose own wiring failed."""
        return frozenset(f.action.device for f in self.failed if isinstance(f.action, ConvergeTap))


async def apply(
    actions: Sequence[Action], driver: NetlinkDriver, *, netns: str | None, concurrency: int = 8
) -> ApplyResult:
    """Run ``actions`` (as ``plan`` ordered them) in ``netns``; never raises for a kernel refusal."""
    applied: list[Action] = []
    failed: list[ActionFailure] = []
    blocked_networks: set[str] = set()
    gate = asyncio.Semaphore(concurrency)

    async def run_group(group: list[Action]) -> None:
        async with gate:
            for index, action in enumerate(group):
                if action.network_id in blocked_networks and not isinstance(action, RemoveDevice):
                    failed.append(ActionFailure(action, "skipped: the network's bridge or uplink failed"))
                    continue
                try:
                    await _carry_out(action, driver, netns)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - recorded and reported; the next resync retries
                    log.warning("l2 action %s failed in %s: %s", action, netns or "the root namespace", exc)
                    failed.append(ActionFailure(action, str(exc)))
                    if isinstance(action, _BLOCKING) and action.network_id is not None:
                        blocked_networks.add(action.network_id)
                    for rest in group[index + 1 :]:
                        failed.append(
                            ActionFailure(rest, f"skipped: an earlier action on {subject_of(rest)} failed")
                        )
                    return
                applied.append(action)

    phases: dict[int, dict[str, list[Action]]] = {}
    for action in actions:
        phases.setdefault(phase_of(action), {}).setdefault(subject_of(action), []).append(action)
    for phase in sorted(phases):
        await asyncio.gather(*(run_group(group) for group in phases[phase].values()))
    return ApplyResult(tuple(applied), tuple(failed))


async def _carry_out(action: Action, driver: NetlinkDriver, netns: str | None) -> None:
    if isinstance(action, EnsureBridge):
        await driver.ensure_bridge(action.name, netns=netns, mtu=action.mtu)
    elif isinstance(action, EnsureVxlan):
        await driver.ensure_vxlan(
            action.name,
            action.vni,
            action.local_ip,
            netns=netns,
            dstport=VXLAN_DEFAULT_PORT,
            learning=False,
            mtu=action.mtu,
        )
    elif isinstance(action, AttachUplink):
        await driver.set_master(action.device, action.bridge, netns=netns)
        if action.up:
            await driver.set_up(action.device, netns=netns)
    elif isinstance(action, AddFdbEntry):
        await driver.fdb_append(action.device, action.mac, action.dst, netns=netns)
    elif isinstance(action, ConvergeTap):
        # One request for MTU, bridge and state: a new tap costs one socket and one change.
        await driver.converge_port(action.device, netns=netns, mtu=action.mtu, bridge=action.bridge, up=action.up)
    elif isinstance(action, RemoveFdbEntry):
        await driver.fdb_remove(action.device, action.mac, action.dst, netns=netns)
    elif isinstance(action, RemoveDevice):
        await driver.remove_link(action.name, netns=netns)
    else:  # pragma: no cover - the Action union is closed
        raise TypeError(f"not an l2 action: {action!r}")
