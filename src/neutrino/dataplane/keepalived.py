"""keepalived (Debian's ``keepalived``) per HA router namespace: VRRP among the router's hosts.

The configuration text comes from the l3 role's pure ``vrrp`` module; this driver only runs it on
:class:`~neutrino.dataplane.daemons.NamespacedDaemons` (one daemon per router, reloaded with
SIGHUP when the text changes, left running across agent restarts so an agent restart causes no
failover). keepalived forks a VRRP child; both pid files live in the owner's directory, the
child's as ``<router>.vrrp`` (removed with the others on stop). Stopping keepalived (SIGTERM)
releases the addresses and routes it holds; a SIGKILLed one keeps them (kernel.md), which is why
a stopped router's namespace is removed too.
"""

from __future__ import annotations

from pathlib import Path

from neutrino.dataplane.daemons import DaemonState, NamespacedDaemons
from neutrino.dataplane.netlink import NETNS_DIR


class KeepalivedDaemons:
    """The keepalived processes of one owner (host), files under ``run_dir``."""

    def __init__(self, run_dir: Path, *, program: str = "keepalived", netns_dir: Path = NETNS_DIR) -> None:
        self.run_dir = run_dir
        self._daemons = NamespacedDaemons(program, "keepalived", run_dir, lambda conf, pid: [
            "-P", "-f", str(conf), "-p", str(pid), "-r", str(self._vrrp_pid(conf))],
            netns_dir=netns_dir)

    @staticmethod
    def _vrrp_pid(conf: Path) -> Path:
        return conf.with_suffix(".vrrp")

    def state(self, router_id: str) -> DaemonState:
        return self._daemons.state(router_id)

    def keys(self) -> tuple[str, ...]:
        return self._daemons.keys()

    async def ensure(self, router_id: str, netns: str, config: str) -> int:
        return await self._daemons.ensure(router_id, netns, config)

    async def stop(self, router_id: str) -> None:
        await self._daemons.stop(router_id)
        self._vrrp_pid(self._daemons.config_path(router_id)).unlink(missing_ok=True)


__all__ = ["KeepalivedDaemons"]
