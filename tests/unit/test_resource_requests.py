"""A port's resource_request in the port-resource-request-groups shape, as Neutron's QoS plugin
builds it for Nova: one group per minimum kind, stable uuid5 ids, traits of physnet/tunnel and VNIC."""

from __future__ import annotations

import uuid

from neutrino.services.resource_requests import MinimumRule, custom_trait, resource_request

PORT = "0b3f8a52-6f4f-4a8e-9f65-2d2b5b8b2a11"


def test_no_minimum_rules_request_nothing() -> None:
    assert resource_request(PORT, "normal", "physnet1", []) is None


def test_bandwidth_and_packet_rate_groups_share_a_subtree() -> None:
    rules = [MinimumRule("r1", "minimum_bandwidth", "egress", 1000),
             MinimumRule("r2", "minimum_bandwidth", "ingress", 2000),
             MinimumRule("r3", "minimum_packet_rate", "any", 10)]
    request = resource_request(PORT, "direct", "phys-net.1", rules)
    bw_id = str(uuid.uuid5(uuid.UUID(PORT), "r1:r2"))
    pps_id = str(uuid.uuid5(uuid.UUID(PORT), "r3"))
    assert request == {
        "request_groups": [
            {"id": bw_id, "required": ["CUSTOM_PHYSNET_PHYS_NET_1", "CUSTOM_VNIC_TYPE_DIRECT"],
             "resources": {"NET_BW_EGR_KILOBIT_PER_SEC": 1000, "NET_BW_IGR_KILOBIT_PER_SEC": 2000}},
            {"id": pps_id, "required": ["CUSTOM_VNIC_TYPE_DIRECT"],
             "resources": {"NET_PACKET_RATE_KILOPACKET_PER_SEC": 10}}],
        "same_subtree": [bw_id, pps_id]}


def test_an_overlay_network_asks_for_the_tunnel_trait() -> None:
    request = resource_request(PORT, "normal", None, [MinimumRule("r1", "minimum_bandwidth", "egress", 5)])
    assert request is not None
    assert request["request_groups"][0]["required"] == ["CUSTOM_NETWORK_TUNNEL_PROVIDER", "CUSTOM_VNIC_TYPE_NORMAL"]


def test_trait_names_are_normalised_as_os_traits_does() -> None:
    assert custom_trait("PHYSNET_public") == "CUSTOM_PHYSNET_PUBLIC"
    assert custom_trait("CUSTOM_X") == "CUSTOM_X"
