"""Parsing and validating Keystone v3 request bodies (pure): bad input is a 400, never a crash.

Entity bodies are checked against small declarative field tables; attributes Keystone would keep
as "extra" (``email``, ``tags``...) are accepted and ignored. The result is the keyword arguments
of the matching :class:`~neutrino.identity.store.IdentityStore` method.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from neutrino.errors import BadRequest, Unauthenticated
from neutrino.identity.model import ProjectRef, UserRef

_ID_MAX = 64
_NAME_MAX = 255
_TEXT_MAX = 65535
_PASSWORD_MAX = 4096


@dataclass(frozen=True, slots=True)
class Field:
    kind: type
    required: bool = False
    nullable: bool = False
    max_len: int | None = None
    # What a JSON null becomes (for fields Keystone lets clients null out but we store as text).
    null_value: Any = None


def _text(max_len: int, **kw: Any) -> Field:
    return Field(str, max_len=max_len, **kw)


PROJECT_CREATE: Mapping[str, Field] = {
    "name": _text(_NAME_MAX, required=True),
    "domain_id": _text(_ID_MAX),
    "description": _text(_TEXT_MAX, nullable=True, null_value=""),
    "enabled": Field(bool),
}
PROJECT_UPDATE: Mapping[str, Field] = {
    "name": _text(_NAME_MAX),
    "description": _text(_TEXT_MAX, nullable=True, null_value=""),
    "enabled": Field(bool),
}
USER_CREATE: Mapping[str, Field] = {
    "name": _text(_NAME_MAX, required=True),
    "password": _text(_PASSWORD_MAX, nullable=True),
    "domain_id": _text(_ID_MAX),
    "enabled": Field(bool),
    "default_project_id": _text(_ID_MAX, nullable=True),
    "description": _text(_TEXT_MAX, nullable=True, null_value=""),
}
USER_UPDATE: Mapping[str, Field] = {
    "name": _text(_NAME_MAX),
    "password": _text(_PASSWORD_MAX, nullable=True),
    "enabled": Field(bool),
    "default_project_id": _text(_ID_MAX, nullable=True),
    "description": _text(_TEXT_MAX, nullable=True, null_value=""),
}
PASSWORD_CHANGE: Mapping[str, Field] = {
    "original_password": _text(_PASSWORD_MAX, required=True),
    "password": _text(_PASSWORD_MAX, required=True),
}
ROLE_CREATE: Mapping[str, Field] = {
    "name": _text(_NAME_MAX, required=True),
}


def parse_entity(body: Any, key: str, fields: Mapping[str, Field]) -> dict[str, Any]:
    """``body[key]`` checked against ``fields``: the given, known attributes."""
    entity = _object(_object(body, "request body").get(key), key)
    result: dict[str, Any] = {}
    for name, spec in fields.items():
        if name not in entity:
            if spec.required:
                raise BadRequest(f"'{name}' is a required property of {key}.")
            continue
        value = entity[name]
        if value is None:
            if not spec.nullable:
                raise BadRequest(f"Invalid value for {key}.{name}: null is not allowed.")
            result[name] = spec.null_value
            continue
        # bool is an int subclass in Python, so compare types exactly.
        if type(value) is not spec.kind:
            raise BadRequest(f"Invalid value for {key}.{name}: expected {spec.kind.__name__}.")
        if spec.max_len is not None and isinstance(value, str) and len(value) > spec.max_len:
            raise BadRequest(f"Invalid value for {key}.{name}: longer than {spec.max_len} characters.")
        result[name] = value
    return result


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """A ``POST /v3/auth/tokens`` body, validated."""

    method: str  # "password" or "token"
    user: UserRef | None = None
    password: str | None = None
    token_id: str | None = None
    scope: ProjectRef | None = None
    unscoped: bool = False


def parse_auth_request(body: Any) -> AuthRequest:
    auth = _object(_object(body, "request body").get("auth"), "auth")
    identity = _object(auth.get("identity"), "auth.identity")
    methods = identity.get("methods")
    if not isinstance(methods, list) or not methods or not all(isinstance(m, str) for m in methods):
        raise BadRequest("auth.identity.methods must be a non-empty list of strings.")
    scope, unscoped = _parse_scope(auth.get("scope"))
    if "password" in methods:
        user = _object(_object(identity.get("password"), "auth.identity.password").get("user"),
                       "auth.identity.password.user")
        password = user.get("password")
        if not isinstance(password, str) or len(password) > _PASSWORD_MAX:
            raise BadRequest("auth.identity.password.user.password must be a string.")
        user_ref = UserRef(id=_optional_text(user, "id", "user"), name=_optional_text(user, "name", "user"),
                           **_domain_of(user, "user"))
        if user_ref.id is None and user_ref.name is None:
            raise BadRequest("auth.identity.password.user needs an id or a name.")
        return AuthRequest(method="password", user=user_ref, password=password, scope=scope, unscoped=unscoped)
    if "token" in methods:
        token = _object(identity.get("token"), "auth.identity.token")
        token_id = token.get("id")
        if not isinstance(token_id, str) or not token_id:
            raise BadRequest("auth.identity.token.id must be a string.")
        return AuthRequest(method="token", token_id=token_id, scope=scope, unscoped=unscoped)
    raise Unauthenticated(f"Unsupported authentication method: {', '.join(methods)}.")


def _parse_scope(scope: Any) -> tuple[ProjectRef | None, bool]:
    if scope is None:
        return None, False
    if scope == "unscoped":
        return None, True
    scope = _object(scope, "auth.scope")
    if "project" not in scope:
        # Domain, system and trust scopes are not offered by this identity.
        raise Unauthenticated("Only project-scoped or unscoped tokens are supported.")
    project = _object(scope["project"], "auth.scope.project")
    ref = ProjectRef(id=_optional_text(project, "id", "project"), name=_optional_text(project, "name", "project"),
                     **_domain_of(project, "project"))
    if ref.id is None and ref.name is None:
        raise BadRequest("auth.scope.project needs an id or a name.")
    return ref, False


def _domain_of(obj: Mapping[str, Any], what: str) -> dict[str, str | None]:
    if obj.get("domain") is None:
        return {"domain_id": None, "domain_name": None}
    domain = _object(obj["domain"], f"{what}.domain")
    return {"domain_id": _optional_text(domain, "id", f"{what}.domain"),
            "domain_name": _optional_text(domain, "name", f"{what}.domain")}


def _optional_text(obj: Mapping[str, Any], key: str, what: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > _NAME_MAX:
        raise BadRequest(f"{what}.{key} must be a string of at most {_NAME_MAX} characters.")
    return value


def _object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"{what} must be a JSON object.")
    return value
