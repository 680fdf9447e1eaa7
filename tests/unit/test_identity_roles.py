"""Implied-role expansion, as Keystone's defaults do it: admin => manager => member => reader."""

from neutrino.identity.roles import expand_roles, implied_by


def test_admin_implies_every_lesser_role():
    assert expand_roles(["admin"]) == {"admin", "manager", "member", "reader"}


def test_member_implies_reader_only():
    assert expand_roles(["member"]) == {"member", "reader"}


def test_reader_implies_nothing_more():
    assert expand_roles(["reader"]) == {"reader"}


def test_service_role_implies_nothing():
    assert expand_roles(["service"]) == {"service"}


def test_expansion_of_several_roles_is_their_union():
    assert expand_roles(["service", "member"]) == {"service", "member", "reader"}


def test_expansion_survives_cyclic_rules():
    assert expand_roles(["a"], {"a": ("b",), "b": ("a",)}) == {"a", "b"}


def test_implied_by_excludes_the_prior_role():
    assert implied_by("manager") == {"member", "reader"}
