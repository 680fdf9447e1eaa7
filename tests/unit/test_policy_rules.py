"""The oslo.policy rule language: parsing, precedence, lookups and evaluation."""

from __future__ import annotations

import pytest

from neutrino.context import RequestContext
from neutrino.policy.rules import (
    ALWAYS,
    NEVER,
    And,
    CredentialCheck,
    Credentials,
    FieldCheck,
    Not,
    Or,
    PolicyRuleError,
    PolicySyntaxError,
    RoleCheck,
    RuleRef,
    TargetKey,
    Template,
    UnknownRuleError,
    bind,
    check,
    parse,
    referenced_rules,
    render,
)

MEMBER = Credentials("user-1", "proj-a", frozenset({"member", "reader"}))
ADMIN = Credentials("admin-user", "admin-proj", frozenset({"admin", "manager", "member", "reader"}))


def role(name: str) -> RoleCheck:
    return RoleCheck(Template((name,)))


# ---- parsing ------------------------------------------------------------------------------------


def test_and_binds_tighter_than_or():
    assert parse("role:a or role:b and role:c") == Or((role("a"), And((role("b"), role("c")))))


def test_not_binds_tighter_than_and():
    assert parse("not role:a and role:b") == And((Not(role("a")), role("b")))


def test_parentheses_override_precedence():
    assert parse("(role:a or role:b) and role:c") == And((Or((role("a"), role("b"))), role("c")))


def test_parentheses_glued_to_checks_and_nested():
    assert parse("((role:a)) or (not (role:b))") == Or((role("a"), Not(role("b"))))


def test_chains_of_the_same_operator_are_flat():
    assert parse("role:a or role:b or role:c") == Or((role("a"), role("b"), role("c")))


def test_keywords_are_case_insensitive():
    assert parse("role:a AND NOT role:b Or role:c") == Or((And((role("a"), Not(role("b")))), role("c")))


def test_at_bang_and_empty_rule():
    assert parse("@") == ALWAYS
    assert parse("!") == NEVER
    assert parse("") == ALWAYS
    assert parse("   ") == ALWAYS


def test_double_negation_parses():
    assert parse("not not role:a") == Not(Not(role("a")))


def test_rule_and_generic_checks():
    assert parse("rule:admin_only") == RuleRef("admin_only")
    assert parse("is_admin:True") == CredentialCheck("is_admin", Template(("True",)))
    assert parse("tenant_id:%(network:tenant_id)s") == CredentialCheck(
        "tenant_id", Template((TargetKey("network:tenant_id"),)))


def test_field_checks_keep_colons_in_field_names_and_regexes():
    assert parse("field:networks:shared=True") == FieldCheck("networks", "shared", "True")
    assert parse("field:subnets:router:external=True") == FieldCheck("subnets", "router:external", "True")
    assert parse("field:port:device_owner=~^network:") == FieldCheck(
        "port", "device_owner", "^network:", regex=True)
    assert parse("field:rbac_policy:target_tenant=*") == FieldCheck("rbac_policy", "target_tenant", "*")


def test_template_with_literal_text_around_a_lookup():
    assert parse("user_id:u-%(suffix)s") == CredentialCheck("user_id", Template(("u-", TargetKey("suffix"))))


@pytest.mark.parametrize("text", [
    "(role:a", "role:a)", "role:a and", "or role:a", "role:a or or role:b", "not", "()",
    "role:a role:b", "admin", "role:", ":x", "field:networks", "field:networks:shared",
    "field:port:device_owner=~([", "http://example.com/check", "project_id:%(project_id",
    "project_id:%()s",
])
def test_malformed_rules_are_rejected(text):
    with pytest.raises(PolicySyntaxError):
        parse(text)


def test_non_string_rule_is_rejected():
    with pytest.raises(PolicySyntaxError):
        parse(True)  # type: ignore[arg-type]


def test_render_round_trips():
    text = "(rule:admin_only) or (role:member and project_id:%(project_id)s) or not field:port:device_owner=~^network:"
    expr = parse(text)
    assert parse(render(expr)) == expr
    assert render(parse("role:a and (role:b or @)")) == "role:a and (role:b or @)"


def test_referenced_rules_lists_direct_references():
    assert referenced_rules(parse("rule:a or (role:x and not rule:b)")) == {"a", "b"}


def test_trees_are_immutable():
    expr = parse("role:a and role:b")
    with pytest.raises(AttributeError):
        expr.operands = ()  # type: ignore[misc]


# ---- evaluation ---------------------------------------------------------------------------------


def test_role_match_is_case_insensitive():
    shouty = Credentials("u", "p", frozenset({"Member"}))
    assert check(parse("role:MEMBER"), {}, shouty)
    assert not check(parse("role:admin"), {}, shouty)


def test_owner_check_compares_project_with_target():
    rule = parse("project_id:%(project_id)s")
    assert check(rule, {"project_id": "proj-a"}, MEMBER)
    assert not check(rule, {"project_id": "proj-b"}, MEMBER)
    assert not check(rule, {}, MEMBER)


def test_tenant_and_project_names_are_interchangeable_in_lookups_and_credentials():
    assert check(parse("tenant_id:%(network:tenant_id)s"), {"network:project_id": "proj-a"}, MEMBER)
    assert check(parse("project_id:%(network:project_id)s"), {"network:tenant_id": "proj-a"}, MEMBER)
    assert not check(parse("tenant_id:%(network:tenant_id)s"), {"network:project_id": "proj-b"}, MEMBER)


