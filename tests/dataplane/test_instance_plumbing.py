"""Instance VIF plumbing against the real kernel: what os-vif would build for a VM, and its removal.

The pure decisions (addressing from fixed IPs and subnets, what a DHCP lease changes) are checked
first without the kernel; then plug/unplug and the DHCP client run in namespaces unique to each
test, and the result is read back with iproute2, never with the driver under test alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest
from kernel_scratch import Scratch, ip, run_in_namespace

from neutrino.compute.dhcp_client import DhcpClient
from neutrino.compute.instances import FixedIpRequest, parse_fixed_ip
from neutrino.compute.lease_hook import LeaseRoute, classless_routes, lease_plan
from neutrino.compute.vif import (
    StaticAddressing,
    StaticRoute,
    SubnetFacts,
    VifPlugger,
    VifSpec,
    host_tap_mac,
    instance_namespace,
    static_addressing,
)
from neutrino.contract.names import tap_name
from neutrino.dataplane.netlink import NetlinkDriver
from neutrino.dataplane.processes import namespace_identity, processes_in_namespace

net = ipaddress.ip_network
addr = ipaddress.ip_address
iface = ipaddress.ip_interface

SUBNET_V4 = SubnetFacts("s4", net("10.1.0.0/24"), addr("10.1.0.1"))
SUBNET_V6 = SubnetFacts("s6", net("fd00:1::/64"), addr("fd00:1::1"))


# ---- pure decisions ----------------------------------------------------------------------------------------


def test_static_addressing_takes_prefix_from_subnet_and_one_gateway_per_version() -> None:
    other_v4 = SubnetFacts("s4b", net("10.2.0.0/16"), addr("10.2.0.1"))
    fixed = [
        {"subnet_id": "s4", "ip_address": "10.1.0.5"},
        {"subnet_id": "s6", "ip_address": "fd00:1::5"},
        {"subnet_id": "s4b", "ip_address": "10.2.3.4"},
    ]

    plan = static_addressing(fixed, {s.id: s for s in (SUBNET_V4, SUBNET_V6, other_v4)})

    assert plan.addresses == (iface("10.1.0.5/24"), iface("fd00:1::5/64"), iface("10.2.3.4/16"))
    assert plan.default_gateways == (addr("10.1.0.1"), addr("fd00:1::1"))


def test_static_addressing_uses_host_routes_and_lets_a_default_host_route_win() -> None:
    subnet = SubnetFacts("s", net("10.1.0.0/24"), addr("10.1.0.1"),
                         ((net("0.0.0.0/0"), addr("10.1.0.254")), (net("192.168.0.0/16"), addr("10.1.0.2"))))

    plan = static_addressing([{"subnet_id": "s", "ip_address": "10.1.0.9"}], {"s": subnet})

    assert plan.default_gateways == (addr("10.1.0.254"),)
    assert plan.routes == (StaticRoute(net("192.168.0.0/16"), addr("10.1.0.2")),)


def test_static_addressing_without_gateway_has_no_default_route() -> None:
    subnet = SubnetFacts("s", net("10.1.0.0/24"), None)
    plan = static_addressing([{"subnet_id": "s", "ip_address": "10.1.0.9"}], {"s": subnet})
    assert plan.default_gateways == ()


def test_static_addressing_refuses_an_address_on_an_unknown_subnet() -> None:
    with pytest.raises(ValueError, match="unknown subnet"):
        static_addressing([{"subnet_id": "nope", "ip_address": "10.1.0.9"}], {})


def test_host_end_gets_the_libvirt_tap_mac() -> None:
    assert host_tap_mac("FA:16:3E:01:02:03") == "fe:16:3e:01:02:03"


def test_instance_namespace_is_recognisably_neutrinos() -> None:
    assert instance_namespace("vm-1") == "nqi-vm-1"


def test_fixed_ip_accepts_an_address_or_the_openstack_cli_form() -> None:
    assert parse_fixed_ip("10.0.0.5") == FixedIpRequest(ip_address="10.0.0.5")
    assert parse_fixed_ip("subnet=sub1,ip-address=10.0.0.6") == FixedIpRequest("10.0.0.6", "sub1")
    assert parse_fixed_ip("subnet=sub1") == FixedIpRequest(subnet="sub1")
    with pytest.raises(ValueError):
        parse_fixed_ip("bogus=1")
    with pytest.raises(ValueError):
        parse_fixed_ip("10.0.0.300")


def test_lease_plan_binds_address_mtu_and_classless_routes_over_routers() -> None:
    plan = lease_plan({
        "reason": "BOUND", "interface": "eth0", "new_ip_address": "10.0.0.7", "new_subnet_mask": "255.255.255.0",
        "new_routers": "10.0.0.99", "new_interface_mtu": "1400",
        "new_rfc3442_classless_static_routes": "0 10 0 0 1 24 192 168 7 10 0 0 2",
    })

    assert plan is not None and plan.accept
    assert plan.add == iface("10.0.0.7/24") and plan.mtu == 1400 and plan.remove == ()
    # RFC 3442: with option 121 present the router option is ignored.
    assert plan.default_gateway == addr("10.0.0.1")
    assert plan.routes == (LeaseRoute(net("192.168.7.0/24"), addr("10.0.0.2")),)


def test_lease_plan_replaces_a_changed_address_and_drops_it_on_expiry() -> None:
    renew = lease_plan({"reason": "RENEW", "interface": "eth0", "old_ip_address": "10.0.0.7",
                        "old_subnet_mask": "255.255.255.0", "new_ip_address": "10.0.0.8",
                        "new_subnet_mask": "255.255.255.0", "new_routers": "10.0.0.1"})
    expire = lease_plan({"reason": "EXPIRE", "interface": "eth0", "old_ip_address": "10.0.0.8",
                         "old_subnet_mask": "255.255.255.0"})

    assert renew is not None and renew.remove == (iface("10.0.0.7/24"),) and renew.add == iface("10.0.0.8/24")
    assert renew.default_gateway == addr("10.0.0.1")
    assert expire is not None and expire.remove == (iface("10.0.0.8/24"),) and expire.add is None


def test_lease_plan_refuses_stale_leases_and_ignores_unrelated_events() -> None:
    timeout = lease_plan({"reason": "TIMEOUT", "interface": "eth0", "new_ip_address": "10.0.0.7"})
    assert timeout is not None and not timeout.accept
    assert lease_plan({"reason": "MEDIUM", "interface": "eth0"}) is None


def test_classless_routes_decode_on_link_routes_and_stop_at_a_malformed_tail() -> None:
    assert classless_routes("16,172,16,0,0,0,0 8 10") == (LeaseRoute(net("172.16.0.0/16"), None),)


# ---- the kernel ---------------------------------------------------------------------------------------------


def link_json(netns: str, name: str) -> dict:
    return json.loads(ip("-n", netns, "-j", "-d", "link", "show", "dev", name).stdout)[0]


def link_exists(netns: str, name: str) -> bool:
    return ip("-n", netns, "link", "show", "dev", name, check=False).returncode == 0


def namespace_exists(name: str) -> bool:
    return name in ip("netns", "list").stdout.split()


def spec_for(scratch: Scratch, host: str, addressing: StaticAddressing | None) -> VifSpec:
    mac = f"fa:16:3e:{scratch.suffix[:2]}:{scratch.suffix[2:4]}:{scratch.suffix[4:6]}"
    return VifSpec(str(uuid.uuid4()), mac, 1400, scratch.namespace("inst"), host, addressing)


@pytest.mark.kernel
async def test_plug_builds_the_tap_on_the_host_and_eth0_with_the_port_mac_inside(
    driver: NetlinkDriver, scratch: Scratch
) -> None:
    host = scratch.namespace("host")
    ip("netns", "add", host)
    addressing = static_addressing([{"subnet_id": "s4", "ip_address": "10.1.0.5"}], {"s4": SUBNET_V4})
    spec = spec_for(scratch, host, addressing)

    await VifPlugger(driver).plug(spec)

    tap = link_json(host, tap_name(spec.port_id))
    assert tap["linkinfo"]["info_kind"] == "veth" and tap["address"] == host_tap_mac(spec.mac)
    assert tap["ifalias"] == driver.owner.alias and tap["mtu"] == 1400 and "UP" in tap["flags"]
    eth0 = link_json(spec.namespace, "eth0")
    assert eth0["address"] == spec.mac and eth0["mtu"] == 1400 and "UP" in eth0["flags"]
    addresses = ip("-n", spec.namespace, "-o", "-4", "addr", "show", "dev", "eth0").stdout
    assert "10.1.0.5/24" in addresses
    assert "default via 10.1.0.1 dev eth0" in ip("-n", spec.namespace, "route").stdout
    assert spec.namespace in await driver.list_owned_namespaces()


@pytest.mark.kernel
async def test_plug_again_converges_to_new_addresses(driver: NetlinkDriver, scratch: Scratch) -> None:
    host = scratch.namespace("host")
    ip("netns", "add", host)
    first = spec_for(scratch, host, StaticAddressing((iface("10.1.0.5/24"),), (addr("10.1.0.1"),)))
    plugger = VifPlugger(driver)
    await plugger.plug(first)
    tap_index = link_json(host, first.tap)["ifindex"]

    second = VifSpec(first.port_id, first.mac, first.mtu, first.namespace, host,
                     StaticAddressing((iface("10.1.0.6/24"),), (addr("10.1.0.1"),)))
    await plugger.plug(second)

    addresses = ip("-n", first.namespace, "-o", "-4", "addr", "show", "dev", "eth0").stdout
    assert "10.1.0.6/24" in addresses and "10.1.0.5/" not in addresses
    assert link_json(host, first.tap)["ifindex"] == tap_index  # converged in place, not rebuilt


@pytest.mark.kernel
async def test_unplug_stops_the_instance_and_leaves_nothing(driver: NetlinkDriver, scratch: Scratch) -> None:
    host = scratch.namespace("host")
    ip("netns", "add", host)
    spec = spec_for(scratch, host, None)
    plugger = VifPlugger(driver)
    await plugger.plug(spec)
    sleeper = subprocess.Popen(["ip", "netns", "exec", spec.namespace, "sleep", "300"])
    try:
        identity = namespace_identity(driver.netns_dir / spec.namespace)
        assert identity is not None
        async with asyncio.timeout(5):
            while not processes_in_namespace(identity):
                await asyncio.sleep(0.02)

        await plugger.unplug(spec.port_id, spec.namespace, host)

        assert sleeper.wait(timeout=5) != 0
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()
    assert not namespace_exists(spec.namespace)
    assert not link_exists(host, spec.tap)
    assert ip("-n", host, "-o", "link").stdout.count("\n") == 1  # only lo is left
    await plugger.unplug(spec.port_id, spec.namespace, host)  # absent counts as removed


@pytest.mark.kernel
async def test_dhcp_client_applies_a_lease_from_dnsmasq_and_stops(
    driver: NetlinkDriver, scratch: Scratch, tmp_path: Path
) -> None:
    host = scratch.namespace("host")
    ip("netns", "add", host)
    spec = spec_for(scratch, host, None)
    await VifPlugger(driver).plug(spec)
    ip("-n", host, "addr", "add", "10.9.0.1/24", "dev", spec.tap)
    dnsmasq_pid = tmp_path / "dnsmasq.pid"
    client = DhcpClient(tmp_path / "inst", spec.namespace, driver.owner)
    try:
        subprocess.run(
            ["ip", "netns", "exec", host, "dnsmasq", "--no-hosts", "--no-resolv", "--port=0",
             f"--interface={spec.tap}", "--bind-interfaces", "--dhcp-range=10.9.0.50,10.9.0.60,255.255.255.0,1h",
             "--dhcp-option=26,1380", "--dhcp-option=121,0.0.0.0/0,10.9.0.1,172.31.0.0/16,10.9.0.2",
             f"--pid-file={dnsmasq_pid}"],
            check=True, capture_output=True, timeout=10,
        )
        await client.start()

        lease = await client.wait_for_lease(driver, timeout=20)

        assert lease is not None and lease.network == net("10.9.0.0/24")
        assert int(lease.ip) in range(int(addr("10.9.0.50")), int(addr("10.9.0.60")) + 1)
        # The hook puts the address, then the routes, the default route last: wait for that one.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while "default via 10.9.0.1 dev eth0" not in (routes := ip("-n", spec.namespace, "route").stdout):
            assert loop.time() < deadline, routes
            await asyncio.sleep(0.05)
        assert "172.31.0.0/16 via 10.9.0.2 dev eth0" in routes
        assert link_json(spec.namespace, "eth0")["mtu"] == 1380
        ping = await run_in_namespace(spec.namespace, "ping", "-n", "-c", "1", "-w", "5", "10.9.0.1")
        assert ping.returncode == 0, ping.stdout.decode()
    finally:
        stopped = await client.stop()
        if dnsmasq_pid.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(dnsmasq_pid.read_text().strip()), signal.SIGTERM)
    assert stopped and client.running() is None and not client.pid_file.exists()
