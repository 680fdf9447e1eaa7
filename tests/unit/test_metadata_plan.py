"""The metadata planner in router namespaces (pure): IPv6 metadata through a router that is not HA."""

from __future__ import annotations

from pathlib import Path

from neutrino.agent.roles.metadata.actions import (
    AddMetadataAddress,
    AwaitDevice,
    LoadRedirect,
    LoadRedirect6,
    StartProxy,
    WriteMap,
)
from neutrino.agent.roles.metadata.config import MetadataConfig
from neutrino.agent.roles.metadata.desired import REDIRECT6_BODY, REDIRECT_BODY, ProxyWish, wishes
from neutrino.agent.roles.metadata.plan import MetadataView, ProxyView, plan
from neutrino.contract.metadata import MetadataRouter, MetadataState
from neutrino.contract.names import router_interface_name
from neutrino.dataplane.nftables import body_digest

ROUTER = "0f1e2d3c-4b5a-4697-8887-a9b8c7d6e5f4"
PORTS = ("11111111-2222-4333-8444-555555555555", "66666666-7777-4888-8999-aaaaaaaaaaaa")


def _wish(ha: bool) -> ProxyWish:
    config = MetadataConfig(host="h", state_dir=Path("/nonexistent"), backend="http://127.0.0.1:1",
                            secret_file=Path("/nonexistent/secret"))
    (wish,) = wishes(MetadataState("h", routers=(MetadataRouter(ROUTER, (), PORTS, ha),)), config).values()
    return wish


def test_a_router_serves_ipv6_metadata_on_each_qr_device_once_it_exists() -> None:
    wish = _wish(ha=False)
    devices = tuple(router_interface_name(p) for p in PORTS)
    assert wish.redirect6 == REDIRECT6_BODY and wish.v6_devices == devices
    first = ProxyView(True, False, devices=frozenset(devices[:1]))
    assert plan(wish.netns, wish, MetadataView({wish.netns: first})) == (
        WriteMap(wish.netns, wish.map), StartProxy(wish.netns, wish.port), LoadRedirect(wish.netns, REDIRECT_BODY),
        AddMetadataAddress(wish.netns, devices[0]), AwaitDevice(wish.netns, devices[1]),
        LoadRedirect6(wish.netns, REDIRECT6_BODY))
    done = ProxyView(True, True, wish.map, body_digest(REDIRECT_BODY), body_digest(REDIRECT6_BODY),
                     frozenset(devices), frozenset(devices))
    assert plan(wish.netns, wish, MetadataView({wish.netns: done})) == ()


def test_an_ha_router_serves_ipv4_metadata_only() -> None:
    wish = _wish(ha=True)
    assert wish.redirect6 is None and wish.v6_devices == ()
    view = ProxyView(True, True, wish.map, body_digest(REDIRECT_BODY), devices=frozenset(
        router_interface_name(p) for p in PORTS))
    assert plan(wish.netns, wish, MetadataView({wish.netns: view})) == ()
