"""The netlink driver against the real kernel.

Wiring is proven by packets (ping over a bridge, ping over VXLAN between two simulated hosts), and
state is read back with iproute2 as well as with the driver, so the driver is never its own judge.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import subprocess
import uuid
from collections.abc import Awaitable, Callable

import pytest
from kernel_scratch import Scratch, ip, next_event, ping, run_in_namespace

from neutrino.contract.names import bridge_name, tap_name, vxlan_name
from neutrino.dataplane.netlink import (
    FLOODING_MAC,
    FdbEntry,
    Link,
    LinkConflict,
    LinkWatch,
    NamespaceNotFound,
    NetlinkDriver,
)
from neutrino.dataplane.ownership import OwnerTag

pytestmark = pytest.mark.kernel


def link_json(netns: str, name: str) -> dict:
    return json.loads(ip("-n", netns, "-j", "-d", "link", "show", "dev", name).stdout)[0]


def link_exists(netns: str, name: str) -> bool:
    return ip("-n", netns, "link", "show", "dev", name, check=False).returncode == 0


def namespace_exists(name: str) -> bool:
    return name in ip("netns", "list").stdout.split()


async def wait_until(condition: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.05)


async def plug_instance(
    driver: NetlinkDriver, scratch: Scratch, host: str, bridge: str, role: str, cidr: str, *, mtu: int = 1500
) -> tuple[str, str]:
    """An 'instance': a namespace whose eth0 is a veth peer of a tap on the host's bridge."""
    instance = scratch.namespace(role)
    await driver.ensure_namespace(instance)
    tap = tap_name(str(uuid.uuid4()))
    mac = f"fa:16:3e:{scratch.suffix[:2]}:{scratch.suffix[2:4]}:{len(scratch.namespaces):02x}"
    await driver.ensure_veth(tap, "eth0", netns=host, peer_netns=instance, mtu=mtu, peer_mac=mac)
    await driver.set_master(tap, bridge, netns=host)
    await driver.ensure_address("eth0", cidr, netns=instance)
    return instance, mac


async def test_instances_on_one_bridge_ping_each_other(driver: NetlinkDriver, scratch: Scratch) -> None:
    host = scratch.namespace("host")
    await driver.ensure_namespace(host)
    bridge = bridge_name(str(uuid.uuid4()))
    await driver.ensure_bridge(bridge, netns=host)
    first, _ = await plug_instance(driver, scratch, host, bridge, "a", "10.77.0.1/24")
    await plug_instance(driver, scratch, host, bridge, "b", "10.77.0.2/24")

    result = await ping(first, "10.77.0.2")

    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    ports = {link.name for link in await driver.list_links(netns=host) if link.master == bridge}
    assert len(ports) == 2 and all(name.startswith("tap") for name in ports)


