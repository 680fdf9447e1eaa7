"""Routers, floating IPs and port forwardings (the ``router`` service plugin) on a live server.

A member of a fresh project wires a router with the ``openstack`` CLI and openstacksdk as users do
(the admin makes the external network the way operators do:
``network create --external --provider-network-type flat``); exact status codes and NeutronError
types of the error cases are checked over plain HTTP. Each test builds its own topology and tears
it down, so tests are independent of order and of each other's failures.
"""

from __future__ import annotations

import ipaddress
import json
import select
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openstack
import openstack.config
import pytest
from openstack import exceptions as sdk_exc

from tests.support.live_server import LiveServer
from tests.support.neutron_http import api, created, neutron_error, ok
from tests.support.tenants import IdentityAdmin, Persona, write_clouds_yaml

EXT_CIDR = "198.51.100.0/24"
# Keys of a router / floating IP as captured from Neutron (spec examples 25 and 27).
ROUTER_KEYS = {"id", "name", "description", "project_id", "tenant_id", "admin_state_up", "status",
               "external_gateway_info", "routes", "distributed", "ha", "availability_zone_hints", "flavor_id",
               "enable_ndp_proxy",
               "availability_zones", "conntrack_helpers", "tags", "created_at", "updated_at", "revision_number"}
FIP_KEYS = {"id", "project_id", "tenant_id", "description", "floating_ip_address", "floating_network_id", "router_id",
            "port_id", "fixed_ip_address", "status", "port_details", "port_forwardings", "tags", "created_at",
            "qos_policy_id",
            "updated_at", "revision_number"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# The ``openstack`` script is ``sys.exit(openstackclient.shell.main())``; this runs that same entry
# point for one command per input line, so the CLI's two-second start-up is paid once, not per command.
CLI_DRIVER = r"""
import contextlib, io, json, sys
from openstackclient.shell import main
for line in sys.stdin:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(json.loads(line))
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 1
    sys.__stdout__.write(json.dumps({"rc": rc, "stdout": out.getvalue(), "stderr": err.getvalue()}) + "\n")
    sys.__stdout__.flush()
"""


class Cli:
    """``openstack --os-cloud CLOUD ...`` commands, run by the CLI's own entry point.

    One long-lived process per cloud: the CLI keeps per-process state (its authenticated session
    among it), so a process never serves two clouds.
    """

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.procs: dict[str, subprocess.Popen[str]] = {}

    def _proc(self, cloud: str) -> subprocess.Popen[str]:
        if cloud not in self.procs:
            self.procs[cloud] = subprocess.Popen([sys.executable, "-c", CLI_DRIVER], env=self.env, text=True,
                                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                 stderr=subprocess.DEVNULL)
        return self.procs[cloud]

    def run(self, cloud: str, *args: str) -> Any:
        """Run one command; its JSON output parsed (None when it printed nothing)."""
        proc = self._proc(cloud)
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(["--os-cloud", cloud, *args]) + "\n")
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        assert ready, f"openstack {' '.join(args)} did not finish in 120 s"
        result = json.loads(proc.stdout.readline())
        assert result["rc"] == 0, f"openstack {' '.join(args)} failed ({result['rc']}): {result['stderr']}"
        return json.loads(result["stdout"]) if result["stdout"].strip() else None

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@dataclass
class World:
    """Two member projects, the admin, and an external network with one IPv4 subnet."""

    member: Persona
    other: Persona
    a: httpx.Client        # member of project A
    b: httpx.Client        # member of project B
    adm: httpx.Client
    cli: Cli
    clouds_yaml: Path
    ext_net: dict[str, Any]
    ext_subnet: dict[str, Any]


def wipe_project(client: httpx.Client, project_id: str) -> None:
    """Delete what a project made here: port forwardings, floating IPs, router attachments,
    routers, ports and networks (best effort, in dependency order)."""
    for fip in client.get("/floatingips", params={"project_id": project_id}).json().get("floatingips", []):
        forwardings = f"/floatingips/{fip['id']}/port_forwardings"
        for pf in client.get(forwardings).json().get("port_forwardings", []):
            client.delete(f"{forwardings}/{pf['id']}")
        client.delete(f"/floatingips/{fip['id']}")
    for router in client.get("/routers", params={"project_id": project_id}).json().get("routers", []):
        client.put(f"/routers/{router['id']}", json={"router": {"routes": []}})
        ports = client.get("/ports", params={"device_id": router["id"],
                                             "device_owner": "network:router_interface"}).json().get("ports", [])
        for port in ports:
            client.put(f"/routers/{router['id']}/remove_router_interface", json={"port_id": port["id"]})
        client.delete(f"/routers/{router['id']}")
    for port in client.get("/ports", params={"project_id": project_id}).json().get("ports", []):
        client.delete(f"/ports/{port['id']}")
    for net in client.get("/networks", params={"project_id": project_id}).json().get("networks", []):
        client.delete(f"/networks/{net['id']}")


