"""Error responses match the ones captured from a real Neutron (shared/spec/neutron-examples).

Captures 29–48 are replayed against our server with their ids swapped for objects made here (a
network with subnet 192.168.10.0/24 and two ports, one holding 192.168.10.50), as the admin the
captures used; status and the whole NeutronError body must match. A few more error cases the
captures do not cover are checked the same way.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.neutron_http import created, neutron_error
from tests.support.tenants import Persona

# Copies of the captures (shared/spec/neutron-examples) the replay needs, kept with the tests.
EXAMPLES = Path(__file__).parent / "neutron_examples"
CAPTURED = {
    "network": "6435c920-f18e-42b6-98a3-26282eb4400e",
    "subnet": "d1e9fb43-bb3d-4e66-9d9b-29739096e148",
    "port": "c6ba2f9d-c4cc-4a79-b125-28efe3f10528",
    "mac": "fa:16:3e:c4:49:af",
}
NETWORK_IN_USE = "34-error-409-network-in-use-delete.json"


def replayed_examples() -> list[Path]:
    files = [f for f in sorted(EXAMPLES.glob("[0-9][0-9]-*.json")) if 29 <= int(f.name[:2]) <= 48]
    assert len(files) == 20, f"captures 29-48 missing from {EXAMPLES}"
    return files


@dataclass
class Scene:
    """The captures' world, rebuilt: ids to substitute and the ports on the network."""

    substitutions: dict[str, str]
    port_ids: list[str]


@pytest.fixture(scope="module")
def scene(adm: httpx.Client, admin: Persona) -> Iterator[Scene]:
    net = created(adm.post("/networks", json={"network": {"name": f"errors-{uuid.uuid4().hex[:8]}"}}), "network")
    try:
        subnet = created(adm.post("/subnets", json={"subnet": {
            "network_id": net["id"], "ip_version": 4, "cidr": "192.168.10.0/24"}}), "subnet")
        # The fixed address first: the other port's address is chosen at random and may be .50.
        holder = created(adm.post("/ports", json={"port": {"network_id": net["id"], "fixed_ips": [
            {"subnet_id": subnet["id"], "ip_address": "192.168.10.50"}]}}), "port")
        port = created(adm.post("/ports", json={"port": {"network_id": net["id"], "device_id": "ex-device-1"}}),
                       "port")
        yield Scene({CAPTURED["network"]: net["id"], CAPTURED["subnet"]: subnet["id"],
                     CAPTURED["port"]: port["id"], CAPTURED["mac"]: port["mac_address"],
                     '"examples"': json.dumps(admin.project_id)},
                    [port["id"], holder["id"]])
    finally:
        for port in adm.get("/ports", params={"network_id": net["id"]}).json()["ports"]:
            adm.delete(f"/ports/{port['id']}")
        adm.delete(f"/networks/{net['id']}")


def substituted(text: str, substitutions: dict[str, str]) -> Any:
    for captured, ours in substitutions.items():
        text = text.replace(captured, ours)
    return json.loads(text)


@pytest.mark.parametrize("example", replayed_examples(), ids=lambda p: p.stem)
def test_error_matches_neutron_capture(example: Path, adm: httpx.Client, scene: Scene) -> None:
    capture = substituted(example.read_text(), scene.substitutions)
    request, expected = capture["request"], capture["response"]
    body = request["body"]
    content = body if isinstance(body, str) else None if body is None else json.dumps(body)
    path = request["path"].removeprefix("/v2.0")
    resp = adm.request(request["method"], path, params=request["query"], content=content,
                       headers={"Content-Type": "application/json"})
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["x-openstack-request-id"].startswith("req-")
    if example.name == NETWORK_IN_USE:
        # The capture lists its own ports; ours are the scene's, in no promised order.
        message = neutron_error(resp, 409, "NetworkInUse")
        prefix, _, ids = message.partition("id for these ports is: ")
        assert prefix == expected["body"]["NeutronError"]["message"].partition("id for these ports is: ")[0]
        assert sorted(ids.removesuffix(".").split(",")) == sorted(scene.port_ids)
        return
    assert (resp.status_code, resp.json()) == (expected["status"], expected["body"])


# ---- cases the captures do not cover ---------------------------------------------------------------


