"""The kernel changes the l2 planner asks for, as frozen data.

``plan`` returns these per device; the role's ``L2Kernel.run`` is the only code that turns them
into driver calls. Every action names the network it serves, for logs and the reconciler's
per-object errors.
"""

from __future__ import annotations

from dataclasses import dataclass

from neutrino.agent.actions import RemoveDevice  # a bridge or VXLAN device no network here needs

__all__ = ["Action", "AddFdbEntry", "AttachUplink", "ConvergeTap", "EnsureBridge", "EnsureVxlan", "RemoveDevice",
           "RemoveFdbEntry"]


@dataclass(frozen=True, slots=True)
class EnsureBridge:
    """A ``brq`` bridge of ours, up, with the network's MTU pinned."""

    network_id: str
    name: str
    mtu: int


@dataclass(frozen=True, slots=True)
class EnsureVxlan:
    """A unicast VXLAN device of ours (no learning; floods go to FDB head-end entries), up.

    ``fresh``: the device is absent, or present with other identifying settings (VNI, local IP,
    port) so that the driver deletes and recreates it; either way it starts with no FDB entries
    and in no bridge.
    """

    network_id: str
    name: str
    vni: int
    local_ip: str
    mtu: int
    fresh: bool = False


@dataclass(frozen=True, slots=True)
class AttachUplink:
    """Make ``device`` (the network's VXLAN device or mapped physical interface) a port of ``bridge``.

    ``up`` also sets the device administratively up (physical interfaces; a VXLAN device is
    brought up by EnsureVxlan).
    """

    network_id: str
    device: str
    bridge: str
    up: bool = False


@dataclass(frozen=True, slots=True)
class AddFdbEntry:
    """``bridge fdb append MAC dev DEVICE dst DST``: head-end flooding (all-zero MAC) or l2 population."""

    network_id: str
    device: str
    mac: str
    dst: str


@dataclass(frozen=True, slots=True)
class ConvergeTap:
    """Wire one instance tap: only the fields that are not None differ from the kernel and get set."""

    network_id: str
    device: str
    mtu: int | None = None
    bridge: str | None = None
    up: bool | None = None


@dataclass(frozen=True, slots=True)
class RemoveFdbEntry:
    """An FDB entry the desired state no longer has (a host left the network, a port moved)."""

    network_id: str
    device: str
    mac: str
    dst: str


Action = EnsureBridge | EnsureVxlan | AttachUplink | AddFdbEntry | ConvergeTap | RemoveFdbEntry | RemoveDevice

