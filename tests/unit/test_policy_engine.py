"""The policy engine: override files, attribute rules, read filtering and its fast path."""

from __future__ import annotations

import json

import pytest

from neutrino.errors import PolicyNotAuthorized
from neutrino.policy.defaults import DEFAULT_RULES
from neutrino.policy.engine import (
    PolicyEngine,
    PolicyFileError,
    attribute_rule_names,
    compile_rules,
    load_override_file,
)
from neutrino.policy.rules import Credentials, PolicyRuleError, PolicySyntaxError, UnknownRuleError

ADMIN = Credentials("admin", "admin-proj", frozenset({"admin", "manager", "member", "reader"}))
MEMBER = Credentials("alice", "proj-a", frozenset({"member", "reader"}))
SERVICE = Credentials("nova", "service-proj", frozenset({"service"}))


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return PolicyEngine()


# ---- construction and override files ------------------------------------------------------------


def test_every_default_rule_compiles_and_resolves():
    assert len(compile_rules(DEFAULT_RULES)) == len(DEFAULT_RULES)


def test_override_replaces_a_default_rule(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text('"create_network": "rule:admin_only"\n')
    engine = PolicyEngine.from_override_file(path)
    assert not engine.check(MEMBER, "create_network", {"project_id": "proj-a"})
    assert engine.check(ADMIN, "create_network", {"project_id": "proj-a"})
    assert engine.rule_texts["create_network"] == "rule:admin_only"
    assert PolicyEngine().check(MEMBER, "create_network", {"project_id": "proj-a"})


def test_override_may_define_new_rules_used_by_other_overrides(tmp_path):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({
        "netops": "role:netops",
        "create_network:shared": "rule:admin_only or rule:netops",
    }))
    engine = PolicyEngine.from_override_file(path)
    netops = Credentials("bob", "proj-a", frozenset({"member", "reader", "netops"}))
    body = {"project_id": "proj-a", "shared": True}
    engine.enforce_attributes(netops, "create_network", body, body, {"shared": False})
    with pytest.raises(PolicyNotAuthorized):
        engine.enforce_attributes(MEMBER, "create_network", body, body, {"shared": False})