def test_delete_with_a_body_is_refused(adm: httpx.Client, scene: Scene) -> None:
    resp = adm.request("DELETE", f"/ports/{scene.port_ids[0]}", content=b'{"port": {}}')
    neutron_error(resp, 400, "HTTPBadRequest", "Request body is not supported in DELETE.")
    assert adm.get(f"/ports/{scene.port_ids[0]}").status_code == 200


def test_put_or_delete_on_a_collection_is_not_found(adm: httpx.Client) -> None:
    neutron_error(adm.put("/ports", json={"port": {"name": "x"}}), 404, "PortNotFound",
                  "Port None could not be found.")
    neutron_error(adm.delete("/subnets"), 404, "SubnetNotFound", "Subnet None could not be found.")


def test_request_body_shape_errors(adm: httpx.Client, scene: Scene) -> None:
    network_id = scene.substitutions[CAPTURED["network"]]
    neutron_error(adm.post("/networks", content=b"[1, 2]"), 400, "HTTPBadRequest", "Body contains invalid data")
    neutron_error(adm.post("/networks", json={"network": "x"}), 400, "HTTPBadRequest",
                  "Object 'network' contains invalid data")
    neutron_error(adm.put(f"/networks/{network_id}", content=b"{"), 400, "HTTPBadRequest",
                  "Body contains invalid data")
    neutron_error(adm.put(f"/networks/{network_id}", json={"net": {}}), 400, "HTTPBadRequest",
                  "Unable to find 'network' in request body")
    neutron_error(adm.put(f"/networks/{network_id}", json={"network": {"bogus": 1, "other": 2}}), 400,
                  "HTTPBadRequest", "Unrecognized attribute(s) 'bogus, other'")
    neutron_error(adm.put(f"/subnets/{scene.substitutions[CAPTURED['subnet']]}", json={"subnet": {"cidr": "10.0.0.0/24"}}),
                  400, "HTTPBadRequest", "Cannot update read-only attribute cidr")
    neutron_error(adm.post("/networks", json={"network": {"status": "DOWN"}}), 400, "HTTPBadRequest",
                  "Attribute 'status' not allowed in POST")
    neutron_error(adm.post("/subnets", json={"subnet": {"network_id": network_id, "cidr": "10.0.0.0/24"}}), 400,
                  "HTTPBadRequest", "Failed to parse request. Required attribute 'ip_version' not specified")
    neutron_error(adm.post("/networks", json={"network": {"project_id": "a", "tenant_id": "b"}}), 400,
                  "HTTPBadRequest", "'project_id' and 'tenant_id' do not match")


def test_subnet_in_use_and_address_errors(adm: httpx.Client, scene: Scene) -> None:
    network_id = scene.substitutions[CAPTURED["network"]]
    subnet_id = scene.substitutions[CAPTURED["subnet"]]
    neutron_error(adm.delete(f"/subnets/{subnet_id}"), 409, "SubnetInUse",
                  f"Unable to complete operation on subnet {subnet_id}: One or more ports have an IP allocation "
                  "from this subnet.")
    neutron_error(adm.post("/ports", json={"port": {"network_id": network_id, "fixed_ips": [
        {"ip_address": "192.168.10.50"}]}}), 409, "IpAddressAlreadyAllocated",
        f"IP address 192.168.10.50 already allocated in subnet {subnet_id}")
    neutron_error(adm.post("/ports", json={"port": {"network_id": network_id, "fixed_ips": [
        {"ip_address": "172.16.0.9"}]}}), 400, "InvalidIpForNetwork",
        "IP address 172.16.0.9 is not a valid IP for any of the subnets on the specified network.")
    neutron_error(adm.post("/subnets", json={"subnet": {"network_id": network_id, "ip_version": 4,
                                                        "cidr": "192.168.10.64/26"}}), 400, "InvalidInput",
                  f"Invalid input for operation: Requested subnet with cidr: 192.168.10.64/26 for network: "
                  f"{network_id} overlaps with another subnet.")
    neutron_error(adm.post("/subnets", json={"subnet": {"network_id": network_id, "ip_version": 4,
                                                        "cidr": "10.0.0.0/8/8"}}), 400, "InvalidInput",
                  "Invalid input for operation: 10.0.0.0/8/8 is not in a CIDR format.")
    neutron_error(adm.post("/ports", json={"port": {"network_id": network_id, "mac_address": "not-a-mac"}}), 400,
                  "HTTPBadRequest", "Invalid input for mac_address. Reason: 'not-a-mac' is not a valid MAC address.")
