"""The metering role's pure parts: rules as nftables matches, the planner, and Neutron's report bookkeeping."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from neutrino.agent.roles.metering.actions import AwaitNamespace, LoadMeters, RemoveMeters
from neutrino.agent.roles.metering.desired import BASE_CHAIN, owned_by, router_meters, rule_match, script
from neutrino.agent.roles.metering.plan import MeteringView, plan
from neutrino.agent.roles.metering.report import MeterBook
from neutrino.bus.factory import build_bus
from neutrino.bus.memory import MemoryBroker
from neutrino.contract import codec
from neutrino.contract.metering import MeteringLabel, MeteringReport, MeteringRouter, MeteringRule
from neutrino.dataplane.nftables import NftChain, NftTable
from neutrino.server.metering_reports import REPORTS_PATTERN, REPORTS_QUEUE, MeteringReports

GW = "d0bf28bd-6b00-4c43-9c43-1b8a4c0f0a11"
LABEL = "1b3c5d7e-0000-4000-8000-000000000001"
OTHER = "1b3c5d7e-0000-4000-8000-000000000002"


def rule(direction: str, *, excluded: bool = False, remote: str | None = None, source: str | None = None,
         destination: str | None = None) -> MeteringRule:
    return MeteringRule(f"r-{direction}-{remote}-{source}-{destination}", direction, excluded, remote, source,
                        destination)


def router(*labels: MeteringLabel, gw: str | None = GW) -> MeteringRouter:
    return MeteringRouter("9450e960-0000-4000-8000-00000000000a", "proj", "r", gw, labels)


def test_rules_match_as_neutrons_iptables_driver_on_the_gateway_device() -> None:
    assert rule_match(rule("egress", destination="198.18.0.0/24"), "qg-x") == 'oifname "qg-x" ip daddr 198.18.0.0/24'
    assert rule_match(rule("ingress", source="10.0.0.7/24", destination="2001:db8::/64"), "qg-x") is None
    # remote_ip_prefix: the source of egress traffic, the destination of ingress traffic (Neutron's reading).
    assert rule_match(rule("egress", remote="10.0.0.0/8"), "qg-x") == 'oifname "qg-x" ip saddr 10.0.0.0/8'
    assert rule_match(rule("ingress", remote="2001:db8::/64"), "qg-x") == 'iifname "qg-x" ip6 daddr 2001:db8::/64'


def test_excluded_rules_come_first_and_each_label_counts_a_packet_once() -> None:
    label = MeteringLabel(LABEL, rules=(rule("egress", destination="198.18.0.0/24"),
                                        rule("egress", destination="198.18.0.2/32", excluded=True)))
    wish = router_meters(router(label))
    assert wish is not None
    (_, rules), = wish.chains
    assert rules[0].endswith("ip daddr 198.18.0.2/32 return")
    assert rules[1].endswith(f'counter name "m-{LABEL}-egress" return')
    assert router_meters(router(label, gw=None)) is None
    assert router_meters(router()) is None


def test_plan_waits_for_the_namespace_loads_once_and_keeps_counters_that_stay() -> None:
    first = router_meters(router(MeteringLabel(LABEL, rules=(rule("egress", destination="198.18.0.0/24"),))),
                          owner="neutrino:net-1")
    assert first is not None
    ns = first.netns
    assert plan(ns, first, MeteringView()) == (AwaitNamespace(ns),)
    (load,) = plan(ns, first, MeteringView(frozenset({ns})))
    assert isinstance(load, LoadMeters) and set(load.new_counters) == set(first.counters)
    loaded = NftTable("inet", "neutrino-metering", chains={
        BASE_CHAIN: NftChain(BASE_CHAIN, "filter forward 0", 2, first.digest),
        f"label-{LABEL}": NftChain(f"label-{LABEL}", None, 1)},
        counters={c: (3, 300) for c in first.counters})
    assert plan(ns, first, MeteringView(frozenset({ns}), {ns: loaded})) == ()
    # The mark says whose table it is (simulated hosts share one kernel).
    assert owned_by(loaded, "neutrino:net-1") and not owned_by(loaded, "neutrino:net-2")
    # Drift: a rule removed by hand is put back.
    drifted = NftTable("inet", "neutrino-metering", chains={**loaded.chains, f"label-{LABEL}": NftChain(
        f"label-{LABEL}", None, 0)}, counters=loaded.counters)
    assert plan(ns, first, MeteringView(frozenset({ns}), {ns: drifted}))
    # Another label: its counters are new, the first label's are declared again (kept), not re-made.
    second = router_meters(router(*first.labels, MeteringLabel(OTHER)))
    assert second is not None
    body, created = script(second, loaded)
    assert set(created) == {f"m-{OTHER}-ingress", f"m-{OTHER}-egress"}
    assert "delete counter" not in body and "delete table" not in body
    # The first label goes: its chain and counters are deleted after the jump to it is flushed.
    third = router_meters(router(MeteringLabel(OTHER)))
    assert third is not None
    body, _ = script(third, loaded)
    assert body.index(f"flush chain inet neutrino-metering {BASE_CHAIN}") < body.index(
        f"delete chain inet neutrino-metering label-{LABEL}") < body.index(f"delete counter inet neutrino-metering m-{LABEL}")
    assert plan(ns, None, MeteringView(frozenset({ns}), {ns: loaded})) == (RemoveMeters(ns),)
    assert plan(ns, None, MeteringView(frozenset({ns}))) == ()


def test_book_reports_what_grew_between_reports_as_neutron_does() -> None:
    label = MeteringLabel(LABEL, name="web", rules=(rule("egress", destination="198.18.0.0/24"),))
    wish = router_meters(router(label))
    assert wish is not None
    egress, ingress = f"m-{LABEL}-egress", f"m-{LABEL}-ingress"
    book = MeterBook("net-1")
    book.created(wish.netns, wish.counters)
    book.measure(100, [(wish, {egress: (2, 200), ingress: (1, 50)})])
    book.measure(130, [(wish, {egress: (5, 500), ingress: (1, 50)})])
    ((event, report),) = book.flush(130, 300)
    assert event == "l3.meter"
    assert report == MeteringReport(pkts=6, bytes=550, time=30, first_update=100, last_update=130, host="net-1",
                                    label_id=LABEL, project_id="proj", tenant_id="proj")
    assert set(codec.encode(report)) == {"pkts", "bytes", "time", "first_update", "last_update", "host",
                                         "label_id", "project_id", "tenant_id"}
    # Zeroed after a report; a counter made again (smaller) counts from zero.
    book.measure(160, [(wish, {egress: (1, 100), ingress: (1, 50)})])
    ((_, report),) = book.flush(160, 300)
    assert (report.pkts, report.bytes) == (1, 100)
    # A report the bus refused goes with the next one.
    book.measure(190, [(wish, {egress: (3, 300), ingress: (1, 50)})])
    ((event, unsent),) = book.flush(190, 300)
    book.give_back(event, unsent)
    book.measure(220, [(wish, {egress: (4, 400), ingress: (1, 50)})])
    ((_, report),) = book.flush(220, 300)
    assert (report.pkts, report.bytes, report.time) == (3, 300, 60)
    # Counters an earlier process made count from their first reading here.
    restarted = MeterBook("net-1")
    restarted.measure(200, [(wish, {egress: (9, 900), ingress: (0, 0)})])
    ((_, report),) = restarted.flush(200, 300)
    assert (report.pkts, report.bytes) == (0, 0)


def test_granular_reports_cut_the_traffic_by_label_router_and_project() -> None:
    wish = router_meters(router(MeteringLabel(LABEL, name="web")))
    assert wish is not None
    book = MeterBook("net-1", granular=True)
    book.created(wish.netns, wish.counters)
    book.measure(100, [(wish, {f"m-{LABEL}-egress": (2, 200)})])
    reports = dict(book.flush(100, 300))
    assert set(reports) == {"l3.meter.label", "l3.meter.router", "l3.meter.project", "l3.meter.label_project",
                            "l3.meter.router_label"}
    assert all(r.bytes == 200 for r in reports.values())
    assert reports["l3.meter.router_label"].router_id == wish.router_id
    assert reports["l3.meter.router_label"].label_id == LABEL
    assert reports["l3.meter.label"].label_name == "web"
    assert reports["l3.meter.project"].project_id == "proj"


@pytest.mark.asyncio(loop_scope="function")
async def test_the_servers_consumer_counts_each_label_report_once_across_competing_processes() -> None:
    """Two API processes' consumers on the in-process bus's named queue: each report is counted by one."""
    broker = MemoryBroker()
    agent, api1, api2 = (build_bus("memory://", sender=s, broker=broker) for s in ("agent", "api-1", "api-2"))
    registries = [CollectorRegistry(), CollectorRegistry()]
    consumers = [MeteringReports(r) for r in registries]
    for bus, consumer in zip((agent, api1, api2), (None, *consumers), strict=True):
        await bus.start()
        if consumer is not None:
            await bus.subscribe(REPORTS_PATTERN, consumer, queue=REPORTS_QUEUE)
    report = MeteringReport(pkts=3, bytes=3000, time=2, first_update=1, last_update=3, host="net-1",
                            label_id=LABEL, project_id="proj", tenant_id="proj")
    for event_type in ("l3.meter", "l3.meter", "l3.meter.router"):  # a router report is not a label's total
        await agent.publish(f"metering.{event_type}", {"event_type": event_type, "payload": codec.encode(report)})
    for _ in range(100):
        if sum(c.heard for c in consumers) == 3:
            break
        await asyncio.sleep(0.02)
    assert sum(c.heard for c in consumers) == 3
    assert sum(r.get_sample_value("neutrino_metering_label_bytes_total", {"label_id": LABEL, "host": "net-1"}) or 0
               for r in registries) == 6000
    for bus in (agent, api1, api2):
        await bus.close()