@pytest.fixture(scope="module")
def world(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    identity = IdentityAdmin(live_server)
    member = identity.persona("member", prefix="l3a")
    other = identity.persona("member", prefix="l3b")
    clouds = write_clouds_yaml(live_server, tmp_path_factory.mktemp("l3") / "clouds.yaml",
                               {"l3-member": member, "l3-other": other})
    cli = Cli({**live_server.env(), "OS_CLIENT_CONFIG_FILE": str(clouds)})
    clients = [api(live_server, p) for p in (member, other, identity.admin)]
    a, b, adm = clients
    ext_net: dict[str, Any] = {}
    try:
        # A physical network of its own, so no other test's flat network can collide with it.
        ext_net = cli.run("neutrino-admin", "network", "create", "--external", "--provider-network-type", "flat",
                          "--provider-physical-network", unique("l3pub"), unique("l3-public"), "-f", "json")
        ext_subnet = created(adm.post("/subnets", json={"subnet": {
            "network_id": ext_net["id"], "cidr": EXT_CIDR, "ip_version": 4, "enable_dhcp": False,
            "allocation_pools": [{"start": "198.51.100.10", "end": "198.51.100.200"}]}}), "subnet")
        yield World(member, other, a, b, adm, cli, clouds, ext_net, ext_subnet)
    finally:
        cli.close()
        for persona in (member, other):
            wipe_project(adm, persona.project_id)
        if ext_net:
            adm.delete(f"/networks/{ext_net['id']}")
        for client in clients:
            client.close()
        for persona in (member, other):
            identity.delete_user(persona.user_id)
            identity.delete_project(persona.project_id)
        identity.close()


@pytest.fixture
def clean(world: World) -> Iterator[World]:
    """The world, wiped of the member projects' objects after the test (even when it fails)."""
    try:
        yield world
    finally:
        for persona in (world.member, world.other):
            wipe_project(world.adm, persona.project_id)


def make_net(client: httpx.Client, cidr: str, **subnet: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    net = created(client.post("/networks", json={"network": {"name": unique("l3-net")}}), "network")
    sub = created(client.post("/subnets", json={"subnet": {"network_id": net["id"], "cidr": cidr,
                                                           "ip_version": 4, **subnet}}), "subnet")
    return net, sub


def make_router(client: httpx.Client, ext_net_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": unique("l3-router")}
    if ext_net_id:
        body["external_gateway_info"] = {"network_id": ext_net_id}
    return created(client.post("/routers", json={"router": body}), "router")


def add_subnet(client: httpx.Client, router_id: str, subnet_id: str) -> dict[str, Any]:
    return ok(client.put(f"/routers/{router_id}/add_router_interface", json={"subnet_id": subnet_id}))


def make_port(client: httpx.Client, net_id: str) -> dict[str, Any]:
    return created(client.post("/ports", json={"port": {"network_id": net_id}}), "port")


@dataclass
class Wired:
    """A member network behind a router with a gateway on the external network."""

    net: dict[str, Any]
    subnet: dict[str, Any]
    router: dict[str, Any]
    port: dict[str, Any]


def wired(w: World, cidr: str) -> Wired:
    net, sub = make_net(w.a, cidr)
    router = make_router(w.a, w.ext_net["id"])
    add_subnet(w.a, router["id"], sub["id"])
    return Wired(net, sub, router, make_port(w.a, net["id"]))


# ---- the CLI and openstacksdk, as users drive them ------------------------------------------------


def test_member_wires_router_floating_ip_and_port_forwarding_with_the_cli(clean: World) -> None:
    w = clean
    net, sub = make_net(w.a, "10.81.0.0/24")
    port = make_port(w.a, net["id"])
    target = make_port(w.a, net["id"])
    router_name = unique("cli-router")
    router = w.cli.run("l3-member", "router", "create", router_name, "-f", "json")
    fip = w.cli.run("l3-member", "floating", "ip", "create", w.ext_net["name"], "-f", "json")
    fip2 = w.cli.run("l3-member", "floating", "ip", "create", w.ext_net["id"], "-f", "json")
    assert (router["name"], router["status"], router["project_id"]) == (router_name, "ACTIVE", w.member.project_id)
    assert fip["floating_network_id"] == w.ext_net["id"] and fip["status"] == "DOWN" and fip["port_id"] is None
    w.cli.run("l3-member", "router", "set", "--external-gateway", w.ext_net["name"], router_name)
    gateway = ok(w.a.get(f"/routers/{router['id']}"), "router")["external_gateway_info"]
    assert gateway["network_id"] == w.ext_net["id"] and gateway["enable_snat"] is True
    [gw_ip] = gateway["external_fixed_ips"]
    assert gw_ip["subnet_id"] == w.ext_subnet["id"]
    w.cli.run("l3-member", "router", "add", "subnet", router_name, sub["id"])
    interfaces = ok(w.a.get("/ports", params={"device_id": router["id"], "device_owner": "network:router_interface"}),
                    "ports")
    assert [p["fixed_ips"] for p in interfaces] == [[{"subnet_id": sub["id"], "ip_address": "10.81.0.1"}]]
    target_ip = target["fixed_ips"][0]["ip_address"]
    w.cli.run("l3-member", "router", "add", "route", "--route", "destination=10.250.0.0/24,gateway=10.81.0.254",
              router_name, "-f", "json")
    w.cli.run("l3-member", "floating", "ip", "set", "--port", port["id"], fip["id"])
    w.cli.run("l3-member", "floating", "ip", "port", "forwarding", "create", "--internal-ip-address", target_ip,
              "--port", target["id"], "--internal-protocol-port", "22", "--external-protocol-port", "2222",
              "--protocol", "tcp", fip2["id"], "-f", "json")
    shown = ok(w.a.get(f"/routers/{router['id']}"), "router")
    assert shown["routes"] == [{"destination": "10.250.0.0/24", "nexthop": "10.81.0.254"}]
    assert shown["revision_number"] > router["revision_number"]
    associated = ok(w.a.get(f"/floatingips/{fip['id']}"), "floatingip")
    assert (associated["port_id"], associated["fixed_ip_address"], associated["router_id"]) == \
        (port["id"], port["fixed_ips"][0]["ip_address"], router["id"])
    assert associated["port_details"]["mac_address"] == port["mac_address"]
    [forwarding] = ok(w.a.get(f"/floatingips/{fip2['id']}/port_forwardings"), "port_forwardings")
    assert {k: forwarding[k] for k in ("protocol", "internal_port_id", "internal_ip_address", "internal_port",
                                       "external_port")} == \
        {"protocol": "tcp", "internal_port_id": target["id"], "internal_ip_address": target_ip,
         "internal_port": 22, "external_port": 2222}
    forwarded = ok(w.a.get(f"/floatingips/{fip2['id']}"), "floatingip")
    assert forwarded["router_id"] == router["id"] and forwarded["port_id"] is None
    assert [f["id"] for f in forwarded["port_forwardings"]] == [forwarding["id"]]


def test_openstacksdk_round_trip_of_router_interfaces_routes_and_floating_ip(clean: World) -> None:
    w = clean
    config = openstack.config.OpenStackConfig(config_files=[str(w.clouds_yaml)])
    conn = openstack.connection.Connection(config=config.get_one("l3-member"))
    try:
        net = conn.network.create_network(name=unique("sdk-net"))
        sub = conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.82.0.0/24")
        router = conn.network.create_router(name=unique("sdk-router"),
                                            external_gateway_info={"network_id": w.ext_net["id"]})
        assert router.external_gateway_info["network_id"] == w.ext_net["id"]
        info = conn.network.add_interface_to_router(router, subnet=sub.id)
        assert (info["subnet_id"], info["network_id"], info["id"]) == (sub.id, net.id, router.id)
        interface = conn.network.get_port(info["port_id"])
        assert (interface.device_owner, interface.device_id) == ("network:router_interface", router.id)
        assert interface.fixed_ips == [{"subnet_id": sub.id, "ip_address": "10.82.0.1"}]
        routed = conn.network.add_extra_routes_to_router(
            router, body={"router": {"routes": [{"destination": "10.251.0.0/24", "nexthop": "10.82.0.9"}]}})
        assert routed.routes == [{"destination": "10.251.0.0/24", "nexthop": "10.82.0.9"}]
        port = conn.network.create_port(network_id=net.id)
        fip = conn.network.create_ip(floating_network_id=w.ext_net["id"], port_id=port.id)
        assert (fip.port_id, fip.router_id, fip.status) == (port.id, router.id, "DOWN")
        assert fip.floating_ip_address.startswith("198.51.100.")
        conn.network.update_ip(fip, port_id=None)
        assert conn.network.get_ip(fip.id).port_id is None
        conn.network.delete_ip(fip)
        conn.network.remove_extra_routes_from_router(
            router, body={"router": {"routes": [{"destination": "10.251.0.0/24", "nexthop": "10.82.0.9"}]}})
        conn.network.remove_interface_from_router(router, subnet=sub.id)
        with pytest.raises(sdk_exc.ResourceNotFound):
            conn.network.get_port(info["port_id"])
        conn.network.delete_router(router)
        with pytest.raises(sdk_exc.ResourceNotFound):
            conn.network.get_router(router.id)
    finally:
        conn.close()


# ---- routers: gateway and interface rules ----------------------------------------------------------


def test_gateway_needs_an_external_network_and_member_may_not_pick_snat_or_addresses(clean: World) -> None:
    w = clean
    net, sub = make_net(w.a, "10.83.0.0/24")
    router = make_router(w.a)
    rid = router["id"]
    neutron_error(w.a.put(f"/routers/{rid}", json={"router": {"external_gateway_info": {"network_id": net["id"]}}}),
                  400, "BadRequest", f"Bad router request: Network {net['id']} is not an external network.")
    missing = str(uuid.uuid4())
    neutron_error(w.a.put(f"/routers/{rid}", json={"router": {"external_gateway_info": {"network_id": missing}}}),
                  404, "NetworkNotFound")
    for extra in ({"enable_snat": False}, {"external_fixed_ips": [{"subnet_id": w.ext_subnet["id"]}]}):
        neutron_error(w.a.put(f"/routers/{rid}", json={"router": {"external_gateway_info": {
            "network_id": w.ext_net["id"], **extra}}}), 403, "PolicyNotAuthorized",
            "update_router is disallowed by policy")
    neutron_error(w.a.post("/routers", json={"router": {"name": "x", "ha": True}}), 403, "PolicyNotAuthorized",
                  "create_router is disallowed by policy")
    neutron_error(w.a.post("/routers", json={"router": {"name": "x", "distributed": True}}), 403,
                  "PolicyNotAuthorized")
    neutron_error(w.a.post("/routers", json={"router": {"name": "x", "routes": []}}), 400, "HTTPBadRequest",
                  "Attribute 'routes' not allowed in POST")
    # The admin may: SNAT off and a chosen address, both shown back to the member.
    wanted = "198.51.100.150"
    set_by_admin = ok(w.adm.put(f"/routers/{rid}", json={"router": {"external_gateway_info": {
        "network_id": w.ext_net["id"], "enable_snat": False,
        "external_fixed_ips": [{"ip_address": wanted}]}}}), "router")
    assert set(set_by_admin) == ROUTER_KEYS
    assert set_by_admin["ha"] is False and set_by_admin["distributed"] is False
    seen = ok(w.a.get(f"/routers/{rid}"), "router")
    assert set(seen) == ROUTER_KEYS - {"ha", "distributed"}
    assert seen["external_gateway_info"] == {"network_id": w.ext_net["id"], "enable_snat": False,
                                             "external_fixed_ips": [{"subnet_id": w.ext_subnet["id"],
                                                                     "ip_address": wanted}]}
    assert seen["revision_number"] > router["revision_number"]
    [gw_port] = ok(w.adm.get("/ports", params={"device_id": rid, "device_owner": "network:router_gateway"}),
                   "ports")
    assert gw_port["project_id"] == "" and gw_port["network_id"] == w.ext_net["id"]
    # The gateway port is the router's: invisible to the member, and not deletable directly.
    assert ok(w.a.get("/ports", params={"device_id": rid}), "ports") == []
    neutron_error(w.adm.delete(f"/ports/{gw_port['id']}"), 409, "ServicePortInUse")
    neutron_error(w.adm.put(f"/routers/{rid}", json={"router": {"external_gateway_info": {
        "network_id": w.ext_net["id"], "external_fixed_ips": [{"ip_address": "198.51.100.1"}]}}}),
        400, "BadRequest", "Bad router request: External IP 198.51.100.1 is the same as the gateway IP.")
    cleared = ok(w.a.put(f"/routers/{rid}", json={"router": {"external_gateway_info": {}}}), "router")
    assert cleared["external_gateway_info"] is None
    assert ok(w.adm.get("/ports", params={"device_id": rid}), "ports") == []


def test_gateway_is_readdressed_in_place_and_new_external_subnets_follow_neutron(clean: World) -> None:
    """New addresses on the same network keep the gateway port (Neutron updates it in place). A subnet
    added to the external network later gives existing gateways an address only where Neutron does:
    IPv6 (stateful: while the port has no stateful IPv6 address; SLAAC: always), not plain IPv4."""
    w = clean
    ext = created(w.adm.post("/networks", json={"network": {"name": unique("gw-ext"), "router:external": True}}),
                  "network")
    rid = ""
    try:
        v4 = created(w.adm.post("/subnets", json={"subnet": {
            "network_id": ext["id"], "cidr": "203.0.113.0/24", "ip_version": 4, "enable_dhcp": False}}), "subnet")
        rid = make_router(w.a, ext["id"])["id"]

        def gateway_port() -> dict[str, Any]:
            [port] = ok(w.adm.get("/ports", params={"device_id": rid, "device_owner": "network:router_gateway"}),
                        "ports")
            return dict(port)

        def set_gateway(*fixed_ips: dict[str, str]) -> httpx.Response:
            return w.adm.put(f"/routers/{rid}", json={"router": {"external_gateway_info": {
                "network_id": ext["id"], "external_fixed_ips": list(fixed_ips)}}})

        before = gateway_port()
        [first] = before["fixed_ips"]
        # Somewhere the random first address is not (else the move would be no move at all).
        target = "203.0.113.77" if first["ip_address"] != "203.0.113.77" else "203.0.113.78"
        moved = ok(set_gateway({"ip_address": target}), "router")
        assert moved["external_gateway_info"]["external_fixed_ips"] == [
            {"subnet_id": v4["id"], "ip_address": target}]
        after = gateway_port()
        assert after["id"] == before["id"] and after["mac_address"] == before["mac_address"]
        assert after["fixed_ips"] == [{"subnet_id": v4["id"], "ip_address": target}]
        # The old address is free again; an address another port holds is refused, nothing changes.
        holder = created(w.adm.post("/ports", json={"port": {"network_id": ext["id"], "fixed_ips": [
            {"ip_address": first["ip_address"]}]}}), "port")
        neutron_error(set_gateway({"ip_address": first["ip_address"]}), 409, "IpAddressAlreadyAllocated")
        assert gateway_port()["fixed_ips"] == after["fixed_ips"]
        w.adm.delete(f"/ports/{holder['id']}")

        def add_subnet_to_ext(cidr: str, version: int, **extra: Any) -> dict[str, Any]:
            return dict(created(w.adm.post("/subnets", json={"subnet": {
                "network_id": ext["id"], "cidr": cidr, "ip_version": version, "enable_dhcp": False, **extra}}),
                "subnet"))

        # A second IPv4 subnet: Neutron gives existing gateways nothing from it.
        v4b = add_subnet_to_ext("192.0.2.0/24", 4)
        assert gateway_port()["fixed_ips"] == after["fixed_ips"]
        # A stateful IPv6 subnet: the gateway has no IPv6 address, so it gets one.
        v6 = add_subnet_to_ext("2001:db8:77::/64", 6)
        with_v6 = gateway_port()["fixed_ips"]
        assert [ip["subnet_id"] for ip in with_v6] == [v4["id"], v6["id"]]
        assert ipaddress.ip_address(with_v6[1]["ip_address"]) in ipaddress.ip_network("2001:db8:77::/64")
        shown = ok(w.a.get(f"/routers/{rid}"), "router")["external_gateway_info"]["external_fixed_ips"]
        assert shown == with_v6
        # A second stateful IPv6 subnet: it has one of each family already, so nothing.
        add_subnet_to_ext("2001:db8:78::/64", 6)
        assert gateway_port()["fixed_ips"] == with_v6
        # SLAAC: every port but router interfaces autoconfigures, gateways included (EUI-64).
        slaac = add_subnet_to_ext("2001:db8:79::/64", 6, enable_dhcp=True, ipv6_ra_mode="slaac",
                                  ipv6_address_mode="slaac")
        port = gateway_port()
        eui64 = [ip for ip in port["fixed_ips"] if ip["subnet_id"] == slaac["id"]]
        assert len(port["fixed_ips"]) == 3 and len(eui64) == 1
        mac = int(port["mac_address"].replace(":", ""), 16)
        interface_id = ((mac >> 24) << 40 | 0xFFFE << 24 | (mac & 0xFFFFFF)) ^ (1 << 57)
        assert int(ipaddress.ip_address(eui64[0]["ip_address"])) & (2**64 - 1) == interface_id
        assert v4b["id"] not in {ip["subnet_id"] for ip in port["fixed_ips"]}
    finally:
        if rid:
            w.adm.delete(f"/routers/{rid}")
        w.adm.delete(f"/networks/{ext['id']}")


def test_interface_rules_by_subnet_and_by_port(clean: World) -> None:
    w = clean
    net, sub = make_net(w.a, "10.84.0.0/24")
    _, overlapping = make_net(w.a, "10.84.0.0/25")
    _, no_gateway = make_net(w.a, "10.85.0.0/24", gateway_ip=None)
    net_taken, taken = make_net(w.a, "10.86.0.0/24")
    router = make_router(w.a, w.ext_net["id"])
    rid = router["id"]
    info = add_subnet(w.a, rid, sub["id"])
    assert set(info) == {"id", "project_id", "port_id", "network_id", "subnet_id", "subnet_ids"}
    assert (info["id"], info["subnet_ids"], info["project_id"]) == (rid, [sub["id"]], w.member.project_id)
    assert ok(w.a.get(f"/routers/{rid}"), "router")["revision_number"] > router["revision_number"]
    put = w.a.put
    neutron_error(put(f"/routers/{rid}/add_router_interface", json={"subnet_id": sub["id"]}), 400, "BadRequest",
                  f"Bad router request: Router already has a port on subnet {sub['id']}.")
    msg = neutron_error(put(f"/routers/{rid}/add_router_interface", json={"subnet_id": overlapping["id"]}), 400,
                        "BadRequest")
    assert "overlaps with cidr 10.84.0.0/24" in msg
    neutron_error(put(f"/routers/{rid}/add_router_interface", json={"subnet_id": no_gateway["id"]}), 400,
                  "BadRequest", "Bad router request: Subnet for router interface must have a gateway IP.")
    neutron_error(put(f"/routers/{rid}/add_router_interface", json={}), 400, "BadRequest",
                  "Bad router request: Either subnet_id or port_id must be specified.")
    neutron_error(put(f"/routers/{rid}/add_router_interface", json={"subnet_id": sub["id"], "port_id": sub["id"]}),
                  400, "BadRequest", "Bad router request: Cannot specify both subnet-id and port-id.")
    # Someone holds the subnet's gateway address already.
    created(w.a.post("/ports", json={"port": {"network_id": net_taken["id"],
                                              "fixed_ips": [{"ip_address": "10.86.0.1"}]}}), "port")
    neutron_error(put(f"/routers/{rid}/add_router_interface", json={"subnet_id": taken["id"]}), 409,
                  "IpAddressAlreadyAllocated")
    # By port: a port already in use by a device cannot be plugged; a free one can.
    busy = created(w.a.post("/ports", json={"port": {"network_id": net_taken["id"], "device_id": "vm-1"}}), "port")
    neutron_error(put(f"/routers/{rid}/add_router_interface", json={"port_id": busy["id"]}), 409, "PortInUse")
    free = created(w.a.post("/ports", json={"port": {"network_id": net_taken["id"]}}), "port")
    by_port = ok(put(f"/routers/{rid}/add_router_interface", json={"port_id": free["id"]}))
    assert (by_port["port_id"], by_port["subnet_ids"]) == (free["id"], [taken["id"]])
    plugged = ok(w.a.get(f"/ports/{free['id']}"), "port")
    assert (plugged["device_owner"], plugged["device_id"]) == ("network:router_interface", rid)
    # Attached things block deletes, with Neutron's types.
    neutron_error(w.a.delete(f"/routers/{rid}"), 409, "RouterInUse")
    neutron_error(w.a.delete(f"/subnets/{sub['id']}"), 409, "SubnetInUse")
    neutron_error(w.a.delete(f"/ports/{info['port_id']}"), 409, "ServicePortInUse")
    neutron_error(w.a.put(f"/ports/{info['port_id']}", json={"port": {"fixed_ips": [{"ip_address": "10.84.0.9"}]}}),
                  400, "IPAddressChangeNotAllowed")
    # Removal: unknown port / subnet not attached are 404s; a good removal deletes the port.
    neutron_error(put(f"/routers/{rid}/remove_router_interface", json={"port_id": busy["id"]}), 404,
                  "RouterInterfaceNotFound")
    neutron_error(put(f"/routers/{rid}/remove_router_interface", json={"subnet_id": overlapping["id"]}), 404,
                  "RouterInterfaceNotFoundForSubnet")
    neutron_error(put(f"/routers/{rid}/remove_router_interface", json={"port_id": free["id"],
                                                                        "subnet_id": sub["id"]}),
                  400, "SubnetMismatchForPort")
    removed = ok(put(f"/routers/{rid}/remove_router_interface", json={"subnet_id": sub["id"]}))
    assert (removed["port_id"], removed["subnet_id"]) == (info["port_id"], sub["id"])
    neutron_error(w.a.get(f"/ports/{info['port_id']}"), 404, "PortNotFound")
    ok(put(f"/routers/{rid}/remove_router_interface", json={"port_id": free["id"]}))
    assert w.a.delete(f"/routers/{rid}").status_code == 204
    neutron_error(w.a.get(f"/routers/{rid}"), 404, "RouterNotFound")


def test_routes_need_a_connected_nexthop_and_keep_their_interface(clean: World) -> None:
    w = clean
    net, sub = make_net(w.a, "10.87.0.0/24")
    router = make_router(w.a)
    rid = router["id"]
    add_subnet(w.a, rid, sub["id"])
    route = {"destination": "172.20.0.0/16", "nexthop": "10.87.0.20"}
    body = ok(w.a.put(f"/routers/{rid}/add_extraroutes", json={"router": {"routes": [route]}}), "router")
    assert body["routes"] == [route] and "ha" not in body
    again = ok(w.a.put(f"/routers/{rid}/add_extraroutes", json={"router": {"routes": [route]}}), "router")
    assert again["routes"] == [route]
    msg = neutron_error(w.a.put(f"/routers/{rid}", json={"router": {"routes": [
        {"destination": "172.21.0.0/16", "nexthop": "10.99.0.1"}]}}), 400, "InvalidRoutes")
    assert msg.endswith("the nexthop is not connected with router")
    neutron_error(w.a.put(f"/routers/{rid}", json={"router": {"routes": [
        {"destination": "172.21.0.0/16", "nexthop": "10.87.0.1"}]}}), 400, "InvalidRoutes")
    neutron_error(w.a.put(f"/routers/{rid}", json={"router": {"routes": [
        {"destination": "172.21.0.1/16", "nexthop": "10.87.0.20"}]}}), 400, "HTTPBadRequest")
    neutron_error(w.a.put(f"/routers/{rid}/remove_router_interface", json={"subnet_id": sub["id"]}), 409,
                  "RouterInterfaceInUseByRoute")
    emptied = ok(w.a.put(f"/routers/{rid}/remove_extraroutes", json={"router": {"routes": [
        route, {"destination": "10.0.0.0/8", "nexthop": "10.87.0.3"}]}}), "router")
    assert emptied["routes"] == []
    ok(w.a.put(f"/routers/{rid}/remove_router_interface", json={"subnet_id": sub["id"]}))


# ---- floating IPs ----------------------------------------------------------------------------------


def test_floating_ip_association_rules(clean: World) -> None:
    w = clean
    fabric = wired(w, "10.88.0.0/24")
    lonely_net, _ = make_net(w.a, "10.89.0.0/24")
    lonely = make_port(w.a, lonely_net["id"])
    ext = w.ext_net["id"]
    post = w.a.post
    neutron_error(post("/floatingips", json={"floatingip": {"floating_network_id": fabric.net["id"]}}), 400,
                  "BadRequest", f"Bad floatingip request: Network {fabric.net['id']} is not a valid external network.")
    neutron_error(post("/floatingips", json={"floatingip": {"floating_network_id": ext,
                                                            "floating_ip_address": "198.51.100.77"}}),
                  403, "PolicyNotAuthorized", "create_floatingip is disallowed by policy")
    neutron_error(post("/floatingips", json={"floatingip": {"floating_network_id": ext, "port_id": lonely["id"]}}),
                  404, "ExternalGatewayForFloatingIPNotFound")
    fip = created(post("/floatingips", json={"floatingip": {"floating_network_id": ext,
                                                            "port_id": fabric.port["id"]}}), "floatingip")
    assert set(fip) == FIP_KEYS
    assert (fip["router_id"], fip["fixed_ip_address"], fip["status"]) == \
        (fabric.router["id"], fabric.port["fixed_ips"][0]["ip_address"], "DOWN")
    assert set(fip["port_details"]) == {"name", "network_id", "mac_address", "admin_state_up", "status",
                                        "device_id", "device_owner"}
    [fip_port] = ok(w.adm.get("/ports", params={"device_id": fip["id"]}), "ports")
    assert (fip_port["device_owner"], fip_port["project_id"], fip_port["status"]) == \
        ("network:floatingip", "", "N/A")
    second = created(post("/floatingips", json={"floatingip": {"floating_network_id": ext}}), "floatingip")
    neutron_error(w.a.put(f"/floatingips/{second['id']}", json={"floatingip": {"port_id": fabric.port["id"]}}),
                  409, "FloatingIPPortAlreadyAssociated")
    neutron_error(w.a.put(f"/floatingips/{second['id']}", json={"floatingip": {"fixed_ip_address": "10.88.0.5"}}),
                  400, "BadRequest", "Bad floatingip request: fixed_ip_address cannot be specified without a port_id.")
    # The gateway and the interface the floating IP goes through stay while it is associated.
    neutron_error(w.a.put(f"/routers/{fabric.router['id']}", json={"router": {"external_gateway_info": None}}),
                  409, "RouterExternalGatewayInUseByFloatingIp")
    neutron_error(w.a.put(f"/routers/{fabric.router['id']}/remove_router_interface",
                          json={"subnet_id": fabric.subnet["id"]}), 409, "RouterInterfaceInUseByFloatingIP")
    # A description update keeps the association; an empty update (the oldest clients' way) clears it.
    described = ok(w.a.put(f"/floatingips/{fip['id']}", json={"floatingip": {"description": "d2"}}), "floatingip")
    assert (described["description"], described["port_id"]) == ("d2", fabric.port["id"])
    freed = ok(w.a.put(f"/floatingips/{fip['id']}", json={"floatingip": {}}), "floatingip")
    assert (freed["port_id"], freed["fixed_ip_address"], freed["router_id"], freed["port_details"]) == \
        (None, None, None, None)
    assert (freed["description"], freed["revision_number"] > described["revision_number"]) == ("d2", True)
    # Disassociate explicitly, and association through an update, then deleting the port disassociates.
    ok(w.a.put(f"/floatingips/{fip['id']}", json={"floatingip": {"port_id": fabric.port["id"]}}))
    freed = ok(w.a.put(f"/floatingips/{fip['id']}", json={"floatingip": {"port_id": None}}), "floatingip")
    assert (freed["port_id"], freed["fixed_ip_address"], freed["router_id"], freed["port_details"]) == \
        (None, None, None, None)
    assert freed["revision_number"] > fip["revision_number"]
    moved = ok(w.a.put(f"/floatingips/{second['id']}", json={"floatingip": {"port_id": fabric.port["id"]}}),
               "floatingip")
    assert moved["router_id"] == fabric.router["id"]
    neutron_error(w.a.put(f"/ports/{fabric.port['id']}", json={"port": {"fixed_ips": [
        {"ip_address": "10.88.0.222"}]}}), 400, "BadRequest",
        f"Bad port request: Cannot update the fixed_ips of the port {fabric.port['id']}, because its original "
        "fixed_ip has been associated to a floating ip.")
    assert w.a.delete(f"/ports/{fabric.port['id']}").status_code == 204
    after = ok(w.a.get(f"/floatingips/{second['id']}"), "floatingip")
    assert (after["port_id"], after["fixed_ip_address"], after["router_id"]) == (None, None, None)
    listed = ok(w.a.get("/floatingips", params={"floating_network_id": ext}), "floatingips")
    assert {f["id"] for f in listed} == {fip["id"], second["id"]}
    assert w.a.delete(f"/floatingips/{fip['id']}").status_code == 204
    neutron_error(w.a.get(f"/floatingips/{fip['id']}"), 404, "FloatingIPNotFound")
    assert ok(w.adm.get("/ports", params={"device_id": fip["id"]}), "ports") == []
    pools = ok(w.a.get("/floatingip_pools"), "floatingip_pools")
    assert {"subnet_id": w.ext_subnet["id"], "subnet_name": w.ext_subnet["name"], "network_id": ext,
            "cidr": EXT_CIDR, "project_id": w.member.project_id} in pools


def test_port_forwarding_rules(clean: World) -> None:
    w = clean
    fabric = wired(w, "10.90.0.0/24")
    ext = w.ext_net["id"]
    fip = created(w.a.post("/floatingips", json={"floatingip": {"floating_network_id": ext}}), "floatingip")
    target_ip = fabric.port["fixed_ips"][0]["ip_address"]
    base = {"protocol": "tcp", "internal_port_id": fabric.port["id"], "internal_ip_address": target_ip}
    url = f"/floatingips/{fip['id']}/port_forwardings"
    ssh = created(w.a.post(url, json={"port_forwarding": {**base, "internal_port": 22, "external_port": 2022,
                                                          "description": "ssh"}}), "port_forwarding")
    assert (ssh["internal_port_range"], ssh["external_port_range"], ssh["description"]) == ("22:22", "2022:2022", "ssh")
    web = created(w.a.post(url, json={"port_forwarding": {**base, "internal_port_range": "8000:8009",
                                                          "external_port_range": "9000:9009"}}), "port_forwarding")
    assert (web["internal_port"], web["external_port"]) == (None, None)
    assert ok(w.a.get(f"/floatingips/{fip['id']}"), "floatingip")["router_id"] == fabric.router["id"]
    # The forwardings are the owner's to remove: the floating IP cannot go while it has any.
    neutron_error(w.a.delete(f"/floatingips/{fip['id']}"), 409, "FipInUseByPortForwarding",
                  f"Floating IP {fip['id']} in use by Port Forwarding resources.")
    assert ok(w.a.get(url), "port_forwardings")
    msg = neutron_error(w.a.post(url, json={"port_forwarding": {**base, "internal_port": 23,
                                                                "external_port": 2022}}), 400, "BadRequest")
    assert "port collision with the external_port_range" in msg
    neutron_error(w.a.post(url, json={"port_forwarding": {**base, "internal_port": 22, "external_port": 3022}}),
                  400, "BadRequest")
    neutron_error(w.a.post(url, json={"port_forwarding": {**base, "internal_port_range": "100:102",
                                                          "external_port_range": "100:110"}}), 400, "BadRequest")
    neutron_error(w.a.post(url, json={"port_forwarding": {**base, "internal_port": 22}}), 400, "BadRequest")
    neutron_error(w.a.post(url, json={"port_forwarding": {**base, "internal_ip_address": "10.90.0.250",
                                                          "internal_port": 80, "external_port": 80}}),
                  400, "BadRequest")
    # A floating IP with port forwardings cannot also be associated, and vice versa.
    neutron_error(w.a.put(f"/floatingips/{fip['id']}", json={"floatingip": {"port_id": fabric.port["id"]}}), 409,
                  "FipInUseByPortForwarding")
    other_port = make_port(w.a, fabric.net["id"])
    bound = created(w.a.post("/floatingips", json={"floatingip": {"floating_network_id": ext,
                                                                  "port_id": other_port["id"]}}), "floatingip")
    neutron_error(w.a.post(f"/floatingips/{bound['id']}/port_forwardings", json={"port_forwarding": {
        **base, "internal_port": 80, "external_port": 80}}), 409, "FloatingIPPortAlreadyAssociated")
    neutron_error(w.a.post(url, json={"port_forwarding": {
        **base, "internal_port_id": other_port["id"], "internal_ip_address": other_port["fixed_ips"][0]["ip_address"],
        "internal_port": 80, "external_port": 80}}), 409, "PortHasBindingFloatingIP")
    # Update, read back, delete; the last one gone frees the router.
    changed = ok(w.a.put(f"{url}/{ssh['id']}", json={"port_forwarding": {"external_port": 2222}}), "port_forwarding")
    assert (changed["external_port"], changed["internal_port"]) == (2222, 22)
    assert ok(w.a.get(f"{url}/{ssh['id']}"), "port_forwarding")["external_port_range"] == "2222:2222"
    assert [p["id"] for p in ok(w.a.get(url, params={"external_port": 2222}), "port_forwardings")] == [ssh["id"]]
    assert w.a.delete(f"{url}/{ssh['id']}").status_code == 204
    neutron_error(w.a.get(f"{url}/{ssh['id']}"), 404, "PortForwardingNotFound")
    assert ok(w.a.get(f"/floatingips/{fip['id']}"), "floatingip")["router_id"] == fabric.router["id"]
    # The internal address going away takes its port forwardings with it.
    ok(w.a.put(f"/ports/{fabric.port['id']}", json={"port": {"fixed_ips": [{"ip_address": "10.90.0.222"}]}}))
    assert ok(w.a.get(url), "port_forwardings") == []
    assert ok(w.a.get(f"/floatingips/{fip['id']}"), "floatingip")["router_id"] is None


# ---- isolation and quotas ------------------------------------------------------------------------


def test_other_projects_routers_and_floating_ips_do_not_exist_for_a_member(clean: World) -> None:
    w = clean
    fabric = wired(w, "10.91.0.0/24")
    fip = created(w.a.post("/floatingips", json={"floatingip": {"floating_network_id": w.ext_net["id"]}}),
                  "floatingip")
    rid, b = fabric.router["id"], w.b
    neutron_error(b.get(f"/routers/{rid}"), 404, "RouterNotFound")
    neutron_error(b.put(f"/routers/{rid}", json={"router": {"name": "stolen"}}), 404, "RouterNotFound")
    neutron_error(b.delete(f"/routers/{rid}"), 404, "RouterNotFound")
    neutron_error(b.put(f"/routers/{rid}/add_router_interface", json={"subnet_id": fabric.subnet["id"]}), 404,
                  "RouterNotFound")
    assert ok(b.get("/routers", params={"id": rid}), "routers") == []
    neutron_error(b.get(f"/floatingips/{fip['id']}"), 404, "FloatingIPNotFound")
    neutron_error(b.put(f"/floatingips/{fip['id']}", json={"floatingip": {"port_id": None}}), 404,
                  "FloatingIPNotFound")
    neutron_error(b.get(f"/floatingips/{fip['id']}/port_forwardings"), 404, "FloatingIPNotFound")
    assert ok(b.get("/floatingips"), "floatingips") == []
    # Nor can A's subnet or port be used from B's own router or floating IP.
    own_router = make_router(b, w.ext_net["id"])
    neutron_error(b.put(f"/routers/{own_router['id']}/add_router_interface", json={"subnet_id": fabric.subnet["id"]}),
                  404, "SubnetNotFound")
    neutron_error(b.post("/floatingips", json={"floatingip": {"floating_network_id": w.ext_net["id"],
                                                              "port_id": fabric.port["id"]}}), 404, "PortNotFound")
    # Tags work on routers and floating IPs, for their owner.
    assert w.a.put(f"/routers/{rid}/tags/blue").status_code == 201
    assert w.a.put(f"/floatingips/{fip['id']}/tags", json={"tags": ["red"]}).status_code == 200
    assert [r["id"] for r in ok(w.a.get("/routers", params={"tags": "blue"}), "routers")] == [rid]
    assert ok(w.a.get(f"/floatingips/{fip['id']}"), "floatingip")["tags"] == ["red"]
    neutron_error(b.get(f"/routers/{rid}/tags"), 404, "TagResourceNotFound")


def test_router_and_floating_ip_quotas(clean: World) -> None:
    w = clean
    pid = w.other.project_id
    ok(w.adm.put(f"/quotas/{pid}", json={"quota": {"router": 1, "floatingip": 1}}))
    try:
        make_router(w.b)
        neutron_error(w.b.post("/routers", json={"router": {"name": "two"}}), 409, "OverQuota",
                      "Quota exceeded for resources: ['router'].")
        created(w.b.post("/floatingips", json={"floatingip": {"floating_network_id": w.ext_net["id"]}}),
                "floatingip")
        neutron_error(w.b.post("/floatingips", json={"floatingip": {"floating_network_id": w.ext_net["id"]}}), 409,
                      "OverQuota", "Quota exceeded for resources: ['floatingip'].")
        details = ok(w.b.get(f"/quotas/{pid}/details"), "quota")
        assert details["router"] == {"limit": 1, "used": 1, "reserved": 0}
        assert details["floatingip"] == {"limit": 1, "used": 1, "reserved": 0}
        # The floating IP's own port has no project: it counts against nobody's port quota.
        assert details["port"]["used"] == 0
    finally:
        w.adm.delete(f"/quotas/{pid}")


def test_extensions_advertise_the_l3_aliases_that_are_implemented(world: World) -> None:
    aliases = {e["alias"] for e in ok(world.a.get("/extensions"), "extensions")}
    assert {"router", "ext-gw-mode", "extraroute", "extraroute-atomic", "fip-port-details", "floatingip-pools",
            "floating-ip-port-forwarding", "l3-port-ip-change-not-allowed", "router_availability_zone", "l3-ha",
            "router-admin-state-down-before-update"} <= aliases
    assert {"dvr", "l3-flavors", "qos-fip", "qos-gateway-ip", "floating-ip-router-writable"} <= aliases
