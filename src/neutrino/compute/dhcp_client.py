"""The DHCP client of one instance: ``dhclient`` running inside the instance's namespace.

All of its files live in the instance's runtime directory under the state directory (pid file,
lease file, configuration, the hook script that points at :mod:`neutrino.compute.lease_hook`), so
nothing is written to /etc or /run, and ``neutrino cleanup`` finds the process by its pid file.
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

from neutrino.dataplane.netlink import IPInterface, NamespaceNotFound, NetlinkDriver
from neutrino.dataplane.ownership import OwnerTag
from neutrino.dataplane.processes import (
    ProcessFacts,
    namespace_identity,
    process_facts,
    read_pid_file,
    terminate,
)

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


class DhcpClientError(Exception):
    """dhclient could not be started."""


class DhcpClient:
    """dhclient for one interface of one instance namespace."""

    def __init__(self, runtime_dir: Path, namespace: str, owner: OwnerTag, *, interface: str = "eth0",
                 netns_dir: Path = Path("/run/netns"), python: str = sys.executable) -> None:
        self.runtime_dir = runtime_dir
        self.namespace = namespace
        self.owner = owner
        self.interface = interface
        self.netns_dir = netns_dir
        self.python = python

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
        pid = read_pid_file(self.pid_file)
        if pid is None:
            return None
        facts = process_facts(pid)
        inside = namespace_identity(self.netns_dir / self.namespace)
        if facts is None or facts.comm != DHCLIENT or inside is None or facts.namespace != inside:
            return None
        return facts

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
        if namespace_identity(self.netns_dir / self.namespace) is None:
            raise NamespaceNotFound(self.namespace)
        self._write_files()
        command = [
            "ip", "netns", "exec", self.namespace, DHCLIENT, "-4", "-nw",
            "-pf", str(self.pid_file), "-lf", str(self.lease_file),
            "-cf", str(self.config_file), "-sf", str(self.script_file), self.interface,
        ]
        process = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        # -nw: dhclient forks into the background at once; the command returns when it has.
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
        if process.returncode != 0:
            raise DhcpClientError(f"dhclient failed in {self.namespace}: {stderr.decode().strip()}")
        # The daemon writes its pid file after the fork; give it a moment to appear.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while (started := self.running()) is None:
            if loop.time() >= deadline:
                raise DhcpClientError(f"dhclient in {self.namespace} did not stay running")
            await asyncio.sleep(0.05)
        return started

    async def stop(self) -> bool:
        """Stop the client (no DHCPRELEASE: a VM that is destroyed does not send one). True if it ran."""
        current = self.running()
        self.pid_file.unlink(missing_ok=True)
        if current is None:
            return False
        await terminate([current])
        return True

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
