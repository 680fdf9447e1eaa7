"""radvd in a router namespace, configured from a router's subnets: what hosts on the link get.

A router namespace with a ``qr-`` veth to a host namespace; the radvd driver runs Debian's radvd
with the l3 role's configuration. The host's kernel configures its address from the advertisement
(SLAAC), and an independent probe (``ra_probe.py``, a raw ICMPv6 socket) reads the M/O flags, the
MTU and the prefixes. Reloading keeps the pid; stopping leaves no process and no file.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kernel_scratch import Scratch, ip

from neutrino.agent.roles.l3.ra import radvd_config
from neutrino.contract.l3 import L3Router, RouterAddress, RouterPort
from neutrino.dataplane.daemons import NamespacedDaemons
from neutrino.dataplane.processes import process_facts
from neutrino.dataplane.radvd import radvd_daemons
from tests.support.waiting import wait_until

pytestmark = pytest.mark.kernel

PROBE = str(Path(__file__).with_name("ra_probe.py"))
PREFIX = "2001:db8:77::/64"
STATELESS_PREFIX = "2001:db8:78::/64"


def router(port_id: str, *subnets: tuple[str, str]) -> L3Router:
    addresses = tuple(RouterAddress(f"sub-{i}", str(ipaddress.ip_network(cidr)[1]), cidr,
                                    str(ipaddress.ip_network(cidr)[1]), mode, mode)
                      for i, (cidr, mode) in enumerate(subnets))
    return L3Router("r", "project", True, True, 1,
                    interfaces=(RouterPort(port_id, "net", "fa:16:3e:00:77:01", 1400, addresses),))


def probe(netns: str) -> dict[str, object]:
    ran = subprocess.run(["ip", "netns", "exec", netns, sys.executable, PROBE, "eth0"], capture_output=True,
                         text=True, timeout=60, check=False)
    assert ran.returncode == 0, ran.stderr
    return dict(json.loads(ran.stdout))


def global_addresses(netns: str) -> list[dict[str, object]]:
    out = json.loads(ip("-n", netns, "-6", "-j", "address", "show", "dev", "eth0", "scope", "global").stdout or "[]")
    return [a for link in out for a in link.get("addr_info", ())]


def eui64(prefix: str, mac: str) -> str:
    octets = bytes.fromhex(mac.replace(":", ""))
    interface_id = bytes([octets[0] ^ 0x02, *octets[1:3], 0xFF, 0xFE, *octets[3:]])
    return str(ipaddress.IPv6Address(ipaddress.IPv6Network(prefix).network_address.packed[:8] + interface_id))


@pytest.fixture
def daemons(scratch: Scratch, tmp_path: Path) -> Iterator[NamespacedDaemons]:
    made = radvd_daemons(tmp_path / "radvd")
    try:
        yield made
    finally:
        for key in made.keys():
            _stop(made, key)


def _stop(daemons: NamespacedDaemons, key: str) -> None:
    asyncio.run(daemons.stop(key))


async def test_slaac_host_configures_its_address_and_mtu_from_the_router(
    scratch: Scratch, daemons: NamespacedDaemons
) -> None:
    rtr, host = scratch.namespace("rtr"), scratch.namespace("host")
    for ns in (rtr, host):
        ip("netns", "add", ns)
        ip("-n", ns, "link", "set", "lo", "up")
    port_id = f"{scratch.suffix}-0000-0000-0000-000000000000"
    device = f"qr-{port_id[:11]}"
    ip("-n", rtr, "link", "add", device, "mtu", "1400", "type", "veth", "peer", "name", "eth0", "netns", host)
    ip("-n", host, "link", "set", "eth0", "mtu", "1400")
    subprocess.run(["ip", "netns", "exec", rtr, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"], check=True)
    ip("-n", rtr, "address", "add", "2001:db8:77::1/64", "dev", device, "nodad")
    ip("-n", rtr, "link", "set", device, "up")
    ip("-n", host, "link", "set", "eth0", "up")
    host_mac = json.loads(ip("-n", host, "-j", "link", "show", "eth0").stdout)[0]["address"]

    slaac = router(port_id, (PREFIX, "slaac"))
    config = radvd_config(slaac)
    assert config is not None and f"interface {device}" in config
    pid = await daemons.ensure("r", rtr, config)
    assert process_facts(pid) is not None and process_facts(pid).comm == "radvd"  # type: ignore[union-attr]

    # The host forms its address from the advertised prefix and its MAC, and takes the link MTU.
    expected = eui64(PREFIX, host_mac)
    wait_until("the host configuring its SLAAC address", lambda: any(
        a["local"] == expected and a.get("dynamic") for a in global_addresses(host)))
    mtu = subprocess.run(["ip", "netns", "exec", host, "sysctl", "-n", "net.ipv6.conf.eth0.mtu"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert mtu == "1400"
    routes = ip("-n", host, "-6", "route", "show", "default").stdout
    assert "via fe80::" in routes and "proto ra" in routes, routes
    assert probe(host) == {"managed": False, "other": False, "mtu": 1400,
                           "prefixes": [{"prefix": "2001:db8:77::/64", "on_link": True, "autonomous": True}]}
    # Nothing changed: the same daemon keeps running.
    assert await daemons.ensure("r", rtr, config) == pid

    # Another mode set on the subnets: reloaded in place (same pid), the flags follow.
    ip("-n", rtr, "address", "add", "2001:db8:78::1/64", "dev", device, "nodad")
    stateful = router(port_id, (PREFIX, "dhcpv6-stateful"), (STATELESS_PREFIX, "dhcpv6-stateless"))
    assert await daemons.ensure("r", rtr, radvd_config(stateful) or "") == pid
    wait_until("the advertisement carrying the new flags", lambda: probe(host) == {
        "managed": True, "other": True, "mtu": 1400,
        "prefixes": [{"prefix": "2001:db8:77::/64", "on_link": True, "autonomous": False},
                     {"prefix": "2001:db8:78::/64", "on_link": True, "autonomous": True}]})

    await daemons.stop("r")
    assert process_facts(pid) is None
    assert daemons.keys() == ()
