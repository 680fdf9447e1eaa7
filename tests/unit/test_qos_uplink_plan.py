"""The pure part of minimum bandwidth guarantees: the uplink capacity option, class allocation and
the plan from what the kernel holds (the kernel side is tests/dataplane/test_qos_minimum_bandwidth.py)."""

from __future__ import annotations

import pytest

from neutrino.agent.roles.qos.uplink import (
    ClearHtb,
    DeleteHtbClass,
    Guarantees,
    MinbwKernel,
    MinbwScript,
    SetHtbClass,
    SetHtbRoot,
    Uplink,
    UplinkBandwidth,
    parse_resource_provider_bandwidths,
    plan_uplinks,
)
from neutrino.config import ConfigError, load_settings
from neutrino.dataplane.tc import HtbClass, parse_htb_classes


def test_the_option_takes_neutrons_format_and_refuses_anything_else() -> None:
    assert parse_resource_provider_bandwidths(["eth1:20000:10000", "eth2::5000", "eth3:7:"]) == {
        "eth1": UplinkBandwidth(20000, 10000), "eth2": UplinkBandwidth(None, 5000), "eth3": UplinkBandwidth(7, None)}
    for bad in (["eth1:20000"], ["eth1:x:1"], ["eth1:0:1"], [":1:1"], ["eth1:1:1", "eth1:2:2"]):
        with pytest.raises(ValueError):
            parse_resource_provider_bandwidths(bad)
    with pytest.raises(ConfigError, match="resource_provider_bandwidths"):
        load_settings(overrides={"agent": {"resource_provider_bandwidths": ["eth1:-5:1"]}})


def test_tc_class_listing_is_read_in_kbit() -> None:
    listing = ("class htb 4e51:ffff parent 4e51:1 prio 0 rate 8Mbit ceil 20Mbit burst 1600b cburst 1600b \n"
               "class htb 4e51:1 root rate 20Mbit ceil 20Mbit burst 1600b cburst 1600b \n"
               "class htb 4e51:a parent 4e51:1 prio 0 rate 12345Kbit ceil 20Mbit burst 1597b cburst 1600b \n"
               "class htb 1:2 parent 1: prio 0 rate 1Gbit ceil 1Gbit burst 1600b cburst 1600b \n")
    assert parse_htb_classes(listing) == {0xFFFF: HtbClass(8000, 20000), 1: HtbClass(20000, 20000),
                                          0xA: HtbClass(12345, 20000)}


def test_a_new_uplink_gets_its_tree_and_every_tap_its_own_class() -> None:
    want = Guarantees("neutrino:h", (Uplink("eth1", 20000, (("tapa", 12000), ("tapb", 3000))),))
    actions = plan_uplinks(want, MinbwKernel())
    script, root, *classes = actions
    assert isinstance(script, MinbwScript) and '"tapa" : 4e51:2' in script.text and '"tapb" : 4e51:3' in script.text
    assert root == SetHtbRoot("eth1")
    assert classes == [SetHtbClass("eth1", 1, 20000, 20000), SetHtbClass("eth1", 2, 12000, 20000),
                       SetHtbClass("eth1", 3, 3000, 20000), SetHtbClass("eth1", 0xFFFF, 5000, 20000)]


def test_classes_stay_with_their_taps_and_only_what_differs_changes() -> None:
    tree = {1: HtbClass(20000, 20000), 0xFFFF: HtbClass(5000, 20000), 2: HtbClass(12000, 20000),
            3: HtbClass(3000, 20000)}
    held = MinbwKernel(True, {"tapa": "4e51:2", "tapb": "4e51:3"}, {"eth1": tree})
    same = Guarantees("o", (Uplink("eth1", 20000, (("tapa", 12000), ("tapb", 3000))),))
    assert plan_uplinks(same, held) == ()
    # a leaves, c arrives: c takes the lowest free class, b keeps its own.
    changed = Guarantees("o", (Uplink("eth1", 20000, (("tapb", 3000), ("tapc", 1000))),))
    script, *tc = plan_uplinks(changed, held)
    assert isinstance(script, MinbwScript)
    assert 'delete element bridge neutrino-minbw ports { "tapa" }' in script.text
    assert '"tapc" : 4e51:2' in script.text and "tapb" not in script.text
    assert tc == [SetHtbClass("eth1", 2, 1000, 20000), SetHtbClass("eth1", 0xFFFF, 16000, 20000)]
    # Everything gone: the table first, then the tree.
    assert plan_uplinks(None, held) == (MinbwScript("table bridge neutrino-minbw\ndelete table bridge neutrino-minbw\n"),
                                        ClearHtb("eth1"))


def test_an_oversubscribed_uplink_caps_each_class_and_keeps_a_floor_for_the_rest() -> None:
    want = Guarantees("o", (Uplink("eth1", 10000, (("tapa", 8000), ("tapb", 30000))),))
    held = MinbwKernel(True, {}, {"eth1": {9: HtbClass(1, 1)}})
    actions = plan_uplinks(want, held)
    assert SetHtbClass("eth1", 3, 10000, 10000) in actions and SetHtbClass("eth1", 0xFFFF, 8, 10000) in actions
    assert DeleteHtbClass("eth1", 9) in actions and SetHtbRoot("eth1") not in actions
