"""The pure decisions behind QoS rules, availability zones and agent scheduling (no database)."""

from __future__ import annotations

import datetime as dt

import pytest

from neutrino.resources.qos import BANDWIDTH_LIMIT, DSCP_MARKING, MINIMUM_BANDWIDTH, DscpMark
from neutrino.resources.types import InvalidValue
from neutrino.services.availability_zones import Zone, ZoneReport, zones_from_reports
from neutrino.services.qos import QoSRuleParameterConflict, QoSRulesConflict, new_rule, rule_conflict
from neutrino.services.scheduling import AgentHealth, Candidate, any_available, choose_agents, dead_agents


def test_least_loaded_agents_are_chosen_one_per_zone_first() -> None:
    pool = [Candidate("a", "z1", 3), Candidate("b", "z1", 0), Candidate("c", "z2", 5), Candidate("d", "z2", 1)]
    assert choose_agents(pool, 1) == ["b"]
    assert choose_agents(pool, 2) == ["b", "d"]
    assert choose_agents(pool, 3) == ["b", "d", "a"]
    assert choose_agents(pool, 9) == ["b", "d", "a", "c"]


def test_zone_hints_restrict_the_choice_and_may_leave_nothing() -> None:
    pool = [Candidate("a", "z1", 0), Candidate("b", "z2", 7)]
    assert choose_agents(pool, 1, ["z2"]) == ["b"]
    assert choose_agents(pool, 1, ["elsewhere"]) == []


def test_ties_go_to_the_smaller_id_so_every_server_agrees() -> None:
    assert choose_agents([Candidate("y", None, 0), Candidate("x", None, 0)], 1) == ["x"]


def test_zones_are_per_resource_and_available_while_one_agent_is_up() -> None:
    zones = zones_from_reports([
        ZoneReport("DHCP agent", "nova", False), ZoneReport("DHCP agent", "nova", True),
        ZoneReport("L3 agent", "nova", False), ZoneReport("Linux bridge agent", "other", True),
        ZoneReport("L3 agent", None, True),
    ])
    assert zones == [Zone("nova", "network", "available"), Zone("nova", "router", "unavailable")]


def test_one_rule_per_type_and_direction() -> None:
    first = new_rule(BANDWIDTH_LIMIT, "p", "r1", {"max_kbps": 1000})
    assert (first.direction, first.values) == ("egress", {"max_kbps": 1000, "max_burst_kbps": 0})
    assert isinstance(rule_conflict(new_rule(BANDWIDTH_LIMIT, "p", "r2", {"max_kbps": 5}), [first]),
                      QoSRulesConflict)
    assert rule_conflict(new_rule(BANDWIDTH_LIMIT, "p", "r2", {"max_kbps": 5, "direction": "ingress"}),
                         [first]) is None
    # Updating a rule never conflicts with itself.
    assert rule_conflict(new_rule(BANDWIDTH_LIMIT, "p", "r1", {"max_kbps": 5}, first), [first]) is None
    dscp = new_rule(DSCP_MARKING, "p", "d1", {"dscp_mark": 26})
    assert dscp.direction == "" and isinstance(
        rule_conflict(new_rule(DSCP_MARKING, "p", "d2", {"dscp_mark": 10}), [first, dscp]), QoSRulesConflict)


def test_minimum_may_not_exceed_maximum_in_either_order() -> None:
    limit = new_rule(BANDWIDTH_LIMIT, "p", "r1", {"max_kbps": 1000})
    too_high = rule_conflict(new_rule(MINIMUM_BANDWIDTH, "p", "m1", {"min_kbps": 2000}), [limit])
    assert isinstance(too_high, QoSRuleParameterConflict)
    assert "restricts the bandwidth to 1000" in too_high.msg
    minimum = new_rule(MINIMUM_BANDWIDTH, "p", "m1", {"min_kbps": 500})
    assert rule_conflict(minimum, [limit]) is None
    assert isinstance(rule_conflict(new_rule(BANDWIDTH_LIMIT, "p", "r1", {"max_kbps": 100}, limit), [limit, minimum]),
                      QoSRuleParameterConflict)


def test_dscp_marks_are_the_standard_code_points() -> None:
    assert DscpMark().convert("26") == 26
    for bad in (27, 64, -1, "af11", True):
        with pytest.raises(InvalidValue):
            DscpMark().convert(bad)


# ---- failover: which agents are dead ------------------------------------------------------------

T0 = dt.datetime(2030, 1, 1, 12, 0, 0)
DOWN = dt.timedelta(seconds=75)


def health(agent_id: str, *, silent: float, started: float = 3600, up: bool = True, hosted: int = 0) -> AgentHealth:
    """An agent last heard ``silent`` seconds before T0, started ``started`` seconds before T0."""
    return AgentHealth(agent_id, T0 - dt.timedelta(seconds=silent), T0 - dt.timedelta(seconds=started), up, hosted)


def test_agents_are_dead_after_twice_the_down_time_not_before() -> None:
    agents = [health("b", silent=151), health("a", silent=149), health("c", silent=80), health("d", silent=0)]
    assert dead_agents(agents, T0, DOWN) == ["b"]  # 'c' is down (not alive) but not dead yet


def test_a_starting_dhcp_agent_gets_two_seconds_per_network_and_disabled_l3_agents_keep_routers() -> None:
    starting = health("s", silent=200, started=155, hosted=3)  # 150 s + 3 * 2 s of grace > 155 s
    started = health("t", silent=200, started=157, hosted=3)
    assert dead_agents([starting, started], T0, DOWN, startup_grace_per_item=2.0) == ["t"]
    assert dead_agents([starting, started], T0, DOWN) == ["s", "t"]  # L3: no start-up grace
    disabled = health("x", silent=500, up=False)
    assert dead_agents([disabled], T0, DOWN) == ["x"]
    assert dead_agents([disabled], T0, DOWN, admin_up_only=True) == []


def test_failover_needs_an_agent_that_is_alive_or_starting() -> None:
    assert any_available([health("a", silent=500), health("b", silent=74)], T0, DOWN, 2.0)
    assert any_available([health("a", silent=500, started=100)], T0, DOWN, 2.0)
    assert not any_available([health("a", silent=500), health("b", silent=76)], T0, DOWN, 2.0)