def test_empty_project_never_owns_an_unowned_object():
    internal = Credentials("svc", "", frozenset({"reader"}))
    assert not check(parse("project_id:%(project_id)s"), {"project_id": ""}, internal)


def test_is_admin_and_user_id_checks():
    assert check(parse("is_admin:True"), {}, ADMIN)
    assert not check(parse("is_admin:True"), {}, MEMBER)
    assert check(parse("is_admin:False"), {}, MEMBER)
    assert check(parse("user_id:%(user_id)s"), {"user_id": "user-1"}, MEMBER)
    assert not check(parse("user_id:%(user_id)s"), {"user_id": "user-2"}, MEMBER)


def test_unknown_credential_kind_never_matches():
    assert not check(parse("domain_id:default"), {}, MEMBER)


def test_role_taken_from_target():
    assert check(parse("role:%(required_role)s"), {"required_role": "Member"}, MEMBER)
    assert not check(parse("role:%(required_role)s"), {}, MEMBER)


def test_field_check_compares_typed_values():
    shared = parse("field:networks:shared=True")
    assert check(shared, {"shared": True}, MEMBER)
    assert not check(shared, {"shared": False}, MEMBER)
    assert not check(shared, {"shared": None}, MEMBER)
    assert not check(shared, {}, MEMBER)
    assert check(parse("field:networks:mtu=1450"), {"mtu": 1450}, MEMBER)
    assert check(parse("field:rbac_policy:target_tenant=*"), {"target_tenant": "*"}, MEMBER)
    assert not check(parse("field:rbac_policy:target_tenant=*"), {"target_tenant": "proj-b"}, MEMBER)


def test_network_field_is_read_from_the_network_keys_of_a_port_target():
    shared = parse("field:networks:shared=True")
    assert check(shared, {"network_id": "n1", "network:shared": True}, MEMBER)
    assert not check(shared, {"network_id": "n1", "network:shared": False}, MEMBER)


def test_regex_field_check_matches_from_the_start():
    network_device = parse("field:port:device_owner=~^network:")
    assert check(network_device, {"device_owner": "network:dhcp"}, MEMBER)
    assert not check(network_device, {"device_owner": "compute:nova"}, MEMBER)
    assert not check(network_device, {"device_owner": None}, MEMBER)


def test_operators_evaluate_as_boolean_logic():
    target = {"project_id": "proj-a"}
    assert check(parse("role:admin or role:member and project_id:%(project_id)s"), target, MEMBER)
    assert not check(parse("(role:admin or role:member) and project_id:%(project_id)s"),
                     {"project_id": "x"}, MEMBER)
    assert check(parse("not role:admin"), {}, MEMBER)
    assert not check(parse("not role:admin"), {}, ADMIN)
    assert check(parse("@ or !"), {}, MEMBER)
    assert not check(parse("@ and !"), {}, MEMBER)


def test_rule_references_resolve_through_the_rule_set():
    rules = {"admin_only": parse("role:admin"), "owner": parse("project_id:%(project_id)s"),
             "admin_or_owner": parse("rule:admin_only or rule:owner")}
    assert check(parse("rule:admin_or_owner"), {"project_id": "proj-a"}, MEMBER, rules)
    assert not check(parse("rule:admin_or_owner"), {"project_id": "proj-b"}, MEMBER, rules)
    assert check(parse("rule:admin_or_owner"), {"project_id": "proj-b"}, ADMIN, rules)


def test_unknown_rule_reference_is_an_error():
    with pytest.raises(UnknownRuleError, match="nope"):
        check(parse("rule:nope"), {}, MEMBER, {})


def test_reference_cycle_is_an_error():
    rules = {"a": parse("rule:b"), "b": parse("rule:a")}
    with pytest.raises(PolicyRuleError, match="cycle"):
        check(parse("rule:a"), {}, MEMBER, rules)


def test_request_context_is_accepted_as_credentials():
    ctx = RequestContext(user_id="user-1", project_id="proj-a", roles=frozenset({"member", "reader"}))
    assert check(parse("role:member and project_id:%(project_id)s"), {"project_id": "proj-a"}, ctx)
    assert Credentials.of(ctx) == MEMBER


# ---- specialisation for one caller --------------------------------------------------------------


def test_binding_folds_role_checks_leaving_only_target_checks():
    rule = parse("(role:admin) or (role:reader and project_id:%(project_id)s)")
    reader_view = bind(rule, MEMBER)
    assert reader_view.constant is None
    assert reader_view.residual == CredentialCheck("project_id", Template((TargetKey("project_id"),)))
    assert reader_view({"project_id": "proj-a"})
    assert not reader_view({"project_id": "proj-b"})


def test_binding_decides_caller_only_rules_without_a_target():
    assert bind(parse("(role:admin) or (role:reader and project_id:%(project_id)s)"), ADMIN).constant is True
    assert bind(parse("role:admin or role:service"), MEMBER).constant is False
    nobody = Credentials("u", "p", frozenset())
    assert bind(parse("role:reader and project_id:%(project_id)s"), nobody).constant is False


def test_binding_folds_negations_and_keeps_target_dependent_ones():
    rule = parse("not field:port:device_owner=~^network: or role:admin")
    member_view = bind(rule, MEMBER)
    assert member_view.constant is None
    assert member_view({"device_owner": "compute:nova"})
    assert not member_view({"device_owner": "network:router_interface"})
    assert bind(rule, ADMIN).constant is True
    assert bind(parse("not role:admin"), ADMIN).constant is False
