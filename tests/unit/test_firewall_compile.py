"""The firewall compiler and planner: desired state -> nftables objects -> the smallest script."""

from __future__ import annotations

from dataclasses import replace

import pytest

from neutrino.agent.roles.firewall.compile import (
    MARK_TAG,
    Compiled,
    Ids,
    TableSpec,
    address_elements,
    allocate,
    compile_host,
    eui64_link_local,
    rule_match,
)
from neutrino.agent.roles.firewall.desired import Key, pieces, rank
from neutrino.agent.roles.firewall.plan import KernelTables, NftScript, owned, plan
from neutrino.contract.firewall import FirewallGroup, FirewallPort, FirewallRule, FirewallState
from neutrino.dataplane.nftables import NftChain, NftTable

NET = "0c9f0000-0000-4000-8000-000000000001"
WEB, DB = "5ec00000-0000-4000-8000-00000000000a", "5ec00000-0000-4000-8000-00000000000b"


def as_kernel(table: TableSpec) -> NftTable:
    """What reading the table back after loading it yields."""
    return NftTable(table.family, table.name, None,
                    {n: NftChain(n, c.hook, len(c.rules), c.comment) for n, c in table.chains.items()},
                    {n: s.elements for n, s in table.sets.items()},
                    {n: dict(m.elements) for n, m in table.maps.items()})


def port(n: int, groups: tuple[str, ...] = (WEB,), **kw: object) -> FirewallPort:
    base = FirewallPort(f"p{n}", f"tap{n:08d}-aa", NET, f"fa:16:3e:00:00:{n:02x}", (f"10.0.0.{n}", f"fd00::{n}"),
                        security_group_ids=groups, network_type="vxlan")
    return replace(base, **kw)  # type: ignore[arg-type]


def state(*ports: FirewallPort, rules: tuple[FirewallRule, ...] = (), members: tuple[str, ...] = ("10.0.0.1",),
          stateful: bool = True) -> FirewallState:
    return FirewallState("h", ports, (FirewallGroup(WEB, stateful, rules), FirewallGroup(DB, True, ())),
                         {WEB: members}, {"ag1": ("192.0.2.0/24",)})


@pytest.mark.parametrize(("rule", "expected"), [
    (FirewallRule("r", "ingress", "IPv4", 6, 22, 22, "203.0.113.0/24"),
     "meta nfproto ipv4 ip saddr 203.0.113.0/24 meta l4proto 6 th dport 22"),
    (FirewallRule("r", "egress", "IPv4", 17, 1000, 2000, "198.51.100.7/32"),
     "meta nfproto ipv4 ip daddr 198.51.100.7 meta l4proto 17 th dport 1000-2000"),
    (FirewallRule("r", "ingress", "IPv4", 132, 5000, None), "meta nfproto ipv4 meta l4proto 132 th dport 5000"),
    (FirewallRule("r", "ingress", "IPv4", 136, 1, 65535), "meta nfproto ipv4 meta l4proto 136"),
    (FirewallRule("r", "ingress", "IPv4", 33, 9, 10), "meta nfproto ipv4 meta l4proto 33 th dport 9-10"),
    (FirewallRule("r", "ingress", "IPv4", 1, 8, 0), "meta nfproto ipv4 meta l4proto 1 icmp type 8 icmp code 0"),
    (FirewallRule("r", "ingress", "IPv4", 1, 3, None), "meta nfproto ipv4 meta l4proto 1 icmp type 3"),
    (FirewallRule("r", "ingress", "IPv6", 58, 128, None), "meta nfproto ipv6 meta l4proto 58 icmpv6 type 128"),
    (FirewallRule("r", "ingress", "IPv6", 58), "meta nfproto ipv6 meta l4proto 58"),
    (FirewallRule("r", "ingress", "IPv4", 47), "meta nfproto ipv4 meta l4proto 47"),
    (FirewallRule("r", "ingress", "IPv4", 0), "meta nfproto ipv4"),
    (FirewallRule("r", "ingress", "IPv4", None, None, None, "0.0.0.0/0"), "meta nfproto ipv4"),
    (FirewallRule("r", "ingress", "IPv6", None, None, None, "2001:db8::/32"), "meta nfproto ipv6 ip6 saddr 2001:db8::/32"),
    (FirewallRule("r", "ingress", "IPv6", 6, 80, 80, remote_group_id=WEB),
     f"meta nfproto ipv6 ip6 saddr @sg-{WEB}-6 meta l4proto 6 th dport 80"),
    (FirewallRule("r", "egress", "IPv4", remote_address_group_id="ag1"), "meta nfproto ipv4 ip daddr @ag-ag1-4"),
])
def test_every_rule_form_compiles_to_its_match(rule: FirewallRule, expected: str) -> None:
    assert rule_match(rule) == expected


