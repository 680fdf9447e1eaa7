"""The one contract codec: records go on the wire in the shape docs/agent-contract.md describes."""

from __future__ import annotations

import json

import pytest

from neutrino.contract import codec
from neutrino.contract.events import ChangeHint
from neutrino.contract.l2 import FdbEntry, L2Network, L2Port, L2State, SegmentInfo
from neutrino.contract.l3 import FloatingIp, L3Router, L3State, RouterAddress, RouterPort

SEGMENT = SegmentInfo("vxlan", 1001, None)
PORT = L2Port(
    port_id="0f2a6c44-1111-4c1e-9d1d-3b2f0d0a0001", device="tap0f2a6c44-11", network_id="net-1",
    mac_address="fa:16:3e:00:00:01", fixed_ips=(("sub-1", "10.0.0.5"),), admin_state_up=True,
    device_owner="compute:nova", segment=SEGMENT, mtu=1450, security_group_ids=("sg-1",),
    allowed_address_pairs=(("10.0.0.0/24", "fa:16:3e:00:00:09"),), revision=4, status="DOWN",
)


def test_l2_state_has_the_contract_shape_and_round_trips() -> None:
    state = L2State("host-a", "192.0.2.1", ports=(PORT,), networks=(
        L2Network("net-1", SEGMENT, 1450, flood=("192.0.2.2",), fdb=(FdbEntry("fa:16:3e:00:00:02", None, "192.0.2.2"),)),
    ), generated_at=12.5, extra={"security_groups": {"sg-1": []}})
    wire = codec.encode(state)
    assert wire == {
        "host": "host-a", "role": "l2", "generated_at": 12.5, "tunneling_ip": "192.0.2.1",
        "ports": [{
            "port_id": PORT.port_id, "device": PORT.device, "network_id": "net-1", "mac_address": PORT.mac_address,
            "fixed_ips": [{"subnet_id": "sub-1", "ip_address": "10.0.0.5"}], "admin_state_up": True,
            "device_owner": "compute:nova",
            "segment": {"network_type": "vxlan", "segmentation_id": 1001, "physical_network": None},
            "mtu": 1450, "port_security_enabled": True, "security_group_ids": ["sg-1"],
            "allowed_address_pairs": [{"ip_address": "10.0.0.0/24", "mac_address": "fa:16:3e:00:00:09"}],
            "qos_policy_id": None, "revision": 4, "status": "DOWN",
        }],
        "networks": [{
            "network_id": "net-1", "mtu": 1450, "flood": ["192.0.2.2"],
            "segment": {"network_type": "vxlan", "segmentation_id": 1001, "physical_network": None},
            "fdb": [{"mac_address": "fa:16:3e:00:00:02", "ip_address": None, "tunneling_ip": "192.0.2.2"}],
        }],
        "security_groups": {"sg-1": []},
    }
    assert codec.decode(L2State, json.loads(json.dumps(wire))) == state


def test_l3_state_has_the_contract_shape_and_round_trips() -> None:
    gateway = RouterPort("gw-port", "ext-net", "fa:16:3e:00:00:10", 1500,
                         (RouterAddress("ext-sub", "203.0.113.5", "203.0.113.0/24", "203.0.113.1"),))
    router = L3Router("r-1", "project-1", True, True, 7, interfaces=(RouterPort("if-port", "net-1", "fa:16:3e:00:00:11", 1450),),
                      gateway=gateway, routes=(("10.9.0.0/16", "10.0.0.9"),),
                      floating_ips=(FloatingIp("fip-1", "203.0.113.9", "10.0.0.5", "port-1", "ACTIVE"),))
    wire = codec.encode(L3State("host-a", (router,), 3.0))
    assert wire["role"] == "l3"
    assert wire["routers"][0]["routes"] == [{"destination": "10.9.0.0/16", "nexthop": "10.0.0.9"}]
    assert wire["routers"][0]["floating_ips"] == [{"id": "fip-1", "floating_ip_address": "203.0.113.9",
                                                   "fixed_ip_address": "10.0.0.5", "fixed_port_id": "port-1",
                                                   "status": "ACTIVE"}]
    assert wire["routers"][0]["gateway"]["fixed_ips"][0]["gateway_ip"] == "203.0.113.1"
    assert codec.decode(L3State, json.loads(json.dumps(wire))) == L3State("host-a", (router,), 3.0)


def test_decoding_tolerates_additive_keys_converts_numbers_and_fills_what_older_peers_leave_out() -> None:
    port = codec.decode(L2Port, {
        "port_id": "p", "device": "tapp", "network_id": "n", "mac_address": "m", "mtu": "1500",
        "segment": {"network_type": "flat", "physical_network": "physnet1"}, "from_the_future": 1,
    })
    assert port.mtu == 1500 and port.admin_state_up is True and port.device_owner == "" and port.fixed_ips == ()
    assert port.segment == SegmentInfo("flat", None, "physnet1")
    router = codec.decode(L3Router, {"router_id": "r"})
    assert (router.project_id, router.admin_state_up, router.enable_snat, router.revision) == ("", True, True, 0)


@pytest.mark.parametrize("data", [
    {"port_id": "p"},  # required keys missing
    {"port_id": "p", "device": "d", "network_id": "n", "mac_address": "m", "mtu": "a lot", "segment": {"network_type": "flat"}},
    {"port_id": "p", "device": "d", "network_id": "n", "mac_address": "m", "mtu": 1, "segment": "flat"},
    {"port_id": "p", "device": "d", "network_id": "n", "mac_address": "m", "mtu": 1, "segment": {"network_type": "flat"},
     "fixed_ips": [{"ip_address": "10.0.0.1"}]},
    ["not", "an", "object"],
])
def test_what_is_not_a_record_is_a_decode_error(data: object) -> None:
    with pytest.raises(codec.DecodeError):
        codec.decode(L2Port, data)  # type: ignore[arg-type]


def test_a_change_hint_leaves_out_where_it_does_not_know() -> None:
    assert codec.encode(ChangeHint("network", "n", "update", 3)) == {
        "resource": "network", "id": "n", "op": "update", "revision": 3}
    hint = ChangeHint("port", "p", "create", 1, host="host-a", network_id="n")
    assert codec.decode(ChangeHint, codec.encode(hint)) == hint
