"""The DHCP client of one instance: ``dhclient`` running inside the instance's namespace.

All of its files live in the instance's runtime directory under the state directory (pid file,
lease file, configuration, the hook script that points at :mod:`neutrino.compute.lease_hook`), so
nothing is written to /etc or /run, and ``neutrino cleanup`` finds the process by its pid file
(run by :class:`~neutrino.dataplane.daemons.DaemonRunner`).
The client keeps running after ``start`` (as a VM's would), renewing the lease and retrying every
few seconds while no server answers, so an instance created before its network's DHCP server
exists still gets its address once the server is there.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import shlex
import sys
from pathlib import Path

from neutrino.dataplane.daemons import DaemonError, DaemonRunner, Program
from neutrino.dataplane.netlink import NETNS_DIR, IPInterface, NamespaceNotFound, NetlinkDriver
from neutrino.dataplane.ownership import OwnerTag
from neutrino.dataplane.processes import ProcessFacts

DHCLIENT = "dhclient"

# Ask for what Neutron's dnsmasq offers; retry quickly (the defaults wait up to 5 minutes between
# attempts after a timeout, far too long for an instance whose DHCP server is being scheduled).
_CONFIGURATION = """\
option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;
request subnet-mask, broadcast-address, routers, interface-mtu, rfc3442-classless-static-routes,
        domain-name, domain-name-servers, host-name;
timeout 10;
retry 2;
initial-interval 1;
backoff-cutoff 2;
"""


class DhcpClientError(DaemonError):
    """dhclient could not be started."""


class DhcpClient:
    """dhclient for one interface of one instance namespace."""

    def __init__(self, runtime_dir: Path, namespace: str, owner: OwnerTag, *, interface: str = "eth0",
                 netns_dir: Path = NETNS_DIR, python: str = sys.executable) -> None:
        self.runtime_dir = runtime_dir
        self.namespace = namespace
        self.owner = owner
        self.interface = interface
        self.netns_dir = netns_dir
        self.python = python
        # -nw: dhclient forks into the background at once; the launcher returns when it has.
        self._runner = DaemonRunner(Program((DHCLIENT,), comm=DHCLIENT, start_timeout=5.0), netns_dir=netns_dir)

    @property
    def pid_file(self) -> Path:
        return self.runtime_dir / "dhclient.pid"

    @property
    def lease_file(self) -> Path:
        return self.runtime_dir / "dhclient.leases"

    @property
    def config_file(self) -> Path:
        return self.runtime_dir / "dhclient.conf"

    @property
    def script_file(self) -> Path:
        return self.runtime_dir / "dhclient-script"

    def running(self) -> ProcessFacts | None:
        """The dhclient of this instance if its pid file names a live dhclient inside the namespace."""
        return self._runner.find(self.pid_file, self.namespace)

    def _write_files(self) -> None:
        self.runtime_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(_CONFIGURATION)
        hook = [self.python, "-m", "neutrino.compute.lease_hook", "--owner", self.owner.host]
        self.script_file.write_text("#!/bin/sh\nexec " + shlex.join(hook) + "\n")
        os.chmod(self.script_file, 0o755)

    async def start(self) -> ProcessFacts:
        """Start dhclient in the namespace unless it already runs; returns the running client."""
        current = self.running()
        if current is not None:
            return current
        if not (self.netns_dir / self.namespace).exists():
            raise NamespaceNotFound(self.namespace)
        self._write_files()
        try:
            return await self._runner.start(self.namespace, [
                "-4", "-nw", "-pf", str(self.pid_file), "-lf", str(self.lease_file),
                "-cf", str(self.config_file), "-sf", str(self.script_file), self.interface], self.pid_file)
        except DaemonError as e:
            raise DhcpClientError(f"dhclient in {self.namespace}: {e}") from e

    async def stop(self) -> bool:
        """Stop the client (no DHCPRELEASE: a VM that is destroyed does not send one). True if it ran."""
        return await self._runner.stop(self.pid_file, self.namespace)

    async def wait_for_lease(self, driver: NetlinkDriver, timeout: float) -> IPInterface | None:
        """The IPv4 address a lease put on the interface, waiting up to ``timeout`` s; None if none came."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for address in await driver.list_addresses(device=self.interface, netns=self.namespace, version=4):
                if address.scope == "global":
                    return ipaddress.ip_interface(address.interface)
            if loop.time() >= deadline:
                return None
            await asyncio.sleep(0.2)