def test_ids_stay_where_they_are_and_new_ones_fill_gaps() -> None:
    # "gone" still holds 2 in the kernel: 2 is not free until its removal is applied.
    assert allocate(["a", "b", "c"], {"b": 1, "gone": 2}, 10) == {"b": 1, "a": 3, "c": 4}
    assert allocate(["a", "b", "c"], {"b": 1}, 10) == {"b": 1, "a": 2, "c": 3}
    assert allocate(["a", "b"], {"a": 1, "b": 1}, 10) == {"a": 1, "b": 2}  # held twice (a hand edit)
    with pytest.raises(ValueError):
        allocate(["a", "b"], {}, 1)


def test_link_local_address_is_derived_from_the_mac() -> None:
    assert eui64_link_local("fa:16:3e:00:00:0a") == "fe80::f816:3eff:fe00:a"


def test_covered_addresses_leave_the_set_and_neighbours_stay_apart() -> None:
    assert address_elements(["10.0.0.5", "10.0.0.0/24", "10.1.0.1/32", "fd00::1"], 4) == {"10.0.0.0/24", "10.1.0.1"}
    # A member joining next to another is one more element, never a merged prefix.
    assert address_elements(["10.60.0.2", "10.60.0.3"], 4) == {"10.60.0.2", "10.60.0.3"}


def test_filtered_port_gets_spoof_and_policy_chains_trusted_port_none() -> None:
    router = port(2, (), trusted=True)
    open_port = port(3, (), port_security_enabled=False)
    compiled = compile_host(state(port(1), router, open_port), Ids())
    assert set(compiled.bridge.maps["from_port"].elements.values()) == {
        "goto from-tap00000001-aa", "goto trusted"}
    assert compiled.bridge.maps["port_marks"].elements["tap00000002-aa"] == "0"
    assert {c for c in compiled.inet.chains if c.startswith(("in-", "out-"))} == {"in-tap00000001-aa",
                                                                                  "out-tap00000001-aa"}
    spoof = compiled.bridge.chains["from-tap00000001-aa"].rules
    assert "ether type ip ether saddr . ip saddr != { fa:16:3e:00:00:01 . 10.0.0.1 } drop" in spoof
    assert compiled.ids.marks == {"tap00000001-aa": MARK_TAG | 1}
    assert compiled.inet.maps["zones"].elements == {"brq0c9f0000-00": "1"}


def test_allowed_address_pairs_extend_what_a_port_may_send() -> None:
    vip = port(1, allowed_address_pairs=(("10.0.0.100", "fa:16:3e:00:00:01"), ("10.9.0.0/24", "fa:16:3e:aa:aa:aa")))
    spoof = compile_host(state(vip), Ids()).bridge.chains["from-tap00000001-aa"].rules
    assert ("ether type ip ether saddr . ip saddr != { fa:16:3e:00:00:01 . 10.0.0.1, fa:16:3e:00:00:01 . 10.0.0.100, "
            "fa:16:3e:aa:aa:aa . 10.9.0.0/24 } drop") in spoof
    assert "ether saddr != { fa:16:3e:00:00:01, fa:16:3e:aa:aa:aa } drop" in spoof


def test_stateless_group_has_no_conntrack_shortcut() -> None:
    rules = (FirewallRule("r", "ingress", "IPv4", 1),)
    chains = compile_host(state(port(1), rules=rules), Ids()).inet.chains
    stateful = chains["in-tap00000001-aa"].rules
    stateless = compile_host(state(port(1), rules=rules, stateful=False), Ids()).inet.chains["in-tap00000001-aa"].rules
    assert stateful[0] == "jump common-in-stateful"
    assert chains["common-in-stateful"].rules[0] == "ct state established,related accept"
    assert stateless[0] == "jump common-in-stateless"
    assert not any(r.startswith("ct state") for r in chains["common-in-stateless"].rules)
    assert stateless[-2:] == (f"jump grp-{WEB}-in", "drop")
    group = compile_host(state(port(1), rules=rules, stateful=False), Ids()).inet.chains[f"grp-{WEB}-in"].rules
    assert group == ("meta nfproto ipv4 meta l4proto 1 accept", "return")


def kernel(compiled: Compiled) -> KernelTables:
    return KernelTables(as_kernel(compiled.bridge), as_kernel(compiled.inet))


def plans(compiled: Compiled, actual: KernelTables) -> dict[Key, tuple[NftScript, ...]]:
    wanted = pieces(compiled)
    keys = wanted.keys() | owned(actual)
    return {k: p for k in keys if (p := plan(k, wanted.get(k), actual))}


def test_unchanged_state_plans_nothing() -> None:
    compiled = compile_host(state(port(1), port(2)), Ids())
    assert plans(compiled, kernel(compiled)) == {}
    assert owned(kernel(compiled)) == set(pieces(compiled))


