"""The l2 role's keyed desired state (devices by name) and its judgement of server events: pure."""

from __future__ import annotations

from neutrino.agent.roles.l2.config import LinuxBridgeConfig
from neutrino.agent.roles.l2.desired import NetworkWish, keyed, rank, requires
from neutrino.agent.roles.l2.events import Verdict, judge
from neutrino.contract.events import ChangeHint
from neutrino.contract.l2 import L2Network, L2Port, L2State, SegmentInfo
from neutrino.contract.names import bridge_name, tap_name, vxlan_name

NET, FLAT_NET = "6f0c4a52-0000-4000-8000-000000000001", "6f0c4a52-0000-4000-8000-000000000002"
VXLAN = SegmentInfo("vxlan", 1001, None)
FLAT = SegmentInfo("flat", None, "physnet1")
CONFIG = LinuxBridgeConfig(host="h1", tunnel_ip="192.0.2.1", bridge_mappings={"physnet1": "eth1"})


def port(port_id: str, network_id: str = NET, segment: SegmentInfo = VXLAN, revision: int = 1) -> L2Port:
    return L2Port(port_id=port_id, device=tap_name(port_id), network_id=network_id, mac_address="fa:16:3e:00:00:01",
                  fixed_ips=(), admin_state_up=True, device_owner="compute:nova", segment=segment, mtu=1450,
                  revision=revision)


def test_each_network_is_its_devices_and_each_port_its_tap_all_keyed_by_name() -> None:
    a, b, c = port("a" * 36), port("b" * 36), port("c" * 36, FLAT_NET, FLAT)
    network = L2Network(NET, VXLAN, 1450, flood=("192.0.2.2",))

    wanted = keyed(L2State("h1", "192.0.2.1", (a, b, c), (network,)), CONFIG)

    assert set(wanted) == {("bridge", bridge_name(NET)), ("vxlan", vxlan_name(1001)), ("tap", a.device),
                           ("tap", b.device), ("bridge", bridge_name(FLAT_NET)), ("uplink", "eth1"),
                           ("tap", c.device)}
    assert wanted[("vxlan", vxlan_name(1001))] == NetworkWish(network)
    assert wanted[("uplink", "eth1")] == NetworkWish(L2Network(FLAT_NET, FLAT, 1450), partial=True), \
        "a network the state does not list is known from its port only"
    assert requires(("tap", a.device), a, CONFIG) == (("bridge", bridge_name(NET)), ("vxlan", vxlan_name(1001)))
    assert requires(("vxlan", vxlan_name(1001)), NetworkWish(network), CONFIG) == (("bridge", bridge_name(NET)),)
    assert rank(("bridge", "x")) < rank(("vxlan", "x")) == rank(("uplink", "x")) < rank(("tap", "x"))


def hint(op: str = "update", revision: int | None = 2, host: str | None = "h1", network_id: str | None = NET,
         resource: str = "port") -> ChangeHint:
    return ChangeHint(resource, "p" * 36, op, revision, host, network_id)


def verdict(h: ChangeHint, *, known: int | None = None, reported: int | None = None, pending: bool = False,
            networks: frozenset[str] = frozenset({NET})) -> Verdict:
    return judge(h, host="h1", known_revision=known, reported_revision=reported, report_pending=pending,
                 port_networks=networks)


def test_server_events_are_judged_by_what_they_can_change_here() -> None:
    assert verdict(hint(resource="network")) is Verdict.RESYNC
    assert verdict(hint(revision=2), known=2) is Verdict.IGNORE, "already applied"
    assert verdict(hint(revision=3), reported=3) is Verdict.IGNORE, "the echo of our own report"
    assert verdict(hint(revision=3), pending=True) is Verdict.WAIT, "maybe the echo of a report in flight"
    assert verdict(hint(revision=3), known=2) is Verdict.RESYNC, "one of ours changed"
    assert verdict(hint(host=None)) is Verdict.RESYNC, "a server that does not say where the port is"
    assert verdict(hint()) is Verdict.EXPECT, "bound here: fetch it alone"
    assert verdict(hint(op="delete")) is Verdict.RESYNC
    assert verdict(hint(host="h2")) is Verdict.RESYNC, "l2 population on one of our networks"
    assert verdict(hint(host="h2", network_id="elsewhere")) is Verdict.IGNORE
    assert verdict(hint(op="create", host="")) is Verdict.IGNORE, "an unbound port has no tap and no FDB entry"
