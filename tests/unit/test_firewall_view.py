"""The firewall role's view of what it applied: planning against it is planning against the kernel."""

from __future__ import annotations

from collections.abc import Mapping

from neutrino.agent.roles.firewall.compile import Ids, compile_host
from neutrino.agent.roles.firewall.desired import Key, Piece, pieces, rank
from neutrino.agent.roles.firewall.plan import KernelTables, owned, plan
from neutrino.agent.roles.firewall.view import AppliedView
from neutrino.contract.firewall import FirewallRule
from tests.unit.test_firewall_compile import DB, WEB, as_kernel, port, state


def apply_all(view: AppliedView, wanted: Mapping[Key, Piece]) -> int:
    """Plan every object against the view and advance it with those that needed a script, as a
    round does (updates by rank, then removals); the number of scripts."""
    actual = view.tables()
    keys = set(wanted) | owned(actual)
    scripts = 0
    for key in sorted((k for k in keys if k in wanted), key=rank) + \
            sorted((k for k in keys if k not in wanted), key=rank, reverse=True):
        if plan(key, wanted.get(key), actual):
            scripts += 1
            view.advance(key, wanted.get(key))
    return scripts


def test_a_view_advanced_by_what_was_applied_plans_nothing_more_and_equals_a_fresh_read() -> None:
    view = AppliedView(KernelTables())
    first = compile_host(state(port(1), port(2), port(3, groups=(DB,))), Ids())
    assert apply_all(view, pieces(first, "o")) > 0
    assert apply_all(view, pieces(first, "o")) == 0

    # A rule, a member, a port leaving and one arriving, another changing groups.
    rule = FirewallRule("r1", "ingress", "IPv4", 1, remote_group_id=WEB)
    second = compile_host(state(port(1, groups=(WEB, DB)), port(3, groups=(DB,)), port(4), rules=(rule,),
                                members=("10.0.0.1", "10.0.0.4")), view.ids())
    changed = apply_all(view, pieces(second, "o"))
    assert 0 < changed < len(pieces(second, "o"))
    assert apply_all(view, pieces(second, "o")) == 0
    assert view.ids() == Ids(second.ids.marks, second.ids.zones)

    # What the kernel would list after loading ``second`` whole is what the view holds.
    fresh = KernelTables(as_kernel(second.bridge), as_kernel(second.inet))
    held = view.tables()
    for family in ("bridge", "inet"):
        want, have = fresh.table(family), held.table(family)
        assert want is not None and have is not None
        assert dict(have.chains) == dict(want.chains)
        assert dict(have.sets) == dict(want.sets)
        assert {k: dict(v) for k, v in have.maps.items()} == {k: dict(v) for k, v in want.maps.items()}


def test_removing_everything_leaves_an_empty_view() -> None:
    view = AppliedView(KernelTables())
    apply_all(view, pieces(compile_host(state(port(1), port(2)), Ids()), "o"))
    apply_all(view, {})
    assert view.tables() == KernelTables()