def test_json_content_in_a_yaml_file_is_accepted(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text('{"get_agent": "@"}')
    assert load_override_file(path) == {"get_agent": "@"}


def test_empty_override_file_means_defaults(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("# nothing overridden\n")
    assert load_override_file(path) == {}
    assert PolicyEngine.from_override_file(path).rule_texts == dict(DEFAULT_RULES)


def test_no_override_file_means_defaults():
    assert PolicyEngine.from_override_file(None).rule_texts == dict(DEFAULT_RULES)


def test_unknown_rule_reference_in_override_fails_at_load_naming_rule_and_file(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text('"create_port": "rule:net_ownr or rule:admin_only"\n')
    with pytest.raises(UnknownRuleError) as raised:
        PolicyEngine.from_override_file(path)
    message = str(raised.value)
    assert "create_port" in message and "rule:net_ownr" in message and str(path) in message


def test_syntax_error_in_override_fails_at_load_naming_the_rule(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text('"get_network": "(role:admin or role:reader"\n')
    with pytest.raises(PolicySyntaxError, match="get_network"):
        PolicyEngine.from_override_file(path)


def test_reference_cycle_in_override_fails_at_load(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text('"admin_only": "rule:context_is_admin"\n"context_is_admin": "rule:admin_only"\n')
    with pytest.raises(PolicyRuleError, match="cycle"):
        PolicyEngine.from_override_file(path)


def test_cycle_detection_does_not_flag_shared_references():
    # A diamond (two rules using the same rule) is not a cycle.
    PolicyEngine({"a": "rule:b or rule:c", "b": "rule:d", "c": "rule:d", "d": "@"})


@pytest.mark.parametrize("content, suffix, expected", [
    ("- a\n- b\n", ".yaml", "must map rule names"),
    ('"get_network": true\n', ".yaml", "must be a string"),
    ('"get_network": ["role:admin"]\n', ".yaml", "must be a string"),
    ('"get_network": "role:admin\n  bad: [\n', ".yaml", "not valid YAML"),
    ('{"get_network": }', ".json", "not valid JSON"),
    ("1: role:admin\n", ".yaml", "rule name"),
])
def test_malformed_override_file_is_rejected(tmp_path, content, suffix, expected):
    path = tmp_path / f"policy{suffix}"
    path.write_text(content)
    with pytest.raises(PolicyFileError, match=expected):
        load_override_file(path)


def test_missing_override_file_is_rejected(tmp_path):
    with pytest.raises(PolicyFileError, match="cannot read"):
        load_override_file(tmp_path / "absent.yaml")


# ---- plain actions ------------------------------------------------------------------------------


def test_enforce_raises_policy_not_authorized_with_neutron_message(engine):
    with pytest.raises(PolicyNotAuthorized) as raised:
        engine.enforce(MEMBER, "delete_network", {"project_id": "proj-b"})
    assert str(raised.value) == "delete_network is disallowed by policy"
    engine.enforce(MEMBER, "delete_network", {"project_id": "proj-a"})


def test_action_without_rule_falls_back_to_default_rule(engine):
    assert engine.check(MEMBER, "frobnicate_network", {"project_id": "proj-a"})
    assert not engine.check(MEMBER, "frobnicate_network", {"project_id": "proj-b"})
    assert engine.check(ADMIN, "frobnicate_network", {"project_id": "proj-b"})


def test_action_without_rule_is_denied_when_there_is_no_default_rule():
    engine = PolicyEngine({"admin_only": "role:admin"})
    assert not engine.check(ADMIN, "anything", {})


# ---- which attribute rules a request triggers ---------------------------------------------------


KNOWN = {"create_network:shared", "create_router:external_gateway_info",
         "create_router:external_gateway_info:enable_snat",
         "create_router:external_gateway_info:external_fixed_ips",
         "create_port:fixed_ips", "create_port:fixed_ips:ip_address", "create_port:fixed_ips:subnet_id",
         "update_network:shared"}


def test_attribute_equal_to_its_default_triggers_no_rule():
    assert attribute_rule_names("create_network", {"shared": False, "name": "n"}, {"shared": False}, KNOWN) == ()
    assert attribute_rule_names("create_network", {"shared": True}, {"shared": False}, KNOWN) == (
        "create_network:shared",)


def test_boolean_default_is_not_confused_with_integer():
    assert attribute_rule_names("create_network", {"shared": 0}, {"shared": False}, KNOWN) == (
        "create_network:shared",)


def test_on_update_every_attribute_sent_counts():
    assert attribute_rule_names("update_network", {"shared": False}, {}, KNOWN) == ("update_network:shared",)


def test_attribute_absent_from_request_triggers_nothing():
    assert attribute_rule_names("create_network", {"name": "n"}, {}, KNOWN) == ()


def test_dict_sub_keys_trigger_their_rules_whatever_their_value():
    request = {"external_gateway_info": {"network_id": "ext", "enable_snat": True}}
    assert attribute_rule_names("create_router", request, {"external_gateway_info": None}, KNOWN) == (
        "create_router:external_gateway_info", "create_router:external_gateway_info:enable_snat")


def test_list_of_dicts_triggers_rules_for_the_union_of_their_keys():
    request = {"fixed_ips": [{"subnet_id": "s1"}, {"subnet_id": "s2", "ip_address": "10.0.0.5"}]}
    assert attribute_rule_names("create_port", request, {}, KNOWN) == (
        "create_port:fixed_ips", "create_port:fixed_ips:subnet_id", "create_port:fixed_ips:ip_address")


def test_sub_keys_of_a_default_valued_attribute_trigger_nothing():
    request = {"fixed_ips": []}
    assert attribute_rule_names("create_port", request, {"fixed_ips": []}, KNOWN) == ()


def test_failed_attribute_rule_reports_the_top_level_action(engine):
    body = {"project_id": "proj-a", "name": "net", "shared": True}
    with pytest.raises(PolicyNotAuthorized) as raised:
        engine.enforce_attributes(MEMBER, "create_network", body, body, {"shared": False})
    assert str(raised.value) == "create_network is disallowed by policy"
    assert raised.value.kwargs == {"action": "create_network"}


def test_attribute_rules_see_request_values_over_the_stored_object(engine):
    stored = {"id": "rbac-1", "project_id": "proj-a", "target_tenant": "proj-b"}
    engine.enforce_attributes(MEMBER, "update_rbac_policy", stored, {"target_tenant": "proj-c"})
    with pytest.raises(PolicyNotAuthorized, match="update_rbac_policy"):
        engine.enforce_attributes(MEMBER, "update_rbac_policy", stored, {"target_tenant": "*"})
    engine.enforce_attributes(ADMIN, "update_rbac_policy", stored, {"target_tenant": "*"})


# ---- read filtering -----------------------------------------------------------------------------

PORT_FIELDS = ("id", "name", "project_id", "network_id", "tags", "binding:host_id", "binding:vif_type",
               "binding:vif_details", "binding:profile", "binding:vnic_type")
BINDING_HIDDEN = {"binding:host_id", "binding:vif_type", "binding:vif_details", "binding:profile"}


def _port(project: str, network_project: str) -> dict:
    return {"id": "p1", "name": "", "project_id": project, "network_id": "n1",
            "network:project_id": network_project, "tags": [], "binding:host_id": "h1",
            "binding:vif_type": "bridge", "binding:vif_details": {}, "binding:profile": {},
            "binding:vnic_type": "normal"}


def test_binding_details_are_readable_only_by_admin_and_service(engine):
    port = _port("proj-a", "proj-a")
    assert engine.readable_attributes(ADMIN, "port", port, PORT_FIELDS) == set(PORT_FIELDS)
    assert engine.readable_attributes(SERVICE, "port", port, PORT_FIELDS) == set(PORT_FIELDS) - {"tags"}
    assert engine.readable_attributes(MEMBER, "port", port, PORT_FIELDS) == set(PORT_FIELDS) - BINDING_HIDDEN


def test_filter_decides_caller_only_rules_once_and_keeps_target_rules_per_object(engine):
    member_filter = engine.attribute_filter(MEMBER, "port", PORT_FIELDS)
    assert member_filter.never == BINDING_HIDDEN
    assert [attr for attr, _ in member_filter.per_object] == ["tags"]
    assert "tags" in member_filter.readable(_port("proj-a", "proj-b"))
    assert member_filter.hidden(_port("proj-b", "proj-c")) == BINDING_HIDDEN | {"tags"}
    admin_filter = engine.attribute_filter(ADMIN, "port", PORT_FIELDS)
    assert admin_filter.per_object == () and admin_filter.never == frozenset()


def test_provider_attributes_and_segments_are_hidden_from_non_admins(engine):
    fields = ("id", "name", "provider:network_type", "provider:physical_network",
              "provider:segmentation_id", "segments", "shared")
    network = {"id": "n1", "project_id": "proj-a", "shared": False}
    assert engine.readable_attributes(MEMBER, "network", network, fields) == {"id", "name", "shared"}
    assert engine.readable_attributes(ADMIN, "network", network, fields) == set(fields)


def test_callers_with_the_same_credentials_share_one_view(engine):
    again = Credentials("alice", "proj-a", frozenset({"reader", "member"}))
    assert engine.for_context(MEMBER) is engine.for_context(again)
    assert engine.for_context(MEMBER) is not engine.for_context(ADMIN)


def test_per_caller_cache_is_bounded():
    engine = PolicyEngine(caller_cache_size=2)
    first = engine.for_context(Credentials("u1", "p1", frozenset({"reader"})))
    engine.for_context(Credentials("u2", "p2", frozenset({"reader"})))
    engine.for_context(Credentials("u3", "p3", frozenset({"reader"})))
    assert engine.for_context(Credentials("u1", "p1", frozenset({"reader"}))) is not first


def test_listing_ten_thousand_ports_shows_own_ports_and_ports_on_own_networks(engine):
    # How long this takes is measured by bench/policy_bench.py, never asserted in a test.
    ports = [_port("proj-a" if i % 3 else "proj-b", "proj-a" if i % 5 else "proj-c") for i in range(10_000)]
    view = engine.for_context(MEMBER)
    fields = view.attribute_filter("port", PORT_FIELDS)
    shown = [fields.readable(p) for p in ports if view.check("get_port", p)]
    assert len(shown) == sum(1 for i in range(10_000) if i % 3 or i % 5)