def test_missing_tables_are_created_and_ports_join_them() -> None:
    compiled = compile_host(state(port(1)), Ids())
    planned = plans(compiled, KernelTables())
    assert planned[("table", "inet")][0].text.startswith("add table inet neutrino-fw\n")
    port_script = planned[("port", "tap00000001-aa")][0].text
    # One transaction holds the port's mark (bridge) and its chains (inet).
    assert "add chain bridge neutrino-fw from-tap00000001-aa" in port_script
    assert "add chain inet neutrino-fw in-tap00000001-aa" in port_script
    assert 'add element bridge neutrino-fw port_marks { "tap00000001-aa" : 1313210369 }' in port_script
    assert rank(("table", "inet")) < rank(("set", "x")) < rank(("port", "tap00000001-aa"))


def test_membership_change_is_one_set_element() -> None:
    rules = (FirewallRule("r", "ingress", "IPv4", 1, remote_group_id=WEB),)
    ports = [port(n) for n in range(1, 40)]
    before = compile_host(state(*ports, rules=rules), Ids())
    after = compile_host(state(*ports, rules=rules, members=("10.0.0.1", "10.0.0.77")), before.ids)
    assert plans(after, kernel(before)) == {
        ("set", f"sg-{WEB}-4"): (NftScript(f"add element inet neutrino-fw sg-{WEB}-4 {{ 10.0.0.77 }}\n"),)}
    neighbour = compile_host(state(*ports, rules=rules, members=("10.0.0.1", "10.0.0.0")), before.ids)
    assert plans(neighbour, kernel(before)) == {
        ("set", f"sg-{WEB}-4"): (NftScript(f"add element inet neutrino-fw sg-{WEB}-4 {{ 10.0.0.0 }}\n"),)}
    assert plans(before, kernel(after)) == {
        ("set", f"sg-{WEB}-4"): (NftScript(f"delete element inet neutrino-fw sg-{WEB}-4 {{ 10.0.0.77 }}\n", True),)}


def test_rule_change_rewrites_one_group_chain_whatever_the_number_of_ports() -> None:
    ports = [*(port(n) for n in range(1, 30)), port(30, (DB,))]
    before = compile_host(state(*ports), Ids())
    after = compile_host(state(*ports, rules=(FirewallRule("r", "ingress", "IPv4", 6, 22, 22),)), before.ids)
    planned = plans(after, kernel(before))
    assert list(planned) == [("group", WEB)]
    (script,) = planned[("group", WEB)]
    assert script.text.startswith(f"flush chain inet neutrino-fw grp-{WEB}-in\n") and script.removes
    assert "tap000000" not in script.text and f"grp-{WEB}-out" not in script.text


def test_hand_deleted_rule_is_planned_back() -> None:
    compiled = compile_host(state(port(1)), Ids())
    actual = kernel(compiled)
    assert actual.inet is not None
    chain = actual.inet.chains["in-tap00000001-aa"]
    damaged = replace(actual, inet=replace(actual.inet, chains={
        **actual.inet.chains, chain.name: replace(chain, rule_count=chain.rule_count - 1)}))
    assert list(plans(compiled, damaged)) == [("port", "tap00000001-aa")]


def test_removed_port_loses_elements_then_chains_and_keeps_others_marks() -> None:
    before = compile_host(state(port(1), port(2)), Ids())
    after = compile_host(state(port(2)), before.ids)
    assert after.ids.marks["tap00000002-aa"] == before.ids.marks["tap00000002-aa"]
    planned = plans(after, kernel(before))
    assert list(planned) == [("port", "tap00000001-aa")]
    script = planned[("port", "tap00000001-aa")][0].text
    assert 'delete element bridge neutrino-fw from_port { "tap00000001-aa" }' in script
    assert "delete element inet neutrino-fw egress_ports { 1313210369 }" in script
    assert script.index("from_port") < script.index("delete chain bridge neutrino-fw from-tap00000001-aa")


def _element_keys(script: str, verb: str) -> set[tuple[str, str]]:
    """(map, key) of every ``add``/``delete element`` line of an inet script."""
    out = set()
    for line in script.splitlines():
        if line.startswith(f"{verb} element inet "):
            words = line.split()
            out.add((words[4], words[6]))
    return out


def test_a_removed_ports_mark_is_not_handed_to_a_new_port_in_the_same_round() -> None:
    # The removal of tap1 deletes the inet elements keyed by its mark; were tap3 given that mark in
    # the same round, the deletion (in whichever order the two scripts run) would remove tap3's.
    before = compile_host(state(port(1), port(2)), Ids())
    after = compile_host(state(port(2), port(3)), before.ids)
    assert after.ids.marks["tap00000003-aa"] not in before.ids.marks.values()
    planned = plans(after, kernel(before))
    removal = planned[("port", "tap00000001-aa")][0].text
    addition = planned[("port", "tap00000003-aa")][0].text
    deleted, added = _element_keys(removal, "delete"), _element_keys(addition, "add")
    assert deleted and added and not deleted & added
    assert not _element_keys(addition, "delete")  # nothing of another port replaced
    # Once the kernel no longer holds tap1's mark, it is free again.
    later = compile_host(state(port(2), port(3), port(4)), after.ids)
    assert later.ids.marks["tap00000004-aa"] == before.ids.marks["tap00000001-aa"]
