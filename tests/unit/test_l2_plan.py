"""The l2 role's pure parts: the planner (desired + kernel view -> actions) and the report decisions."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from neutrino.agent.roles.l2.actions import (
    AddFdbEntry,
    AttachUplink,
    ConvergeTap,
    EnsureBridge,
    EnsureVxlan,
    RemoveDevice,
    RemoveFdbEntry,
)
from neutrino.agent.roles.l2.config import LinuxBridgeConfig, parse_bridge_mappings
from neutrino.agent.roles.l2.kernel_features import NO_VLAN_REASON, detect_kernel_features
from neutrino.agent.roles.l2.kernel_view import KernelView
from neutrino.agent.roles.l2.plan import lay_out_networks, plan, wired_ports
from neutrino.agent.roles.l2.reporting import PortStatus, StatusReport, decide_reports, forgotten_devices
from neutrino.contract.l2 import FdbEntry, L2Network, L2Port, L2State, SegmentInfo
from neutrino.contract.names import bridge_name, tap_name, vxlan_name
from neutrino.dataplane.netlink import FLOODING_MAC, Link, VxlanSettings

HOST = "compute-1"
LOCAL_IP = "192.0.2.11"
OURS = f"neutrino:{HOST}"
NET = "0c9f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
NET2 = "7d6e5f4a-3b2c-4d1e-9f8a-7b6c5d4e3f2a"
PORT_A = "5e1c0a2b-3f4d-4c1e-9a55-1f2e3d4c5b6a"
PORT_B = "6f2d1b3c-4a5e-4d2f-8b66-2a3f4e5d6c7b"
BRIDGE, BRIDGE2 = bridge_name(NET), bridge_name(NET2)
VXLAN = vxlan_name(1001)
TAP_A, TAP_B = tap_name(PORT_A), tap_name(PORT_B)

VXLAN_SEGMENT = SegmentInfo("vxlan", 1001, None)
FLAT_SEGMENT = SegmentInfo("flat", None, "physnet1")


def config(**overrides: object) -> LinuxBridgeConfig:
    settings: dict[str, object] = {
        "host": HOST,
        "tunnel_ip": LOCAL_IP,
        "bridge_mappings": {"physnet1": "eth1"},
    }
    settings.update(overrides)
    return LinuxBridgeConfig(**settings)  # type: ignore[arg-type]


def port(
    port_id: str = PORT_A,
    *,
    network_id: str = NET,
    segment: SegmentInfo = VXLAN_SEGMENT,
    mtu: int = 1450,
    admin_state_up: bool = True,
    revision: int = 3,
) -> L2Port:
    return L2Port(
        port_id=port_id,
        device=tap_name(port_id),
        network_id=network_id,
        mac_address="fa:16:3e:00:00:01",
        fixed_ips=(("subnet", "10.0.0.5"),),
        admin_state_up=admin_state_up,
        device_owner="compute:nova",
        segment=segment,
        mtu=mtu,
        revision=revision,
    )


def vxlan_network(flood: tuple[str, ...] = ("192.0.2.12",), fdb: tuple[FdbEntry, ...] = ()) -> L2Network:
    return L2Network(NET, VXLAN_SEGMENT, 1450, flood, fdb)


def state(ports: tuple[L2Port, ...], networks: tuple[L2Network, ...] = ()) -> L2State:
    return L2State(HOST, LOCAL_IP, ports, networks)


_indexes = iter(range(10, 100_000))


def link(
    name: str,
    kind: str | None,
    *,
    master: str | None = None,
    mtu: int = 1450,
    up: bool = True,
    alias: str | None = OURS,
    vxlan: VxlanSettings | None = None,
) -> Link:
    return Link(
        name=name,
        index=next(_indexes),
        kind=kind,
        master=master,
        mtu=mtu,
        mac="fa:16:3e:ff:ff:ff",
        state="up" if up else "down",
        admin_up=up,
        alias=alias,
        vxlan=vxlan,
    )


def our_vxlan(local_ip: str = LOCAL_IP, **kwargs: object) -> Link:
    settings = VxlanSettings(1001, ipaddress.ip_address(local_ip), 4789, False, None)
    return link(VXLAN, "vxlan", master=BRIDGE, vxlan=settings, **kwargs)  # type: ignore[arg-type]


def view(*links: Link, fdb: dict[str, set[tuple[str, str]]] | None = None) -> KernelView:
    return KernelView(
        {item.name: item for item in links},
        {device: frozenset(entries) for device, entries in (fdb or {}).items()},
    )


def wired_vxlan_host(*taps: Link, fdb: set[tuple[str, str]] | None = None) -> KernelView:
    """The kernel as it is once a VXLAN network with flood list [192.0.2.12] is fully wired."""
    entries = {(FLOODING_MAC, "192.0.2.12")} if fdb is None else fdb
    return view(link(BRIDGE, "bridge"), our_vxlan(), *taps, fdb={VXLAN: entries})


def wired_tap(name: str = TAP_A, **kwargs: object) -> Link:
    return link(name, "veth", master=BRIDGE, alias=None, **kwargs)  # type: ignore[arg-type]


# ---- the planner ------------------------------------------------------------------------------------


def test_nothing_desired_and_nothing_there_plans_nothing() -> None:
    assert plan(state(()), view(link("lo", None, alias=None)), config()) == ()


def test_first_vxlan_port_builds_bridge_vxlan_fdb_then_wires_tap_in_that_order() -> None:
    desired = state(
        (port(),),
        (vxlan_network(fdb=(FdbEntry("FA:16:3E:AA:BB:CC", "10.0.0.7", "192.0.2.12"),)),),
    )
    actual = view(link(TAP_A, "veth", mtu=1500, up=False, alias=None))

    assert plan(desired, actual, config()) == (
        EnsureBridge(NET, BRIDGE, 1450),
        EnsureVxlan(NET, VXLAN, 1001, LOCAL_IP, 1450, fresh=True),
        AttachUplink(NET, VXLAN, BRIDGE),
        AddFdbEntry(NET, VXLAN, FLOODING_MAC, "192.0.2.12"),
        AddFdbEntry(NET, VXLAN, "fa:16:3e:aa:bb:cc", "192.0.2.12"),
        ConvergeTap(NET, TAP_A, mtu=1450, bridge=BRIDGE, up=True),
    )


def test_an_already_wired_host_plans_nothing() -> None:
    desired = state((port(), port(PORT_B)), (vxlan_network(),))
    actual = wired_vxlan_host(wired_tap(TAP_A), wired_tap(TAP_B))

    assert plan(desired, actual, config()) == ()


def test_bridge_and_vxlan_are_made_for_a_port_whose_tap_has_not_appeared_yet() -> None:
    actions = plan(state((port(),), (vxlan_network(),)), view(), config())

    assert EnsureBridge(NET, BRIDGE, 1450) in actions
    assert not any(isinstance(action, ConvergeTap) for action in actions)


def test_only_what_differs_on_a_tap_is_set() -> None:
    desired = state((port(),), (vxlan_network(),))

    assert plan(desired, wired_vxlan_host(wired_tap(up=False)), config()) == (
        ConvergeTap(NET, TAP_A, up=True),
    )
    assert plan(desired, wired_vxlan_host(wired_tap(mtu=1500)), config()) == (
        ConvergeTap(NET, TAP_A, mtu=1450),
    )


def test_admin_down_port_gets_its_tap_set_down() -> None:
    desired = state((port(admin_state_up=False),), (vxlan_network(),))

    assert plan(desired, wired_vxlan_host(wired_tap()), config()) == (ConvergeTap(NET, TAP_A, up=False),)


def test_fdb_converges_adding_before_removing_and_skips_our_own_endpoint() -> None:
    desired = state((port(),), (vxlan_network(flood=("192.0.2.13", LOCAL_IP)),))
    actual = wired_vxlan_host(wired_tap(), fdb={(FLOODING_MAC, "192.0.2.12")})

    assert plan(desired, actual, config()) == (
        AddFdbEntry(NET, VXLAN, FLOODING_MAC, "192.0.2.13"),
        RemoveFdbEntry(NET, VXLAN, FLOODING_MAC, "192.0.2.12"),
    )


def test_a_network_without_ports_loses_its_bridge_and_vxlan_but_taps_and_foreign_devices_stay() -> None:
    actual = view(
        link(BRIDGE, "bridge"),
        our_vxlan(),
        wired_tap(),
        link(BRIDGE2, "bridge", alias="neutrino:other-host"),
        link("vxlan-77", "vxlan", alias=None),
    )

    assert plan(state(()), actual, config()) == (RemoveDevice(VXLAN), RemoveDevice(BRIDGE))


def test_without_pruning_nothing_is_removed() -> None:
    actual = wired_vxlan_host(fdb={(FLOODING_MAC, "192.0.2.99")})
    stale_bridge = link(BRIDGE2, "bridge")
    actual = KernelView({**actual.links, BRIDGE2: stale_bridge}, actual.fdb)
    desired = state((port(),), (vxlan_network(),))

    assert plan(desired, actual, config(), prune=False) == (
        AddFdbEntry(NET, VXLAN, FLOODING_MAC, "192.0.2.12"),
    )


def test_vxlan_with_other_settings_is_recreated_and_refilled() -> None:
    desired = state((port(),), (vxlan_network(),))
    actual = view(
        link(BRIDGE, "bridge"),
        our_vxlan(local_ip="192.0.2.250"),
        wired_tap(),
        fdb={VXLAN: {(FLOODING_MAC, "192.0.2.12")}},
    )

    assert plan(desired, actual, config()) == (
        EnsureVxlan(NET, VXLAN, 1001, LOCAL_IP, 1450, fresh=True),
        AttachUplink(NET, VXLAN, BRIDGE),
        AddFdbEntry(NET, VXLAN, FLOODING_MAC, "192.0.2.12"),
    )


def test_a_bridge_of_someone_else_with_our_name_is_adopted_not_deleted() -> None:
    desired = state((port(),), (vxlan_network(),))
    actual = wired_vxlan_host(wired_tap())
    actual = KernelView({**actual.links, BRIDGE: link(BRIDGE, "bridge", alias=None)}, actual.fdb)

    assert plan(desired, actual, config()) == (EnsureBridge(NET, BRIDGE, 1450),)


def test_flat_network_enslaves_the_mapped_interface_and_brings_it_up() -> None:
    desired = state((port(segment=FLAT_SEGMENT, mtu=1500),))
    actual = view(link("eth1", "veth", mtu=1500, up=False, alias=None), link(TAP_A, "veth", mtu=1500))

    assert plan(desired, actual, config()) == (
        EnsureBridge(NET, BRIDGE, 1500),
        AttachUplink(NET, "eth1", BRIDGE, up=True),
        ConvergeTap(NET, TAP_A, bridge=BRIDGE),
    )


def test_flat_network_mapped_to_a_bridge_uses_that_bridge_and_never_removes_it() -> None:
    desired = state((port(segment=FLAT_SEGMENT, mtu=1500),))
    actual = view(link("br-ex", "bridge", mtu=1500, alias=None), link(TAP_A, "veth", mtu=1500))
    cfg = config(bridge_mappings={"physnet1": "br-ex"})

    assert plan(desired, actual, cfg) == (ConvergeTap(NET, TAP_A, bridge="br-ex"),)
    assert plan(state(()), actual, cfg) == ()


def test_a_mapped_bridge_carrying_our_mark_is_never_pruned_even_with_a_network_bridge_name() -> None:
    # ``neutrino up`` marks its br-ex as ours (for cleanup); the running agent must still keep it.
    actual = view(link("br-ex", "bridge", mtu=1500), link(BRIDGE2, "bridge", mtu=1500))
    cfg = config(bridge_mappings={"public": "br-ex", "physnet1": BRIDGE2})

    assert plan(state(()), actual, cfg) == ()


def test_flat_network_whose_interface_is_missing_is_left_alone_and_its_ports_are_not_wired() -> None:
    desired = state((port(segment=FLAT_SEGMENT, mtu=1500),))
    actual = view(link(BRIDGE, "bridge", mtu=1500), link(TAP_A, "veth", mtu=1500, alias=None))

    assert plan(desired, actual, config()) == ()
    layout = lay_out_networks(desired, actual.links, config())[NET]
    assert "eth1" in (layout.problem or "")
    assert wired_ports(desired, actual, config()) == frozenset()


def test_flat_network_without_a_mapping_has_a_problem() -> None:
    desired = state((port(segment=SegmentInfo("flat", None, "elsewhere")),))

    layout = lay_out_networks(desired, {}, config())[NET]

    assert "elsewhere" in (layout.problem or "") and plan(desired, view(), config()) == ()


def test_vlan_segment_is_skipped_with_a_clear_reason() -> None:
    desired = state((port(segment=SegmentInfo("vlan", 100, "physnet1")),))
    actual = view(link("eth1", "veth", alias=None), link(TAP_A, "veth", alias=None))

    assert plan(desired, actual, config()) == ()
    assert "802.1Q" in (lay_out_networks(desired, actual.links, config())[NET].problem or "")


def test_vxlan_without_a_tunnel_ip_is_not_wired_and_its_devices_are_kept() -> None:
    desired = state((port(),), (vxlan_network(),))
    actual = wired_vxlan_host(wired_tap())

    assert plan(desired, actual, config(tunnel_ip=None)) == ()
    assert wired_ports(desired, actual, config(tunnel_ip=None)) == frozenset()


def test_vxlan_segment_without_a_usable_vni_has_a_problem() -> None:
    for vni in (None, 0, 2**24):
        desired = state((port(segment=SegmentInfo("vxlan", vni, None)),))

        assert lay_out_networks(desired, {}, config())[NET].problem is not None
        assert plan(desired, view(), config()) == ()


def test_local_network_is_a_bridge_alone() -> None:
    desired = state((port(segment=SegmentInfo("local", None, None), mtu=1500),))

    assert plan(desired, view(link(TAP_A, "veth", mtu=1500, alias=None)), config()) == (
        EnsureBridge(NET, BRIDGE, 1500),
        ConvergeTap(NET, TAP_A, bridge=BRIDGE),
    )


def test_a_port_whose_network_is_not_listed_uses_its_own_segment_and_mtu() -> None:
    actions = plan(state((port(),)), view(), config())

    assert actions[:2] == (
        EnsureBridge(NET, BRIDGE, 1450),
        EnsureVxlan(NET, VXLAN, 1001, LOCAL_IP, 1450, fresh=True),
    )


def test_wired_ports_excludes_failed_networks_and_devices_and_absent_taps() -> None:
    desired = state((port(), port(PORT_B)), (vxlan_network(),))
    actual = wired_vxlan_host(wired_tap(TAP_A), wired_tap(TAP_B))

    assert wired_ports(desired, actual, config()) == {TAP_A, TAP_B}
    assert wired_ports(desired, actual, config(), failed_devices=frozenset({TAP_B})) == {TAP_A}
    assert wired_ports(desired, actual, config(), failed_networks=frozenset({NET})) == frozenset()
    assert wired_ports(desired, wired_vxlan_host(wired_tap(TAP_A)), config()) == {TAP_A}


# ---- report decisions -----------------------------------------------------------------------------


def test_a_wired_port_is_reported_up_once_per_revision() -> None:
    ports = (port(revision=3),)
    first = decide_reports(ports, present={TAP_A}, wired={TAP_A}, reported={})

    assert first == (StatusReport(TAP_A, PortStatus(3, True)),)
    assert decide_reports(ports, present={TAP_A}, wired={TAP_A}, reported={TAP_A: PortStatus(3, True)}) == ()
    assert decide_reports(
        (port(revision=4),), present={TAP_A}, wired={TAP_A}, reported={TAP_A: PortStatus(3, True)}
    ) == (StatusReport(TAP_A, PortStatus(4, True)),)


def test_a_tap_that_vanished_after_being_reported_up_is_reported_down_once() -> None:
    ports = (port(),)

    down = decide_reports(ports, present=set(), wired=set(), reported={TAP_A: PortStatus(3, True)})

    assert down == (StatusReport(TAP_A, PortStatus(3, False)),)
    assert decide_reports(ports, present=set(), wired=set(), reported={TAP_A: PortStatus(3, False)}) == ()


def test_a_missing_tap_never_reported_is_reported_down_only_on_the_first_pass() -> None:
    ports = (port(),)

    assert decide_reports(ports, present=set(), wired=set(), reported={}) == ()
    assert decide_reports(ports, present=set(), wired=set(), reported={}, first_pass=True) == (
        StatusReport(TAP_A, PortStatus(3, False)),
    )


def test_an_admin_down_port_is_reported_down_and_an_unwireable_one_not_at_all() -> None:
    ports = (port(admin_state_up=False),)

    assert decide_reports(ports, present={TAP_A}, wired={TAP_A}, reported={}) == (
        StatusReport(TAP_A, PortStatus(3, False)),
    )
    assert decide_reports(ports, present={TAP_A}, wired={TAP_A}, reported={TAP_A: PortStatus(3, False)}) == ()
    assert decide_reports((port(),), present={TAP_A}, wired=set(), reported={}) == ()


def test_devices_of_ports_no_longer_desired_are_forgotten() -> None:
    reported = {TAP_A: PortStatus(3, True), TAP_B: PortStatus(1, True)}

    assert forgotten_devices((port(),), reported) == (TAP_B,)


# ---- configuration and kernel features ---------------------------------------------------------


def test_bridge_mappings_parse_from_pairs_and_refuse_nonsense() -> None:
    assert parse_bridge_mappings(["physnet1:eth1", " public : br-ex "]) == {
        "physnet1": "eth1",
        "public": "br-ex",
    }
    for bad in (["physnet1"], ["physnet1:"], ["a:eth1", "a:eth2"], ["p:name-that-is-far-too-long"]):
        with pytest.raises(ValueError):
            parse_bridge_mappings(bad)


def test_config_defaults_its_owner_to_the_host() -> None:
    assert config().owner_tag.alias == OURS


def test_vlan_support_is_detected_from_proc_or_sys(tmp_path: Path) -> None:
    proc, sys = tmp_path / "proc", tmp_path / "sys"
    missing = detect_kernel_features(proc, sys)
    (proc / "net" / "vlan").mkdir(parents=True)

    assert (missing.vlan, missing.reason) == (False, NO_VLAN_REASON)
    assert detect_kernel_features(proc, sys).vlan is True


def test_a_mac_that_moved_host_loses_its_old_destination_first() -> None:
    # The kernel keeps one destination per unicast MAC: an append would leave the old one (HA failover).
    moved = FdbEntry("fa:16:3e:aa:bb:cc", "10.0.0.1", "192.0.2.13")
    desired = state((port(),), (vxlan_network(flood=("192.0.2.12", "192.0.2.13"), fdb=(moved,)),))
    actual = wired_vxlan_host(wired_tap(), fdb={(FLOODING_MAC, "192.0.2.12"), (FLOODING_MAC, "192.0.2.13"),
                                                ("fa:16:3e:aa:bb:cc", "192.0.2.12")})

    for prune in (True, False):
        assert plan(desired, actual, config(), prune=prune) == (
            RemoveFdbEntry(NET, VXLAN, "fa:16:3e:aa:bb:cc", "192.0.2.12"),
            AddFdbEntry(NET, VXLAN, "fa:16:3e:aa:bb:cc", "192.0.2.13"),
        )
