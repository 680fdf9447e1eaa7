"""radvd (Debian's ``radvd``) per router namespace: IPv6 router advertisements on its ``qr-`` devices.

The configuration text comes from the l3 role's pure ``ra`` module; this driver only runs it
(:class:`~neutrino.dataplane.daemons.NamespacedDaemons`: one daemon per router, reloaded with
SIGHUP when the text changes, left running across agent restarts).
"""

from __future__ import annotations

from pathlib import Path

from neutrino.dataplane.daemons import NamespacedDaemons
from neutrino.dataplane.netlink import NETNS_DIR


def radvd_daemons(run_dir: Path, *, program: str = "radvd", netns_dir: Path = NETNS_DIR) -> NamespacedDaemons:
    """The radvd processes of one owner, files under ``run_dir`` (``<router>.conf``, ``.pid``, ``.log``)."""
    return NamespacedDaemons(program, "radvd", run_dir, lambda conf, pid: [
        "-C", str(conf), "-p", str(pid), "-m", "logfile", "-l", str(conf.with_suffix(".log"))], netns_dir=netns_dir)


__all__ = ["radvd_daemons"]
