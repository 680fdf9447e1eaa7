"""The identity's plain data: what crosses between the store, the token code and the HTTP layer.

All frozen; rows and JSON never cross these seams. Password hashes never leave the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Domain:
    id: str
    name: str
    description: str = ""
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class Project:
    id: str
    name: str
    domain_id: str
    description: str = ""
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class User:
    id: str
    name: str
    domain_id: str
    enabled: bool = True
    default_project_id: str | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class Role:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class RoleAssignment:
    project_id: str
    user_id: str
    role_id: str
    # Set in ``effective`` listings on assignments that are implied: the role actually granted.
    prior_role_id: str | None = None


@dataclass(frozen=True, slots=True)
class Subject:
    """Who a token speaks for, as the database says *now*: user, scope and expanded role names."""

    user: User
    user_domain: Domain
    project: Project | None = None
    project_domain: Domain | None = None
    # Expanded (implied roles included), sorted.
    roles: tuple[str, ...] = ()
    # Fingerprint of the user's current password hash (see TokenClaims.credential).
    credential: str = ""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a signed token carries. ``project_id`` is None for an unscoped token."""

    user_id: str
    project_id: str | None
    roles: tuple[str, ...]
    audit_id: str
    issued_at: datetime
    expires_at: datetime
    methods: tuple[str, ...] = ("password",)
    # Audit id of the token this one was re-scoped from: revoking that one revokes this one too.
    parent_audit_id: str | None = None
    # Fingerprint of the user's password hash when the token was issued: once the password changes
    # (a new hash, new salt) it no longer matches and the token is revoked, as Keystone revokes a
    # user's tokens on a password change. None in tokens of servers that predate it.
    credential: str | None = None

    @property
    def audit_ids(self) -> tuple[str, ...]:
        return (self.audit_id,) if self.parent_audit_id is None else (self.audit_id, self.parent_audit_id)


@dataclass(frozen=True, slots=True)
class Token:
    """A valid token: its opaque id (what clients send back), its claims, and its live subject."""

    id: str
    claims: TokenClaims
    subject: Subject


@dataclass(frozen=True, slots=True)
class UserRef:
    """How a request names a user: by id, or by name within a domain given by id or name."""

    id: str | None = None
    name: str | None = None
    domain_id: str | None = None
    domain_name: str | None = None


@dataclass(frozen=True, slots=True)
class ProjectRef:
    """How a request names a project: by id, or by name within a domain given by id or name."""

    id: str | None = None
    name: str | None = None
    domain_id: str | None = None
    domain_name: str | None = None


@dataclass(frozen=True, slots=True)
class BootstrapResult:
    """Ids of what :func:`neutrino.identity.store.bootstrap` ensured; ``created`` names new objects."""

    admin_user_id: str
    admin_project_id: str
    service_project_id: str
    role_ids: Mapping[str, str] = field(default_factory=dict)
    demo_user_id: str | None = None
    demo_project_id: str | None = None
    service_user_id: str | None = None
    created: tuple[str, ...] = ()
