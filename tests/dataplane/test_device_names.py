"""Device and namespace naming (pure: no kernel needed)."""

from __future__ import annotations

import pytest

from neutrino.contract import names
from neutrino.contract.names import DeviceRole
from neutrino.dataplane.ownership import OwnerTag, owner_of

PORT = "3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b"
NETWORK = "9e8d7c6b-5a49-4837-a261-5f4e3d2c1b0a"


def test_device_names_follow_neutron_linuxbridge_conventions() -> None:
    assert names.tap_name(PORT) == "tap3f2a1b4c-5d"
    assert names.bridge_name(NETWORK) == "brq9e8d7c6b-5a"
    assert names.vxlan_name(1001) == "vxlan-1001"
    assert names.router_interface_name(PORT) == "qr-3f2a1b4c-5d"
    assert names.router_gateway_name(PORT) == "qg-3f2a1b4c-5d"
    assert names.dhcp_interface_name(PORT) == "ns-3f2a1b4c-5d"


def test_every_device_name_fits_ifnamsiz() -> None:
    made = [
        names.tap_name(PORT),
        names.bridge_name(NETWORK),
        names.vxlan_name(names.VNI_MAX),
        names.router_interface_name(PORT),
        names.router_gateway_name(PORT),
        names.dhcp_interface_name(PORT),
    ]

    assert all(len(name) <= names.IFNAMSIZ_MAX_CHARS for name in made)


@pytest.mark.parametrize("vni", [0, -1, 2**24, True, "5"])
def test_vni_outside_24_bits_is_refused(vni: object) -> None:
    with pytest.raises(ValueError):
        names.vxlan_name(vni)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", "a" * 16, "has space", "a/b", "a:b", ".", ".."])
def test_names_the_kernel_would_refuse_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        names.checked_device_name(bad)


def test_namespace_names_take_a_prefix_and_suffix_per_simulated_host() -> None:
    assert names.dhcp_namespace(NETWORK) == f"qdhcp-{NETWORK}"
    assert names.router_namespace("r1", prefix="sim-", suffix="@host-a") == "sim-qrouter-r1@host-a"
    assert names.dhcp_namespace(NETWORK, suffix="@host-a") != names.dhcp_namespace(NETWORK, suffix="@host-b")


def test_our_device_names_are_recognised_and_others_are_not() -> None:
    assert names.device_role(names.tap_name(PORT)) is DeviceRole.TAP
    assert names.device_role(names.bridge_name(NETWORK)) is DeviceRole.BRIDGE
    assert names.device_role("vxlan-1001") is DeviceRole.VXLAN
    assert names.device_role(names.dhcp_interface_name(PORT)) is DeviceRole.DHCP_INTERFACE
    assert not any(names.is_neutrino_device_name(n) for n in ("tap0", "eth0", "br0", "vxlan-0", "qr-x", "lo"))


def test_our_namespace_names_are_recognised_with_their_prefix_and_suffix() -> None:
    ours = names.router_namespace("r1", suffix="@host-a")

    assert names.is_neutrino_namespace_name(ours, suffix="@host-a")
    assert not names.is_neutrino_namespace_name(ours, suffix="@host-b")
    assert not names.is_neutrino_namespace_name("qrouter-", suffix="")
    assert not names.is_neutrino_namespace_name("netns-1")


def test_owner_alias_round_trips_and_foreign_aliases_have_no_owner() -> None:
    owner = OwnerTag("compute-1")

    assert owner.alias == "neutrino:compute-1"
    assert owner_of(owner.alias) == owner
    assert owner_of("someone-else") is None and owner_of(None) is None
    assert not OwnerTag("compute-2").owns(owner.alias)
    with pytest.raises(ValueError):
        OwnerTag("has space")
