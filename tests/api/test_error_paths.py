"""Error paths nothing else reaches, through the real API: status, NeutronError type, and nothing changed.

Each test puts the server in the state that makes an operation illegal, asks for it over raw HTTP
(openstacksdk would hide the body), checks the exact status and error type Neutron answers with,
then reads the objects back to prove the refused request left them as they were.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.live_server import LiveServer, start_server
from tests.support.neutron_http import api, created, neutron_error, ok
from tests.support.tenants import IdentityAdmin, Persona, cloud_persona


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def member(live_server: LiveServer) -> Iterator[Persona]:
    identity = IdentityAdmin(live_server)
    persona = identity.persona("member", prefix="errpath")
    try:
        yield persona
    finally:
        identity.delete_user(persona.user_id)
        identity.delete_project(persona.project_id)
        identity.close()


@pytest.fixture(scope="module")
def mem(live_server: LiveServer, member: Persona) -> Iterator[httpx.Client]:
    with api(live_server, member) as client:
        yield client


def network(client: httpx.Client, **attrs: Any) -> dict[str, Any]:
    return created(client.post("/networks", json={"network": {"name": unique("errpath"), **attrs}}), "network")


def subnet(client: httpx.Client, network_id: str, cidr: str, **attrs: Any) -> dict[str, Any]:
    version = 6 if ":" in cidr else 4
    return created(client.post("/subnets", json={"subnet": {
        "network_id": network_id, "cidr": cidr, "ip_version": version, **attrs}}), "subnet")


def test_unsharing_a_network_another_project_uses_is_refused(adm: httpx.Client, mem: httpx.Client) -> None:
    net = network(adm, shared=True)
    subnet(adm, net["id"], "10.91.0.0/24")
    theirs = created(mem.post("/ports", json={"port": {"network_id": net["id"]}}), "port")

    refused = adm.put(f"/networks/{net['id']}", json={"network": {"shared": False}})

    neutron_error(refused, 409, "InvalidSharedSetting",
                  f"Unable to reconfigure sharing settings for network {net['name']}. Multiple tenants are using it.")
    assert ok(adm.get(f"/networks/{net['id']}"), "network")["shared"] is True
    assert ok(mem.get(f"/networks/{net['id']}"), "network")["shared"] is True  # the member still sees it
    assert ok(mem.get(f"/ports/{theirs['id']}"), "port")["network_id"] == net["id"]
    mem.delete(f"/ports/{theirs['id']}")
    assert adm.put(f"/networks/{net['id']}", json={"network": {"shared": False}}).status_code == 200


def test_an_external_network_with_a_gateway_stays_external(adm: httpx.Client) -> None:
    ext = network(adm, **{"router:external": True})
    subnet(adm, ext["id"], "198.51.77.0/24")
    router = created(adm.post("/routers", json={"router": {
        "name": unique("errpath"), "external_gateway_info": {"network_id": ext["id"]}}}), "router")

    refused = adm.put(f"/networks/{ext['id']}", json={"network": {"router:external": False}})

    neutron_error(refused, 409, "ExternalNetworkInUse",
                  f"External network {ext['id']} cannot be updated to be made non-external, "
                  f"since it has existing gateway ports.")
    assert ok(adm.get(f"/networks/{ext['id']}"), "network")["router:external"] is True
    gateway = ok(adm.get(f"/routers/{router['id']}"), "router")["external_gateway_info"]
    assert gateway["network_id"] == ext["id"]
    adm.delete(f"/routers/{router['id']}")


def test_address_pairs_need_port_security(mem: httpx.Client) -> None:
    net = network(mem)
    subnet(mem, net["id"], "10.92.0.0/24")
    pairs = [{"ip_address": "10.92.0.200"}]

    refused = mem.post("/ports", json={"port": {"network_id": net["id"], "port_security_enabled": False,
                                                "allowed_address_pairs": pairs}})
    neutron_error(refused, 409, "AddressPairAndPortSecurityRequired",
                  "Port Security must be enabled in order to have allowed address pairs on a port.")
    assert ok(mem.get("/ports", params={"network_id": net["id"]}), "ports") == []

    port = created(mem.post("/ports", json={"port": {"network_id": net["id"], "allowed_address_pairs": pairs}}),
                   "port")
    refused = mem.put(f"/ports/{port['id']}", json={"port": {"port_security_enabled": False}})
    neutron_error(refused, 409, "AddressPairAndPortSecurityRequired")
    after = ok(mem.get(f"/ports/{port['id']}"), "port")
    assert after["port_security_enabled"] is True
    assert after["allowed_address_pairs"] == port["allowed_address_pairs"]
    assert after["revision_number"] == port["revision_number"]


def test_the_mac_of_a_bound_port_cannot_change(live_server: LiveServer, adm: httpx.Client) -> None:
    # A local network binds on any host with an alive Linux bridge agent: neutrino up's own.
    net = network(adm, **{"provider:network_type": "local"})
    subnet(adm, net["id"], "10.93.0.0/24")
    port = created(adm.post("/ports", json={"port": {"network_id": net["id"],
                                                     "binding:host_id": live_server.agent_host}}), "port")
    assert port["binding:vif_type"] == "bridge", port
    new_mac = "fa:16:3e:00:93:01"

    refused = adm.put(f"/ports/{port['id']}", json={"port": {"mac_address": new_mac}})

    neutron_error(refused, 409, "PortBound",
                  f"Unable to complete operation on port {port['id']}, port is already bound, port type: bridge, "
                  f"old_mac {port['mac_address']}, new_mac {new_mac}.")
    after = ok(adm.get(f"/ports/{port['id']}"), "port")
    assert (after["mac_address"], after["revision_number"]) == (port["mac_address"], port["revision_number"])
    adm.delete(f"/ports/{port['id']}")


def test_a_second_flat_network_on_one_physical_network_is_refused(adm: httpx.Client) -> None:
    physnet = unique("flat")
    first = network(adm, **{"provider:network_type": "flat", "provider:physical_network": physnet})
    name = unique("errpath")

    refused = adm.post("/networks", json={"network": {"name": name, "provider:network_type": "flat",
                                                      "provider:physical_network": physnet}})

    neutron_error(refused, 409, "FlatNetworkInUse",
                  f"Unable to create the flat network. Physical network {physnet} is in use.")
    assert ok(adm.get("/networks", params={"name": name}), "networks") == []
    assert ok(adm.get(f"/networks/{first['id']}"), "network")["provider:physical_network"] == physnet
    adm.delete(f"/networks/{first['id']}")


def test_the_same_rbac_policy_twice_is_refused(adm: httpx.Client, member: Persona) -> None:
    net = network(adm)
    policy = {"object_type": "network", "object_id": net["id"], "action": "access_as_shared",
              "target_tenant": member.project_id}
    first = created(adm.post("/rbac-policies", json={"rbac_policy": policy}), "rbac_policy")

    refused = adm.post("/rbac-policies", json={"rbac_policy": policy})

    neutron_error(refused, 409, "DuplicateRbacPolicy", "An RBAC policy already exists with those values.")
    listed = ok(adm.get("/rbac-policies", params={"object_id": net["id"]}), "rbac_policies")
    assert [p["id"] for p in listed] == [first["id"]]


def test_more_routes_than_the_maximum_are_refused(adm: httpx.Client) -> None:
    net = network(adm)
    sub = subnet(adm, net["id"], "10.94.0.0/24")
    router = created(adm.post("/routers", json={"router": {"name": unique("errpath")}}), "router")
    assert adm.put(f"/routers/{router['id']}/add_router_interface", json={"subnet_id": sub["id"]}).status_code == 200
    kept = [{"destination": "172.30.0.0/24", "nexthop": "10.94.0.10"}]
    before = ok(adm.put(f"/routers/{router['id']}", json={"router": {"routes": kept}}), "router")
    routes = [{"destination": f"172.31.{i}.0/24", "nexthop": "10.94.0.10"} for i in range(31)]

    refused = adm.put(f"/routers/{router['id']}", json={"router": {"routes": routes}})

    neutron_error(refused, 400, "RoutesExhausted",
                  f"Unable to complete operation for {router['id']}. The number of routes exceeds the maximum 30.")
    after = ok(adm.get(f"/routers/{router['id']}"), "router")
    assert (after["routes"], after["revision_number"]) == (kept, before["revision_number"])
    adm.put(f"/routers/{router['id']}", json={"router": {"routes": []}})
    adm.put(f"/routers/{router['id']}/remove_router_interface", json={"subnet_id": sub["id"]})
    adm.delete(f"/routers/{router['id']}")


def floating_ports(adm: httpx.Client, network_id: str) -> list[str]:
    ports = ok(adm.get("/ports", params={"network_id": network_id, "device_owner": "network:floatingip"}), "ports")
    return sorted(p["id"] for p in ports)


def test_a_floating_ip_without_an_ipv4_address_to_give_is_refused(adm: httpx.Client) -> None:
    # Neutron's two answers: the port finds no address at all (the IPv4 pool is used up): 409
    # IpAddressGenerationFailure from IPAM; the port gets addresses but no IPv4 one (the only IPv4
    # subnet serves router gateways alone, an IPv6 one serves anyone): 400 ExternalIpAddressExhausted.
    ext = network(adm, **{"router:external": True})
    subnet(adm, ext["id"], "198.51.78.0/30")  # .1 is the gateway: one address left
    first = created(adm.post("/floatingips", json={"floatingip": {"floating_network_id": ext["id"]}}),
                    "floatingip")
    assert first["floating_ip_address"] == "198.51.78.2"
    ports = floating_ports(adm, ext["id"])

    refused = adm.post("/floatingips", json={"floatingip": {"floating_network_id": ext["id"]}})

    neutron_error(refused, 409, "IpAddressGenerationFailure",
                  f"No more IP addresses available on network {ext['id']}.")
    listed = ok(adm.get("/floatingips", params={"floating_network_id": ext["id"]}), "floatingips")
    assert [f["id"] for f in listed] == [first["id"]]
    assert floating_ports(adm, ext["id"]) == ports
    adm.delete(f"/floatingips/{first['id']}")

    v6_only = network(adm, **{"router:external": True})
    subnet(adm, v6_only["id"], "198.51.79.0/24", service_types=["network:router_gateway"])
    subnet(adm, v6_only["id"], "fd00:79::/64")

    refused = adm.post("/floatingips", json={"floatingip": {"floating_network_id": v6_only["id"]}})

    neutron_error(refused, 400, "ExternalIpAddressExhausted",
                  f"Unable to find any IP address on external network {v6_only['id']}.")
    assert ok(adm.get("/floatingips", params={"floating_network_id": v6_only["id"]}), "floatingips") == []
    assert floating_ports(adm, v6_only["id"]) == []


def test_an_mtu_too_small_for_ipv6_is_refused_either_way(adm: httpx.Client) -> None:
    net = network(adm)
    v6 = subnet(adm, net["id"], "fd00:95::/64")
    before = ok(adm.get(f"/networks/{net['id']}"), "network")

    refused = adm.put(f"/networks/{net['id']}", json={"network": {"mtu": 1200}})

    neutron_error(refused, 409, "NetworkMTUSubnetConflict",
                  f"MTU of {net['id']} is not compatible with subnet {v6['id']}.")
    after = ok(adm.get(f"/networks/{net['id']}"), "network")
    assert (after["mtu"], after["revision_number"]) == (before["mtu"], before["revision_number"])

    # The other way round: an IPv6 subnet on a network whose MTU is below IPv6's minimum.
    small = network(adm, mtu=1200)
    refused = adm.post("/subnets", json={"subnet": {"network_id": small["id"], "cidr": "fd00:96::/64",
                                                    "ip_version": 6}})
    neutron_error(refused, 409, "NetworkMTUSubnetConflict")
    assert ok(adm.get(f"/networks/{small['id']}"), "network")["subnets"] == []


def test_vni_range_exhausted_answers_no_network_available(tmp_path: Path) -> None:
    server = start_server(tmp_path / "state", extra_config='[ml2]\nvni_ranges = ["4101:4102"]\n')
    try:
        with api(server, cloud_persona(server, "neutrino-demo")) as demo:
            made = [network(demo) for _ in range(2)]
            assert sorted(n["provider:segmentation_id"] for n in made if "provider:segmentation_id" in n) in (
                [], [4101, 4102])
            name = unique("errpath")

            refused = demo.post("/networks", json={"network": {"name": name}})

            neutron_error(refused, 503, "NoNetworkAvailable",
                          "Unable to create the network. No tenant network is available for allocation.")
            assert sorted(n["id"] for n in ok(demo.get("/networks"), "networks")) == sorted(n["id"] for n in made)
            # The range is what ran out: freeing one VNI lets the next network through.
            assert demo.delete(f"/networks/{made[0]['id']}").status_code == 204
            network(demo)
    finally:
        server.stop()


@pytest.mark.parametrize("collection,kind", [("floatingips", "FloatingIPNotFound"), ("networks", "NetworkNotFound"),
                                             ("ports", "PortNotFound")])
def test_an_id_that_is_a_newline_is_a_show_of_nothing_not_the_list(mem: httpx.Client, collection: str,
                                                                   kind: str) -> None:
    """``GET /v2.0/floatingips/%0A`` names an object whose id is a newline: 404, never the collection."""
    neutron_error(mem.get(f"/{collection}/%0A"), 404, kind)
    neutron_error(mem.put(f"/{collection}/%0A", json={collection[:-1]: {"description": "x"}}), 404, kind)
