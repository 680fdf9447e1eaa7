"""What the running kernel can do for the l2 role, found once and reported honestly with heartbeats."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

NO_VLAN_REASON = "CONFIG_VLAN_8021Q is off: 802.1Q devices cannot be created"


@dataclass(frozen=True, slots=True)
class KernelFeatures:
    vlan: bool
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"vlan": self.vlan}
        if self.reason:
            data["reason"] = self.reason
        return data


def detect_kernel_features(proc: Path = Path("/proc"), sys: Path = Path("/sys")) -> KernelFeatures:
    """Look for 802.1Q support without creating anything.

    With CONFIG_VLAN_8021Q built in, every network namespace has /proc/net/vlan (net/8021q/vlanproc.c);
    as a module it shows up under /sys/module/8021q once loaded. Neither means no VLAN devices here
    (these machines load no modules).
    """
    if (proc / "net" / "vlan").exists() or (sys / "module" / "8021q").exists():
        return KernelFeatures(vlan=True)
    return KernelFeatures(vlan=False, reason=NO_VLAN_REASON)


def trunk_support(features: KernelFeatures | None) -> dict[str, Any]:
    """What the agent reports of trunks: their subports are VLAN devices, so without 802.1Q none."""
    if features is None:
        return {"supported": False, "reason": "kernel features not yet detected"}
    if not features.vlan:
        return {"supported": False, "reason": f"trunk subports need 802.1Q VLAN devices: {features.reason}"}
    # The kernel could, but this agent has no trunk driver yet.
    return {"supported": False, "reason": "this agent does not wire trunk subports"}