async def test_instances_on_two_hosts_ping_each_other_over_vxlan(
    driver: NetlinkDriver, scratch: Scratch
) -> None:
    underlay = scratch.namespace("ul")
    await driver.ensure_namespace(underlay)
    underlay_bridge = scratch.device("ul")
    await driver.ensure_bridge(underlay_bridge, netns=underlay)
    network_id, vni = str(uuid.uuid4()), 1001
    bridge, vxlan = bridge_name(network_id), vxlan_name(vni)
    hosts = {"ha": "172.30.0.1", "hb": "172.30.0.2"}
    instances = {}
    for role, underlay_ip in hosts.items():
        host = scratch.namespace(role)
        await driver.ensure_namespace(host)
        uplink = scratch.device(f"u{role}")
        await driver.ensure_veth(uplink, "eth0", netns=underlay, peer_netns=host)
        await driver.set_master(uplink, underlay_bridge, netns=underlay)
        await driver.ensure_address("eth0", f"{underlay_ip}/24", netns=host)
        await driver.ensure_bridge(bridge, netns=host, mtu=1450)
        link = await driver.ensure_vxlan(vxlan, vni, underlay_ip, dev="eth0", netns=host)
        assert link.mtu == 1450  # the kernel leaves room for the 50 bytes of VXLAN encapsulation
        await driver.set_master(vxlan, bridge, netns=host)
        instance_cidr = f"10.88.0.{len(instances) + 1}/24"
        instances[role] = (
            host,
            *await plug_instance(driver, scratch, host, bridge, f"i{role}", instance_cidr, mtu=1450),
        )
    # Head-end replication to the other host, plus l2population's per-MAC entry.
    for role, (host, _, _) in instances.items():
        other = "hb" if role == "ha" else "ha"
        await driver.fdb_append(vxlan, FLOODING_MAC, hosts[other], netns=host)
        await driver.fdb_append(vxlan, instances[other][2], hosts[other], netns=host)

    result = await ping(instances["ha"][1], "10.88.0.2")

    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    host_a = instances["ha"][0]
    assert set(await driver.list_fdb(vxlan, netns=host_a)) >= {
        FdbEntry(vxlan, FLOODING_MAC, ipaddress.ip_address("172.30.0.2")),
    }
    shown = ip("-n", host_a, "-d", "link", "show", "dev", vxlan).stdout
    assert "nolearning" in shown and f"id {vni}" in shown
    fdb = json.loads(
        subprocess.run(
            ["bridge", "-n", host_a, "-j", "fdb", "show", "dev", vxlan],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert {(e["mac"], e.get("dst")) for e in fdb if "permanent" in e.get("state", "")} >= {
        (FLOODING_MAC, "172.30.0.2"),
        (instances["hb"][2], "172.30.0.2"),
    }


def _settable(link: Link) -> tuple:
    """What ensures set or must keep; operational state is left out, it moves on its own (carrier)."""
    return (link.index, link.kind, link.master, link.mtu, link.mac, link.admin_up, link.alias, link.vxlan)


async def _ensure_everything(driver: NetlinkDriver, netns: str) -> tuple[dict[str, tuple], tuple]:
    bridge = await driver.ensure_bridge("br0", netns=netns, mtu=1400)
    veth, peer = await driver.ensure_veth(
        "v0", "v1", netns=netns, mtu=1400, mac="fa:16:3e:00:00:10", peer_mac="fa:16:3e:00:00:11"
    )
    port = await driver.set_master("v0", "br0", netns=netns)
    vxlan = await driver.ensure_vxlan("vxlan-42", 42, "192.0.2.1", netns=netns, mtu=1350)
    v4 = await driver.ensure_address("br0", "10.0.0.1/24", netns=netns)
    v6 = await driver.ensure_address("br0", "fd00:1::1/64", netns=netns, nodad=True)
    route = await driver.ensure_default_route("10.0.0.254", netns=netns)
    fdb = await driver.fdb_append("vxlan-42", FLOODING_MAC, "192.0.2.2", netns=netns)
    forwarding = await driver.set_sysctl("net.ipv4.ip_forward", 1, netns=netns)
    links = {link.name: _settable(link) for link in (bridge, veth, peer, vxlan)} | {"v0": _settable(port)}
    return links, (v4, v6, route, fdb, forwarding)


async def test_ensuring_twice_changes_nothing_and_reads_back(driver: NetlinkDriver, scratch: Scratch) -> None:
    netns = scratch.namespace("idem")
    await driver.ensure_namespace(netns)
    _, first = await _ensure_everything(driver, netns)

    async def settled() -> bool:  # carrier and bridge port state reach their final values
        states = {link.name: link.state for link in await driver.list_links(netns=netns)}
        return states["v0"] == states["v1"] == states["br0"] == "up"

    await wait_until(settled)
    async with driver.watch_links(netns=netns) as watch:
        await driver.ensure_namespace(netns)
        links, second = await _ensure_everything(driver, netns)
        ip("-n", netns, "link", "add", "sentinel0", "type", "veth", "peer", "name", "sentinel1")
        _, before_sentinel = await next_event(watch, lambda e: e.name.startswith("sentinel"))
    read_back = {
        link.name: _settable(link) for link in await driver.list_links(netns=netns) if link.name in links
    }

    assert second == first
    assert links == read_back
    assert before_sentinel == [], "a second ensure must not write to any link"
    port = link_json(netns, "v0")
    assert (port["mtu"], port["master"], port["address"], port["ifalias"]) == (
        1400,
        "br0",
        "fa:16:3e:00:00:10",
        driver.owner.alias,
    )
    assert link_json(netns, "v1")["address"] == "fa:16:3e:00:00:11"
    vxlan = link_json(netns, "vxlan-42")
    assert vxlan["linkinfo"]["info_data"]["id"] == 42 and vxlan["linkinfo"]["info_data"]["learning"] is False
    addresses = json.loads(ip("-n", netns, "-j", "addr", "show", "dev", "br0").stdout)[0]["addr_info"]
    assert {(a["local"], a["prefixlen"]) for a in addresses} >= {("10.0.0.1", 24), ("fd00:1::1", 64)}
    routes = json.loads(ip("-n", netns, "-j", "route", "show", "default").stdout)
    assert [(r["gateway"], r["dev"]) for r in routes] == [("10.0.0.254", "br0")]
    entries = await run_in_namespace(netns, "bridge", "fdb", "show", "dev", "vxlan-42")
    assert entries.stdout.decode().count("dst 192.0.2.2") == 1
    sysctl = await run_in_namespace(netns, "cat", "/proc/sys/net/ipv4/ip_forward")
    assert sysctl.stdout.decode().strip() == "1"


async def test_ensure_converges_what_drifted(driver: NetlinkDriver, scratch: Scratch) -> None:
    netns = scratch.namespace("drift")
    await driver.ensure_namespace(netns)
    await driver.ensure_bridge("br0", netns=netns)
    await driver.ensure_veth("v0", "v1", netns=netns, mtu=1400)
    await driver.set_master("v0", "br0", netns=netns)
    await driver.ensure_vxlan("vxlan-42", 42, "192.0.2.1", netns=netns)
    await driver.ensure_address("br0", "10.0.0.1/16", netns=netns)
    await driver.ensure_default_route("10.0.0.254", netns=netns)
    ip("-n", netns, "link", "set", "v0", "nomaster", "mtu", "1300", "alias", "someone-else", "down")

    veth, _ = await driver.ensure_veth("v0", "v1", netns=netns, mtu=1400)
    port = await driver.set_master("v0", "br0", netns=netns)
    vxlan = await driver.ensure_vxlan("vxlan-42", 43, "192.0.2.1", netns=netns)
    address = await driver.ensure_address("br0", "10.0.0.1/24", netns=netns)
    route = await driver.ensure_default_route("10.0.0.253", netns=netns)

    assert (veth.mtu, veth.alias, veth.admin_up) == (1400, driver.owner.alias, True)
    assert port.master == "br0" and link_json(netns, "v0")["master"] == "br0"
    assert vxlan.vxlan is not None and vxlan.vxlan.vni == 43
    assert link_json(netns, "vxlan-42")["linkinfo"]["info_data"]["id"] == 43
    on_bridge = [a.cidr for a in await driver.list_addresses(device="br0", netns=netns, version=4)]
    assert on_bridge == [address.cidr] == ["10.0.0.1/24"]
    assert str(route.gateway) == "10.0.0.253"
    assert [r["gateway"] for r in json.loads(ip("-n", netns, "-j", "route", "show", "default").stdout)] == [
        "10.0.0.253"
    ]


async def test_a_foreign_device_in_the_way_is_left_alone(driver: NetlinkDriver, scratch: Scratch) -> None:
    netns = scratch.namespace("foreign")
    await driver.ensure_namespace(netns)
    ip("-n", netns, "link", "add", "br0", "type", "veth", "peer", "name", "br0peer")

    with pytest.raises(LinkConflict):
        await driver.ensure_bridge("br0", netns=netns)

    assert link_json(netns, "br0")["linkinfo"]["info_kind"] == "veth"


async def test_removing_what_is_absent_succeeds(driver: NetlinkDriver, scratch: Scratch) -> None:
    netns = scratch.namespace("rm")
    missing = scratch.namespace("never")
    await driver.ensure_namespace(netns)
    await driver.ensure_veth("v0", "v1", netns=netns)
    await driver.ensure_vxlan("vxlan-7", 7, "192.0.2.1", netns=netns)

    await driver.remove_link("v0", netns=netns)
    await driver.remove_link("v0", netns=netns)
    await driver.remove_link("v0", netns=missing)
    await driver.remove_address("lo", "10.1.1.1/32", netns=netns)
    await driver.remove_address("nothere", "10.1.1.1/32", netns=netns)
    await driver.remove_address("lo", "10.1.1.1/32", netns=missing)
    await driver.remove_route("10.99.0.0/16", netns=netns)
    await driver.remove_default_route(version=6, netns=netns)
    await driver.fdb_remove("vxlan-7", FLOODING_MAC, "192.0.2.9", netns=netns)
    await driver.fdb_remove("nothere", FLOODING_MAC, "192.0.2.9", netns=netns)
    await driver.remove_namespace(missing)

    assert not link_exists(netns, "v0") and not link_exists(netns, "v1")  # the peer went with it
    await driver.remove_namespace(netns)
    await driver.remove_namespace(netns)
    assert not namespace_exists(netns)
    assert not namespace_exists(missing)


async def test_reading_a_missing_namespace_fails_without_creating_it(
    driver: NetlinkDriver, scratch: Scratch
) -> None:
    missing = scratch.namespace("ghost")

    with pytest.raises(NamespaceNotFound):
        await driver.list_links(netns=missing)
    with pytest.raises(NamespaceNotFound):
        await driver.ensure_bridge("br0", netns=missing)
    with pytest.raises(NamespaceNotFound):
        await driver.get_sysctl("net.ipv4.ip_forward", netns=missing)

    assert not namespace_exists(missing)


async def test_removing_present_objects_removes_them(driver: NetlinkDriver, scratch: Scratch) -> None:
    netns = scratch.namespace("rm2")
    await driver.ensure_namespace(netns)
    await driver.ensure_vxlan("vxlan-7", 7, "192.0.2.1", netns=netns)
    await driver.fdb_append("vxlan-7", FLOODING_MAC, "192.0.2.2", netns=netns)
    await driver.fdb_append("vxlan-7", FLOODING_MAC, "192.0.2.3", netns=netns)
    await driver.ensure_address("vxlan-7", "10.5.0.1/24", netns=netns)
    await driver.ensure_route("10.6.0.0/16", gateway="10.5.0.9", netns=netns)

    await driver.fdb_remove("vxlan-7", FLOODING_MAC, "192.0.2.2", netns=netns)
    await driver.remove_route("10.6.0.0/16", netns=netns)
    await driver.remove_address("vxlan-7", "10.5.0.1/24", netns=netns)

    assert [str(e.dst) for e in await driver.list_fdb("vxlan-7", netns=netns)] == ["192.0.2.3"]
    assert "10.6.0.0/16" not in ip("-n", netns, "route").stdout
    assert "10.5.0.1" not in ip("-n", netns, "addr", "show", "dev", "vxlan-7").stdout


async def test_moving_a_device_between_namespaces(driver: NetlinkDriver, scratch: Scratch) -> None:
    source, target = scratch.namespace("src"), scratch.namespace("dst")
    await driver.ensure_namespace(source)
    await driver.ensure_namespace(target)
    await driver.ensure_veth("m0", "m1", netns=source)

    moved = await driver.move_link("m1", to_netns=target, netns=source)
    again = await driver.move_link("m1", to_netns=target, netns=source)

    assert moved.name == again.name == "m1" and moved.index == again.index
    assert link_exists(target, "m1") and not link_exists(source, "m1")
    # The pair still holds across namespaces: ensuring it with the peer over there changes nothing.
    before = link_json(source, "m0")["ifindex"]
    here, there = await driver.ensure_veth("m0", "m1", netns=source, peer_netns=target)
    assert here.index == before and there.index == moved.index


async def test_watch_reports_a_veth_created_after_subscribing(
    driver: NetlinkDriver, scratch: Scratch
) -> None:
    netns, elsewhere = scratch.namespace("watch"), scratch.namespace("other")
    await driver.ensure_namespace(netns)
    await driver.ensure_namespace(elsewhere)
    await driver.ensure_bridge("br0", netns=netns)

    async with driver.watch_links(netns=netns) as watch:
        assert {"lo", "br0"} <= {link.name for link in watch.snapshot}
        ip("-n", elsewhere, "link", "add", "x0", "type", "veth", "peer", "name", "x1")
        ip("-n", netns, "link", "add", "w0", "type", "veth", "peer", "name", "w1")
        added, _ = await next_event(watch, lambda e: e.event == "added")
        await driver.set_master("w0", "br0", netns=netns)
        await driver.set_nomaster("w0", netns=netns)
        ip("-n", netns, "link", "del", "w0")
        removed, between = await next_event(watch, lambda e: e.event == "removed" and e.name == "w0")

    assert added.name in ("w0", "w1") and added.kind == "veth"  # never x0: other namespace
    assert removed.index == link_index_of(between, "w0")
    assert any(e.link is not None and e.link.master == "br0" for e in between if e.name == "w0")
    assert not any(e.event == "removed" and e.name == "w0" for e in between), "leaving a bridge is no removal"


def link_index_of(events: list, name: str) -> int:
    return next(e.index for e in events if e.name == name)


async def test_watch_recovers_from_dropped_events(driver: NetlinkDriver, scratch: Scratch) -> None:
    netns = scratch.namespace("flood")
    await driver.ensure_namespace(netns)
    watch = LinkWatch(driver, netns)
    watch.RECEIVE_BUFFER_BYTES = 4096  # the kernel's minimum: a few messages overflow it

    async with watch:
        batch = "".join(f"link add f{n} type veth peer name g{n}\n" for n in range(20))
        process = await asyncio.create_subprocess_exec(
            "ip", "-n", netns, "-batch", "-", stdin=asyncio.subprocess.PIPE
        )
        await process.communicate(batch.encode())
        assert process.returncode == 0
        overflow, _ = await next_event(watch, lambda e: e.event == "overflow")
        names = set()
        while len(names) < 40:
            event, _ = await next_event(watch, lambda e: e.event == "added")
            names.add(event.name)

    assert overflow.link is None
    assert names == {f"{p}{n}" for p in "fg" for n in range(20)}


async def test_sysctl_is_set_inside_the_namespace_only(driver: NetlinkDriver, scratch: Scratch) -> None:
    router, bystander = scratch.namespace("r"), scratch.namespace("by")
    await driver.ensure_namespace(router)
    await driver.ensure_namespace(bystander)
    root_before = await driver.get_sysctl("net.ipv4.ip_forward")

    assert await driver.set_sysctl("net.ipv4.ip_forward", 1, netns=router) == "1"

    assert (await run_in_namespace(router, "cat", "/proc/sys/net/ipv4/ip_forward")).stdout.strip() == b"1"
    assert (await run_in_namespace(bystander, "cat", "/proc/sys/net/ipv4/ip_forward")).stdout.strip() == b"0"
    assert await driver.get_sysctl("net.ipv4.ip_forward") == root_before
    with pytest.raises(ValueError):
        await driver.set_sysctl("kernel.hostname", "nope", netns=router)


async def test_only_marked_objects_are_listed_as_owned(driver: NetlinkDriver, scratch: Scratch) -> None:
    ours, plain = scratch.namespace("ours"), scratch.namespace("plain")
    await driver.ensure_namespace(ours)
    ip("netns", "add", plain)
    await driver.ensure_bridge("br0", netns=ours)
    await driver.ensure_veth("v0", "v1", netns=ours)
    ip("-n", ours, "link", "add", "foreign0", "type", "veth", "peer", "name", "foreign1")
    stranger = NetlinkDriver(OwnerTag(f"stranger-{scratch.suffix}"))

    owned = {link.name for link in await driver.list_owned(netns=ours)}
    owned_namespaces = await driver.list_owned_namespaces()

    assert owned == {"br0", "v0", "v1"}
    assert ours in owned_namespaces and plain not in owned_namespaces
    assert await stranger.list_owned(netns=ours) == ()
    assert ours not in await stranger.list_owned_namespaces()
    assert link_json(ours, "br0")["ifalias"] == f"neutrino:test-{scratch.suffix}"


async def test_the_process_namespace_is_readable(driver: NetlinkDriver) -> None:
    links = await driver.list_links()

    assert any(link.name == "lo" for link in links)


async def test_routes_out_of_a_device_and_via_an_ipv6_gateway(
    driver: NetlinkDriver, scratch: Scratch
) -> None:
    netns = scratch.namespace("rt")
    await driver.ensure_namespace(netns)
    await driver.ensure_veth("qg0", "qg1", netns=netns)
    await driver.ensure_address("qg0", "203.0.113.5/24", netns=netns)
    await driver.ensure_address("qg0", "2001:db8::5/64", netns=netns, nodad=True)

    onlink = await driver.ensure_route("198.51.100.0/24", device="qg0", netns=netns)
    default6 = await driver.ensure_default_route("2001:db8::1", netns=netns)
    again = await driver.ensure_default_route("2001:db8::1", netns=netns)

    assert (onlink.gateway, onlink.device) == (None, "qg0")
    assert default6 == again and default6.device == "qg0"
    shown = ip("-n", netns, "-6", "route", "show", "default").stdout
    assert "via 2001:db8::1 dev qg0" in shown
    assert "198.51.100.0/24 dev qg0" in ip("-n", netns, "route").stdout
    await driver.remove_default_route(version=6, netns=netns)
    assert ip("-n", netns, "-6", "route", "show", "default").stdout.strip() == ""


async def test_a_multipath_route_spreads_over_every_gateway_and_reads_back(
    driver: NetlinkDriver, scratch: Scratch
) -> None:
    netns = scratch.namespace("ecmp")
    await driver.ensure_namespace(netns)
    await driver.ensure_veth("qr0", "qr1", netns=netns)
    await driver.set_up("qr0", netns=netns)
    await driver.ensure_address("qr0", "10.60.0.1/24", netns=netns)
    await driver.ensure_address("qr0", "2001:db8:60::1/64", netns=netns, nodad=True)

    route = await driver.ensure_multipath_route("10.99.0.0/16", ["10.60.0.12", "10.60.0.11"], netns=netns)
    again = await driver.ensure_multipath_route("10.99.0.0/16", ["10.60.0.11", "10.60.0.12"], netns=netns)
    route6 = await driver.ensure_multipath_route("2001:db8:99::/48", ["2001:db8:60::b", "2001:db8:60::a"],
                                                 netns=netns)

    assert route == again and [str(h) for h in route.nexthops] == ["10.60.0.11", "10.60.0.12"]
    assert [str(h) for h in route6.nexthops] == ["2001:db8:60::a", "2001:db8:60::b"]
    shown = ip("-n", netns, "route", "show", "10.99.0.0/16").stdout
    assert "nexthop via 10.60.0.11 dev qr0" in shown and "nexthop via 10.60.0.12 dev qr0" in shown, shown
    shown6 = ip("-n", netns, "-6", "route", "show", "2001:db8:99::/48").stdout
    assert "nexthop via 2001:db8:60::a dev qr0" in shown6 and "nexthop via 2001:db8:60::b dev qr0" in shown6, shown6
    # Back to one gateway: a plain route replaces the multipath one.
    await driver.remove_route("10.99.0.0/16", netns=netns)
    single = await driver.ensure_route("10.99.0.0/16", gateway="10.60.0.11", netns=netns)
    assert (str(single.gateway), single.nexthops) == ("10.60.0.11", ())
    assert "nexthop" not in ip("-n", netns, "route", "show", "10.99.0.0/16").stdout


async def test_converge_port_sets_mtu_bridge_and_state_in_one_go_and_leaves_the_rest(
    driver: NetlinkDriver, scratch: Scratch
) -> None:
    netns = scratch.namespace("conv")
    await driver.ensure_namespace(netns)
    await driver.ensure_bridge("br0", netns=netns, mtu=1400)
    ip("-n", netns, "link", "add", "t0", "type", "veth", "peer", "name", "t1")

    port = await driver.converge_port("t0", netns=netns, mtu=1400, bridge="br0", up=True)

    shown = link_json(netns, "t0")
    assert (shown["mtu"], shown.get("master"), "UP" in shown["flags"]) == (1400, "br0", True)
    assert (port.mtu, port.master, port.admin_up) == (1400, "br0", True)
    down = await driver.converge_port("t0", netns=netns, up=False)
    assert (down.mtu, down.master, down.admin_up) == (1400, "br0", False), "only the state changed"
    assert link_json(netns, "br0")["mtu"] == 1400
