"""Request bodies the identity must accept (tempest, keystoneauth) and refuse (400, never a crash)."""

import pytest

from neutrino.errors import BadRequest, Unauthenticated
from neutrino.identity.inputs import PROJECT_CREATE, USER_UPDATE, parse_auth_request, parse_entity
from neutrino.identity.model import ProjectRef, UserRef


def _password_body(user, scope=None):
    auth = {"identity": {"methods": ["password"], "password": {"user": user}}}
    if scope is not None:
        auth["scope"] = scope
    return {"auth": auth}


def test_tempest_admin_body_by_names_and_domain_names():
    request = parse_auth_request(_password_body(
        {"name": "admin", "password": "pw", "domain": {"name": "Default"}},
        {"project": {"name": "admin", "domain": {"name": "Default"}}}))
    assert request.method == "password"
    assert request.user == UserRef(name="admin", domain_name="Default")
    assert request.password == "pw"
    assert request.scope == ProjectRef(name="admin", domain_name="Default")


def test_tempest_dynamic_credentials_body_with_domain_next_to_ids():
    request = parse_auth_request(_password_body(
        {"id": "u1", "password": "pw", "domain": {"id": "default"}},
        {"project": {"id": "p1", "domain": {"id": "default"}}}))
    assert request.user == UserRef(id="u1", domain_id="default")
    assert request.scope == ProjectRef(id="p1", domain_id="default")


def test_body_without_scope_is_not_explicitly_unscoped():
    request = parse_auth_request(_password_body({"name": "u", "password": "pw"}))
    assert request.scope is None and not request.unscoped


def test_explicit_unscoped_scope():
    assert parse_auth_request(_password_body({"name": "u", "password": "pw"}, "unscoped")).unscoped


def test_token_method():
    request = parse_auth_request({"auth": {"identity": {"methods": ["token"], "token": {"id": "abc"}},
                                           "scope": {"project": {"id": "p"}}}})
    assert (request.method, request.token_id, request.scope) == ("token", "abc", ProjectRef(id="p"))


@pytest.mark.parametrize("body", [
    None, [], "x", {}, {"auth": None}, {"auth": {"identity": {}}},
    {"auth": {"identity": {"methods": "password"}}},
    {"auth": {"identity": {"methods": [1]}}},
    {"auth": {"identity": {"methods": ["password"]}}},
    {"auth": {"identity": {"methods": ["password"], "password": {"user": "admin"}}}},
    _password_body({"name": "u"}),
    _password_body({"name": "u", "password": 5}),
    _password_body({"password": "pw"}),
    _password_body({"name": ["u"], "password": "pw"}),
    _password_body({"name": "u", "password": "pw", "domain": "Default"}),
    _password_body({"name": "u", "password": "pw"}, {"project": {}}),
    _password_body({"name": "u", "password": "pw"}, {"project": "p"}),
    {"auth": {"identity": {"methods": ["token"], "token": {}}}},
])
def test_malformed_auth_bodies_are_bad_requests(body):
    with pytest.raises(BadRequest):
        parse_auth_request(body)


def test_unsupported_method_is_unauthenticated():
    with pytest.raises(Unauthenticated):
        parse_auth_request({"auth": {"identity": {"methods": ["totp"]}}})


def test_domain_scope_is_refused_as_unauthenticated():
    with pytest.raises(Unauthenticated):
        parse_auth_request(_password_body({"name": "u", "password": "pw"}, {"domain": {"id": "default"}}))


def test_entity_keeps_known_fields_and_ignores_extras():
    fields = parse_entity({"project": {"name": "p", "description": None, "enabled": True, "tags": ["x"]}},
                          "project", PROJECT_CREATE)
    assert fields == {"name": "p", "description": "", "enabled": True}


def test_entity_may_null_a_nullable_field():
    assert parse_entity({"user": {"default_project_id": None}}, "user", USER_UPDATE) == {"default_project_id": None}


@pytest.mark.parametrize("body", [
    {"project": {}},
    {"project": {"name": None}},
    {"project": {"name": 3}},
    {"project": {"name": "p", "enabled": "yes"}},
    {"project": {"name": "p", "enabled": 1}},
    {"project": {"name": "x" * 256}},
    {"project": "p"},
    {"projects": {"name": "p"}},
])
def test_bad_entities_are_bad_requests(body):
    with pytest.raises(BadRequest):
        parse_entity(body, "project", PROJECT_CREATE)
