"""The identity's data and rules: domains, projects, users, roles, assignments, and tokens.

Every write is one :meth:`Database.write` unit whose own pre-checks (name taken? object gone?) turn
a lost race into the right typed error on retry; uniqueness itself is enforced by the schema.
Argon2 work never happens inside a transaction.

Token validation (:meth:`IdentityStore.validate_token`) is on every API request's path, so it is:
signature and expiry from memory (keys cached by :class:`SigningKeyRing`), then one indexed query
that answers at once "is this token revoked?" and "do its user and project still exist, enabled,
and which roles does the user hold there now?" (so deleting a user, a project or an assignment
takes effect on existing tokens, as in Keystone). Results are cached for ``validation_cache_seconds``;
changes made through this store clear that cache at once, changes made by another server copy are
seen within that many seconds.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

from sqlalchemy import and_, delete, exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.config import IdentitySettings
from neutrino.db.engine import Database
from neutrino.db.schema.base import NAME_LEN
from neutrino.db.schema.identity import (
    DEFAULT_DOMAIN_ID,
    DEFAULT_DOMAIN_ROW,
    domains,
    projects,
    revoked_tokens,
    role_assignments,
    roles,
    users,
)
from neutrino.errors import BadRequest, Conflict, NotFound, Unauthenticated
from neutrino.identity.model import (
    BootstrapResult,
    Domain,
    Project,
    ProjectRef,
    Role,
    RoleAssignment,
    Subject,
    Token,
    TokenClaims,
    User,
    UserRef,
)
from neutrino.identity.passwords import PasswordHashing
from neutrino.identity.roles import ADMIN, MEMBER, SERVICE, STANDARD_ROLES, expand_roles, implied_by
from neutrino.identity.tokens import (
    Clock,
    ExpiringCache,
    KeyInfo,
    RandomBytes,
    SigningKey,
    SigningKeyRing,
    decode_token,
    encode_token,
    new_audit_id,
    read_key_id,
    to_db_time,
    utc_now,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# What Keystone says for every failed password login, whatever the reason: no hint of which part was wrong.
AUTH_FAILED = "The request you have made requires authentication."

# The user the compute simulator (``neutrino instance``) acts as, like Nova's ``nova`` user.
SERVICE_USER_NAME = "neutrino-compute"


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()
"""Marks an update argument that was not given (``None`` may be a real value, e.g. to clear a field)."""


@dataclass(frozen=True, slots=True)
class _UserRecord:
    user: User
    password_hash: str | None


def _domain(row: Any) -> Domain:
    return Domain(id=row.id, name=row.name, description=row.description or "", enabled=bool(row.enabled))


def _project(row: Any) -> Project:
    return Project(id=row.id, name=row.name, domain_id=row.domain_id, description=row.description or "",
                   enabled=bool(row.enabled))


def _user(row: Any) -> User:
    return User(id=row.id, name=row.name, domain_id=row.domain_id, enabled=bool(row.enabled),
                default_project_id=row.default_project_id, description=row.description or "")


def _role(row: Any) -> Role:
    return Role(id=row.id, name=row.name)


def _check_name(kind: str, name: str) -> None:
    if not name or not name.strip() or len(name) > NAME_LEN:
        raise BadRequest(f"Invalid {kind} name: it must be 1 to {NAME_LEN} characters and not blank.")


class IdentityStore:
    """Identity data access and domain logic over one :class:`Database`; one per process is enough."""

    def __init__(self, db: Database, *, token_ttl_seconds: int = 3600, clock: Clock = utc_now,
                 random_bytes: RandomBytes = secrets.token_bytes, hashing: PasswordHashing | None = None,
                 keys: SigningKeyRing | None = None, validation_cache_seconds: float = 5.0) -> None:
        self._db = db
        self._clock = clock
        self._random_bytes = random_bytes
        self._ttl = timedelta(seconds=token_ttl_seconds)
        self._hashing = hashing or PasswordHashing()
        self._keys = keys or SigningKeyRing(db, random_bytes=random_bytes)
        self._cache_for = timedelta(seconds=validation_cache_seconds)
        self._validated: ExpiringCache[Token] = ExpiringCache()

    @property
    def clock(self) -> Clock:
        return self._clock

    def _new_id(self) -> str:
        return self._random_bytes(16).hex()

    async def _write(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        result = await self._db.write(work)
        # Any change may alter what a cached token means (roles, users, projects): forget them all.
        self._validated.clear()
        return result

    # ---- domains ------------------------------------------------------------------------------

    async def ensure_defaults(self) -> dict[str, str]:
        """Ensure the default domain and the standard roles exist (idempotent); role ids by name.

        The migration seeds the default domain, but a freshly migrated database has no roles until
        :func:`bootstrap` runs; offline tools call this so that ``project create`` and
        ``role add ... member`` work on such a database too.
        """
        created: list[str] = []
        role_ids: dict[str, str] = await self._write(lambda conn: _ensure_defaults(conn, self._new_id, created))
        return role_ids

    async def list_domains(self, *, name: str | None = None) -> list[Domain]:
        stmt = select(domains).order_by(domains.c.name)
        if name is not None:
            stmt = stmt.where(domains.c.name == name)
        async with self._db.read() as conn:
            return [_domain(r) for r in (await conn.execute(stmt)).all()]

    async def get_domain(self, domain_id: str) -> Domain:
        async with self._db.read() as conn:
            row = (await conn.execute(select(domains).where(domains.c.id == domain_id))).first()
        if row is None:
            raise NotFound(f"Could not find domain: {domain_id}.")
        return _domain(row)

    # ---- projects -----------------------------------------------------------------------------

    async def create_project(self, name: str, *, domain_id: str = DEFAULT_DOMAIN_ID, description: str = "",
                             enabled: bool = True) -> Project:
        _check_name("project", name)
        project = Project(id=self._new_id(), name=name, domain_id=domain_id, description=description,
                          enabled=enabled)

        async def work(conn: AsyncConnection) -> Project:
            await _require_domain(conn, domain_id)
            await _require_free_name(conn, projects, name, domain_id, "project")
            await conn.execute(insert(projects).values(
                id=project.id, name=name, domain_id=domain_id, description=description, enabled=enabled))
            return project

        return await self._write(work)

    async def list_projects(self, *, name: str | None = None, domain_id: str | None = None,
                            ids: Iterable[str] | None = None) -> list[Project]:
        stmt = select(projects).order_by(projects.c.name, projects.c.id)
        if name is not None:
            stmt = stmt.where(projects.c.name == name)
        if domain_id is not None:
            stmt = stmt.where(projects.c.domain_id == domain_id)
        if ids is not None:
            stmt = stmt.where(projects.c.id.in_(list(ids)))
        async with self._db.read() as conn:
            return [_project(r) for r in (await conn.execute(stmt)).all()]

    async def get_project(self, project_id: str) -> Project:
        async with self._db.read() as conn:
            row = (await conn.execute(select(projects).where(projects.c.id == project_id))).first()
        if row is None:
            raise NotFound(f"Could not find project: {project_id}.")
        return _project(row)

    async def find_project(self, ref: ProjectRef) -> Project | None:
        async with self._db.read() as conn:
            return await _find_project(conn, ref)

    async def update_project(self, project_id: str, *, name: str | _Unset = UNSET,
                             description: str | _Unset = UNSET, enabled: bool | _Unset = UNSET) -> Project:
        values = _given(name=name, description=description, enabled=enabled)
        if "name" in values:
            _check_name("project", values["name"])

        async def work(conn: AsyncConnection) -> Project:
            row = (await conn.execute(select(projects).where(projects.c.id == project_id))).first()
            if row is None:
                raise NotFound(f"Could not find project: {project_id}.")
            if values.get("name", row.name) != row.name:
                await _require_free_name(conn, projects, values["name"], row.domain_id, "project")
            if values:
                await conn.execute(update(projects).where(projects.c.id == project_id).values(**values))
            return replace(_project(row), **values)

        return await self._write(work)

    async def delete_project(self, project_id: str) -> None:
        async def work(conn: AsyncConnection) -> None:
            await _require(conn, projects, project_id, "project")
            await conn.execute(delete(role_assignments).where(role_assignments.c.project_id == project_id))
            await conn.execute(delete(projects).where(projects.c.id == project_id))

        await self._write(work)

    # ---- users --------------------------------------------------------------------------------

    async def create_user(self, name: str, *, password: str | None = None, domain_id: str = DEFAULT_DOMAIN_ID,
                          enabled: bool = True, default_project_id: str | None = None,
                          description: str = "") -> User:
        _check_name("user", name)
        password_hash = await self._hashing.hash(password) if password is not None else None
        user = User(id=self._new_id(), name=name, domain_id=domain_id, enabled=enabled,
                    default_project_id=default_project_id, description=description)

        async def work(conn: AsyncConnection) -> User:
            await _require_domain(conn, domain_id)
            await _require_free_name(conn, users, name, domain_id, "user")
            if default_project_id is not None:
                await _require_default_project(conn, default_project_id)
            await conn.execute(insert(users).values(
                id=user.id, name=name, domain_id=domain_id, password_hash=password_hash, enabled=enabled,
                default_project_id=default_project_id, description=description))
            return user

        return await self._write(work)

    async def list_users(self, *, name: str | None = None, domain_id: str | None = None,
                         ids: Iterable[str] | None = None) -> list[User]:
        stmt = select(users).order_by(users.c.name, users.c.id)
        if ids is not None:
            stmt = stmt.where(users.c.id.in_(list(ids)))
        if name is not None:
            stmt = stmt.where(users.c.name == name)
        if domain_id is not None:
            stmt = stmt.where(users.c.domain_id == domain_id)
        async with self._db.read() as conn:
            return [_user(r) for r in (await conn.execute(stmt)).all()]

    async def get_user(self, user_id: str) -> User:
        async with self._db.read() as conn:
            row = (await conn.execute(select(users).where(users.c.id == user_id))).first()
        if row is None:
            raise NotFound(f"Could not find user: {user_id}.")
        return _user(row)

    async def find_user(self, ref: UserRef) -> User | None:
        async with self._db.read() as conn:
            record = await _find_user_record(conn, ref)
        return record.user if record else None

    async def update_user(self, user_id: str, *, name: str | _Unset = UNSET, password: str | None | _Unset = UNSET,
                          enabled: bool | _Unset = UNSET, default_project_id: str | None | _Unset = UNSET,
                          description: str | _Unset = UNSET) -> User:
        values = _given(name=name, enabled=enabled, default_project_id=default_project_id,
                        description=description)
        if "name" in values:
            _check_name("user", values["name"])
        stored: dict[str, Any] = dict(values)
        if not isinstance(password, _Unset):
            stored["password_hash"] = await self._hashing.hash(password) if password is not None else None

        async def work(conn: AsyncConnection) -> User:
            row = (await conn.execute(select(users).where(users.c.id == user_id))).first()
            if row is None:
                raise NotFound(f"Could not find user: {user_id}.")
            if values.get("name", row.name) != row.name:
                await _require_free_name(conn, users, values["name"], row.domain_id, "user")
            new_default = values.get("default_project_id")
            if new_default is not None and new_default != row.default_project_id:
                await _require_default_project(conn, new_default)
            if stored:
                await conn.execute(update(users).where(users.c.id == user_id).values(**stored))
            return replace(_user(row), **values)

        return await self._write(work)

    async def change_password(self, user_id: str, original_password: str, password: str) -> None:
        """A user's own password change (Keystone's ``POST /v3/users/{id}/password``): the original
        password proves who asks, so no token is needed. Like any password change, it revokes the
        user's tokens. An unknown user, a wrong password and a disabled user look the same."""
        async with self._db.read() as conn:
            record = await _find_user_record(conn, UserRef(id=user_id))
        matches = await self._hashing.verify(record.password_hash if record else None, original_password)
        if record is None or not matches or not record.user.enabled:
            log.info("password change refused for user %s", user_id)
            # Keystone's Unauthorized hides the reason outside insecure_debug: the generic message.
            raise Unauthenticated(AUTH_FAILED)
        await self.update_user(user_id, password=password)

    async def delete_user(self, user_id: str) -> None:
        async def work(conn: AsyncConnection) -> None:
            await _require(conn, users, user_id, "user")
            await conn.execute(delete(role_assignments).where(role_assignments.c.user_id == user_id))
            await conn.execute(delete(users).where(users.c.id == user_id))

        await self._write(work)

    async def list_user_projects(self, user_id: str, *, enabled_only: bool = False) -> list[Project]:
        """Projects on which the user holds at least one role."""
        stmt = (select(projects).where(projects.c.id.in_(
            select(role_assignments.c.project_id).where(role_assignments.c.user_id == user_id)))
            .order_by(projects.c.name, projects.c.id))
        if enabled_only:
            stmt = stmt.where(projects.c.enabled.is_(True))
        async with self._db.read() as conn:
            await _require(conn, users, user_id, "user")
            return [_project(r) for r in (await conn.execute(stmt)).all()]

    # ---- roles --------------------------------------------------------------------------------

    async def create_role(self, name: str) -> Role:
        _check_name("role", name)
        role = Role(id=self._new_id(), name=name)

        async def work(conn: AsyncConnection) -> Role:
            taken = (await conn.execute(select(roles.c.id).where(roles.c.name == name))).first()
            if taken is not None:
                raise Conflict(f"Conflict occurred attempting to store role - Duplicate entry found with name {name}.")
            await conn.execute(insert(roles).values(id=role.id, name=name))
            return role

        return await self._write(work)

    async def list_roles(self, *, name: str | None = None) -> list[Role]:
        stmt = select(roles).order_by(roles.c.name)
        if name is not None:
            stmt = stmt.where(roles.c.name == name)
        async with self._db.read() as conn:
            return [_role(r) for r in (await conn.execute(stmt)).all()]

    async def get_role(self, role_id: str) -> Role:
        async with self._db.read() as conn:
            row = (await conn.execute(select(roles).where(roles.c.id == role_id))).first()
        if row is None:
            raise NotFound(f"Could not find role: {role_id}.")
        return _role(row)

    async def delete_role(self, role_id: str) -> None:
        async def work(conn: AsyncConnection) -> None:
            await _require(conn, roles, role_id, "role")
            await conn.execute(delete(role_assignments).where(role_assignments.c.role_id == role_id))
            await conn.execute(delete(roles).where(roles.c.id == role_id))

        await self._write(work)

    # ---- role assignments ---------------------------------------------------------------------

    async def assign_role(self, project_id: str, user_id: str, role_id: str) -> bool:
        """Grant ``role_id``; idempotent. True when the assignment is new."""
        async def work(conn: AsyncConnection) -> bool:
            await _require(conn, projects, project_id, "project")
            await _require(conn, users, user_id, "user")
            await _require(conn, roles, role_id, "role")
            if await _has_assignment(conn, project_id, user_id, role_id):
                return False
            await conn.execute(insert(role_assignments).values(
                project_id=project_id, user_id=user_id, role_id=role_id))
            return True

        return await self._write(work)

    async def has_role(self, project_id: str, user_id: str, role_id: str) -> bool:
        async with self._db.read() as conn:
            return await _has_assignment(conn, project_id, user_id, role_id)

    async def unassign_role(self, project_id: str, user_id: str, role_id: str) -> None:
        async def work(conn: AsyncConnection) -> None:
            if not await _has_assignment(conn, project_id, user_id, role_id):
                raise NotFound(f"Could not find role assignment with role: {role_id}, user: {user_id}, "
                               f"project: {project_id}.")
            await conn.execute(delete(role_assignments).where(and_(
                role_assignments.c.project_id == project_id, role_assignments.c.user_id == user_id,
                role_assignments.c.role_id == role_id)))

        await self._write(work)

    async def list_role_assignments(self, *, user_id: str | None = None, project_id: str | None = None,
                                    role_id: str | None = None, effective: bool = False) -> list[RoleAssignment]:
        """Direct assignments; with ``effective``, plus one entry per implied role (``prior_role_id`` set)."""
        stmt = select(role_assignments).order_by(
            role_assignments.c.project_id, role_assignments.c.user_id, role_assignments.c.role_id)
        if user_id is not None:
            stmt = stmt.where(role_assignments.c.user_id == user_id)
        if project_id is not None:
            stmt = stmt.where(role_assignments.c.project_id == project_id)
        if role_id is not None and not effective:
            stmt = stmt.where(role_assignments.c.role_id == role_id)
        async with self._db.read() as conn:
            direct = [RoleAssignment(r.project_id, r.user_id, r.role_id) for r in (await conn.execute(stmt)).all()]
            if not effective:
                return direct
            by_name = {r.name: r.id for r in (await conn.execute(select(roles))).all()}
        return _effective_assignments(direct, by_name, role_id)

    async def list_user_roles_on_project(self, project_id: str, user_id: str) -> list[Role]:
        stmt = (select(roles).join(role_assignments, role_assignments.c.role_id == roles.c.id)
                .where(role_assignments.c.project_id == project_id, role_assignments.c.user_id == user_id)
                .order_by(roles.c.name))
        async with self._db.read() as conn:
            await _require(conn, projects, project_id, "project")
            await _require(conn, users, user_id, "user")
            return [_role(r) for r in (await conn.execute(stmt)).all()]

    # ---- tokens -------------------------------------------------------------------------------

    async def authenticate(self, user: UserRef, password: str, scope: ProjectRef | None = None, *,
                           unscoped: bool = False) -> Token:
        """Password login. Without ``scope`` (and unless ``unscoped``) the token is scoped to the
        user's default project when the user holds a role there, as Keystone does.

        Any failure to prove identity is :class:`Unauthenticated` with one generic message; a user
        without a role on the requested project is refused too (Keystone issues no role-less tokens).
        """
        now = self._clock()
        async with self._db.read() as conn:
            record = await _find_user_record(conn, user)
        matches = await self._hashing.verify(record.password_hash if record else None, password)
        if record is None or not matches or not record.user.enabled:
            log.info("password authentication failed for user %s", _describe_ref(user))
            raise Unauthenticated(AUTH_FAILED)
        if record.password_hash and self._hashing.needs_rehash(record.password_hash):
            await self._rehash(record.user.id, password)
        return await self._issue(record.user, scope, unscoped=unscoped, methods=("password",), now=now)

    async def authenticate_with_token(self, token_id: str, scope: ProjectRef | None = None, *,
                                      unscoped: bool = False) -> Token:
        """The ``token`` method: a new token for the same user, expiring with the original."""
        original = await self.validate_token(token_id)
        now = self._clock()
        if scope is None and not unscoped and original.claims.project_id is not None:
            scope = ProjectRef(id=original.claims.project_id)
        return await self._issue(original.subject.user, scope, unscoped=True, methods=("token",), now=now,
                                 expires_at=original.claims.expires_at, parent_audit_id=original.claims.audit_id)

    async def validate_token(self, token_id: str) -> Token:
        """The live token, or :class:`Unauthenticated` (bad signature, expired, revoked, user gone...)."""
        now = self._clock()
        cached = self._validated.get(token_id, now)
        if cached is not None:
            return cached
        secret = await self._keys.verification_secret(read_key_id(token_id), now)
        if secret is None:
            raise Unauthenticated("The token is invalid.")
        claims = decode_token(token_id, secret, now)
        async with self._db.read() as conn:
            subject, problem = await _load_subject(conn, claims.user_id, claims.project_id, claims.audit_ids)
        if subject is not None and claims.credential is not None and claims.credential != subject.credential:
            subject, problem = None, "the user's password has changed since it was issued"
        if subject is None:
            raise Unauthenticated(f"The token is no longer valid: {problem}.")
        token = Token(id=token_id, claims=claims, subject=subject)
        self._validated.put(token_id, token, until=min(now + self._cache_for, claims.expires_at), now=now)
        return token

    async def revoke_token(self, token: Token) -> None:
        """Revoke ``token`` (and tokens re-scoped from it) everywhere; idempotent."""
        now = self._clock()
        audit_id, expires_at = token.claims.audit_id, to_db_time(token.claims.expires_at)

        async def work(conn: AsyncConnection) -> None:
            await conn.execute(delete(revoked_tokens).where(revoked_tokens.c.expires_at < to_db_time(now)))
            present = (await conn.execute(select(revoked_tokens.c.audit_id)
                                          .where(revoked_tokens.c.audit_id == audit_id))).first()
            if present is None:
                await conn.execute(insert(revoked_tokens).values(audit_id=audit_id, expires_at=expires_at))

        await self._write(work)

    def key_retirement(self, retire_older_than: timedelta | None = None) -> timedelta:
        """How old a key must be to be retired by a rotation: by default twice the token lifetime,
        so that every token a retired key signed has already expired."""
        return retire_older_than if retire_older_than is not None else 2 * self._ttl

    async def rotate_signing_keys(self, *, retire_older_than: timedelta | None = None) -> SigningKey:
        """Start signing with a fresh key; keys younger than :meth:`key_retirement` keep validating."""
        return await self._keys.rotate(self._clock(), retire_older_than=self.key_retirement(retire_older_than))

    async def list_signing_keys(self) -> list[KeyInfo]:
        return await self._keys.list_keys()

    async def _issue(self, user: User, scope: ProjectRef | None, *, unscoped: bool, methods: tuple[str, ...],
                     now: datetime, expires_at: datetime | None = None,
                     parent_audit_id: str | None = None) -> Token:
        async with self._db.read() as conn:
            project_id: str | None = None
            if scope is not None:
                project = await _find_project(conn, scope)
                if project is None:
                    raise Unauthenticated("Could not find the requested project.")
                project_id = project.id
            elif not unscoped and user.default_project_id:
                project_id = user.default_project_id
            subject, problem = await _load_subject(conn, user.id, project_id, ())
            if subject is None and scope is None and project_id is not None:
                # The default project is gone or grants nothing: fall back to an unscoped token.
                subject, problem = await _load_subject(conn, user.id, None, ())
        if subject is None:
            log.info("refused a token for user %s: %s", user.id, problem)
            raise Unauthenticated(f"{AUTH_FAILED} ({problem})")
        issued_at = now.replace(microsecond=0)
        claims = TokenClaims(
            user_id=user.id, project_id=subject.project.id if subject.project else None, roles=subject.roles,
            audit_id=new_audit_id(self._random_bytes), issued_at=issued_at,
            expires_at=min(expires_at, issued_at + self._ttl) if expires_at else issued_at + self._ttl,
            methods=methods, parent_audit_id=parent_audit_id, credential=subject.credential)
        token = Token(id=encode_token(claims, await self._keys.signing_key(now)), claims=claims, subject=subject)
        self._validated.put(token.id, token, until=min(now + self._cache_for, claims.expires_at), now=now)
        return token

    async def bootstrap(self, accounts: list[_Account]) -> BootstrapResult:
        """See :func:`bootstrap`. Passwords are checked and hashed before the one write transaction."""
        async with self._db.read() as conn:
            rows = {r.name: r for r in (await conn.execute(select(users).where(
                users.c.domain_id == DEFAULT_DOMAIN_ID, users.c.name.in_([a.user for a in accounts])))).all()}
        # Per user: the hash to store, and whether it differs from the stored one.
        hashes: dict[str, tuple[str, bool]] = {}
        for account in accounts:
            row = rows.get(account.user)
            if row is not None and row.enabled and await self._hashing.verify(row.password_hash, account.password):
                hashes[account.user] = (row.password_hash, False)
            else:
                hashes[account.user] = (await self._hashing.hash(account.password), True)
        result: BootstrapResult = await self._write(
            lambda conn: _bootstrap_work(conn, accounts, hashes, self._new_id))
        if result.created:
            log.info("identity bootstrap: %s", ", ".join(result.created))
        return result

    async def _rehash(self, user_id: str, password: str) -> None:
        password_hash = await self._hashing.hash(password)

        async def work(conn: AsyncConnection) -> None:
            await conn.execute(update(users).where(users.c.id == user_id).values(password_hash=password_hash))

        await self._db.write(work)


def build_identity_store(db: Database, settings: IdentitySettings, **kwargs: Any) -> IdentityStore:
    """The store as configured; ``kwargs`` (clock, random_bytes, hashing...) are for tests."""
    return IdentityStore(db, token_ttl_seconds=settings.token_ttl_seconds, **kwargs)


# ---- queries shared by the methods above --------------------------------------------------------


def _given(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if not isinstance(v, _Unset)}


def _describe_ref(ref: UserRef) -> str:
    if ref.id:
        return ref.id
    return f"{ref.name}@{ref.domain_id or ref.domain_name or DEFAULT_DOMAIN_ID}"


async def _require(conn: AsyncConnection, table: Any, object_id: str, kind: str) -> None:
    if (await conn.execute(select(table.c.id).where(table.c.id == object_id))).first() is None:
        raise NotFound(f"Could not find {kind}: {object_id}.")


async def _require_domain(conn: AsyncConnection, domain_id: str) -> None:
    """The domain must exist. The default domain always does: the migration seeds it, and a database
    made without the migration (``metadata.create_all``) or with the row deleted gets it back here."""
    if (await conn.execute(select(domains.c.id).where(domains.c.id == domain_id))).first() is not None:
        return
    if domain_id != DEFAULT_DOMAIN_ID:
        raise NotFound(f"Could not find domain: {domain_id}.")
    await conn.execute(insert(domains).values(**DEFAULT_DOMAIN_ROW))


async def _require_free_name(conn: AsyncConnection, table: Any, name: str, domain_id: str, kind: str) -> None:
    taken = (await conn.execute(select(table.c.id).where(table.c.name == name, table.c.domain_id == domain_id))).first()
    if taken is not None:
        raise Conflict(f"Conflict occurred attempting to store {kind} - Duplicate entry found with name "
                       f"{name} at domain ID {domain_id}.")


async def _require_default_project(conn: AsyncConnection, project_id: str) -> None:
    if (await conn.execute(select(projects.c.id).where(projects.c.id == project_id))).first() is None:
        raise BadRequest(f"Invalid default_project_id: could not find project {project_id}.")


async def _has_assignment(conn: AsyncConnection, project_id: str, user_id: str, role_id: str) -> bool:
    row = (await conn.execute(select(role_assignments.c.role_id).where(
        role_assignments.c.project_id == project_id, role_assignments.c.user_id == user_id,
        role_assignments.c.role_id == role_id))).first()
    return row is not None


async def _domain_id_of(conn: AsyncConnection, domain_id: str | None, domain_name: str | None) -> str | None:
    """The id of the domain named by id or name (the default domain when neither is given)."""
    if domain_id is not None:
        return domain_id
    if domain_name is None:
        return DEFAULT_DOMAIN_ID
    row = (await conn.execute(select(domains.c.id).where(domains.c.name == domain_name))).first()
    return row.id if row else None


async def _find_user_record(conn: AsyncConnection, ref: UserRef) -> _UserRecord | None:
    if ref.id is not None:
        stmt = select(users).where(users.c.id == ref.id)
    else:
        domain_id = await _domain_id_of(conn, ref.domain_id, ref.domain_name)
        if domain_id is None or ref.name is None:
            return None
        stmt = select(users).where(users.c.name == ref.name, users.c.domain_id == domain_id)
    row = (await conn.execute(stmt)).first()
    if row is None:
        return None
    if ref.id is not None and (ref.domain_id or ref.domain_name):
        # A domain given next to an id must be the user's own.
        if await _domain_id_of(conn, ref.domain_id, ref.domain_name) != row.domain_id:
            return None
    return _UserRecord(_user(row), row.password_hash)


async def _find_project(conn: AsyncConnection, ref: ProjectRef) -> Project | None:
    if ref.id is not None:
        row = (await conn.execute(select(projects).where(projects.c.id == ref.id))).first()
        if row is not None and (ref.domain_id or ref.domain_name):
            if await _domain_id_of(conn, ref.domain_id, ref.domain_name) != row.domain_id:
                return None
    else:
        domain_id = await _domain_id_of(conn, ref.domain_id, ref.domain_name)
        if domain_id is None or ref.name is None:
            return None
        row = (await conn.execute(select(projects).where(
            projects.c.name == ref.name, projects.c.domain_id == domain_id))).first()
    return _project(row) if row is not None else None


async def _load_subject(conn: AsyncConnection, user_id: str, project_id: str | None,
                        audit_ids: tuple[str, ...]) -> tuple[Subject | None, str]:
    """One query: the user, the project, the user's roles there, and whether any audit id is revoked.

    Returns the subject, or None and the reason it is not valid.
    """
    user_domain = domains.alias("user_domain")
    project_domain = domains.alias("project_domain")
    columns: list[Any] = [users, user_domain.c.name.label("ud_name"), user_domain.c.enabled.label("ud_enabled")]
    source: Any = users.join(user_domain, user_domain.c.id == users.c.domain_id)
    if project_id is not None:
        columns += [projects.c.id.label("p_id"), projects.c.name.label("p_name"),
                    projects.c.domain_id.label("p_domain_id"), projects.c.description.label("p_description"),
                    projects.c.enabled.label("p_enabled"), project_domain.c.name.label("pd_name"),
                    project_domain.c.enabled.label("pd_enabled"), roles.c.name.label("role_name")]
        source = (source.outerjoin(projects, projects.c.id == project_id)
                  .outerjoin(project_domain, project_domain.c.id == projects.c.domain_id)
                  .outerjoin(role_assignments, and_(role_assignments.c.project_id == projects.c.id,
                                                    role_assignments.c.user_id == users.c.id))
                  .outerjoin(roles, roles.c.id == role_assignments.c.role_id))
    if audit_ids:
        columns.append(exists().where(revoked_tokens.c.audit_id.in_(audit_ids)).label("revoked"))
    rows = (await conn.execute(select(*columns).select_from(source).where(users.c.id == user_id))).all()
    if not rows:
        return None, "the user does not exist"
    first = rows[0]
    if audit_ids and first.revoked:
        return None, "the token has been revoked"
    if not first.enabled or not first.ud_enabled:
        return None, "the user is disabled"
    user = _user(first)
    credential = credential_fingerprint(first.password_hash)
    user_domain_obj = Domain(id=first.domain_id, name=first.ud_name, enabled=bool(first.ud_enabled))
    if project_id is None:
        return Subject(user=user, user_domain=user_domain_obj, credential=credential), ""
    if first.p_id is None:
        return None, "the project does not exist"
    if not first.p_enabled or not first.pd_enabled:
        return None, "the project is disabled"
    granted = {r.role_name for r in rows if r.role_name is not None}
    if not granted:
        return None, "the user has no role on the project"
    project = Project(id=first.p_id, name=first.p_name, domain_id=first.p_domain_id,
                      description=first.p_description or "", enabled=True)
    return Subject(user=user, user_domain=user_domain_obj, project=project,
                   project_domain=Domain(id=first.p_domain_id, name=first.pd_name),
                   roles=tuple(sorted(expand_roles(granted))), credential=credential), ""


def credential_fingerprint(password_hash: str | None) -> str:
    """A short digest of the stored password hash, carried in tokens to tell a password change.

    Not secret and no help to a guesser: the hash it digests is salted and never leaves the database.
    """
    return hashlib.sha256((password_hash or "").encode()).hexdigest()[:16]


def _effective_assignments(direct: list[RoleAssignment], role_ids_by_name: dict[str, str],
                           role_id: str | None) -> list[RoleAssignment]:
    names_by_id = {v: k for k, v in role_ids_by_name.items()}
    result: dict[tuple[str, str, str], RoleAssignment] = {}
    for a in direct:
        result.setdefault((a.project_id, a.user_id, a.role_id), a)
    for a in direct:
        for implied_name in sorted(implied_by(names_by_id.get(a.role_id, ""))):
            implied_id = role_ids_by_name.get(implied_name)
            if implied_id is not None:
                result.setdefault((a.project_id, a.user_id, implied_id),
                                  RoleAssignment(a.project_id, a.user_id, implied_id, prior_role_id=a.role_id))
    return [a for a in result.values() if role_id is None or a.role_id == role_id]


# ---- bootstrap ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Account:
    user: str
    password: str
    project: str
    role: str


async def bootstrap(db: Database, *, admin_password: str, demo_password: str | None = None,
                    service_password: str | None = None, store: IdentityStore | None = None) -> BootstrapResult:
    """Ensure the default domain, the standard roles, projects ``admin`` and ``service`` and user
    ``admin`` (role ``admin`` on ``admin``); with ``demo_password`` also project and user ``demo``
    (role ``member``); with ``service_password`` also user ``neutrino-compute`` (role ``service`` on
    ``service``: the compute simulator's identity, as Nova's ``nova`` user).

    Idempotent, atomic (one transaction) and safe to run on every start, even by several servers at
    once. An existing user whose password differs from the one given, or who is disabled, gets the
    password reset and is re-enabled (recovery, as ``keystone-manage bootstrap`` does).
    """
    accounts = [_Account("admin", admin_password, "admin", ADMIN)]
    if demo_password is not None:
        accounts.append(_Account("demo", demo_password, "demo", MEMBER))
    if service_password is not None:
        accounts.append(_Account(SERVICE_USER_NAME, service_password, "service", SERVICE))
    return await (store or IdentityStore(db)).bootstrap(accounts)


async def _ensure_named(conn: AsyncConnection, table: Any, name: str, kind: str, new_id: Callable[[], str],
                       created: list[str], **values: Any) -> str:
    """The id of the object called ``name`` (in the default domain, if the table has domains), created if missing."""
    stmt = select(table.c.id).where(table.c.name == name)
    if "domain_id" in table.c:
        stmt = stmt.where(table.c.domain_id == DEFAULT_DOMAIN_ID)
    row = (await conn.execute(stmt)).first()
    if row is not None:
        return str(row.id)
    object_id = new_id()
    await conn.execute(insert(table).values(id=object_id, name=name, **values))
    created.append(f"{kind} {name}")
    return object_id


async def _ensure_defaults(conn: AsyncConnection, new_id: Callable[[], str], created: list[str]) -> dict[str, str]:
    """The default domain and the standard roles; returns role ids by name."""
    await _require_domain(conn, DEFAULT_DOMAIN_ID)
    return {name: await _ensure_named(conn, roles, name, "role", new_id, created) for name in STANDARD_ROLES}


async def _bootstrap_work(conn: AsyncConnection, accounts: list[_Account], hashes: dict[str, tuple[str, bool]],
                          new_id: Callable[[], str]) -> BootstrapResult:
    created: list[str] = []

    async def ensure(table: Any, name: str, kind: str, **values: Any) -> str:
        return await _ensure_named(conn, table, name, kind, new_id, created, **values)

    role_ids = await _ensure_defaults(conn, new_id, created)
    project_ids = {name: await ensure(projects, name, "project", domain_id=DEFAULT_DOMAIN_ID,
                                      description=f"Bootstrap project {name}", enabled=True)
                   for name in ["admin", "service", *(a.project for a in accounts)]}
    user_ids: dict[str, str] = {}
    for account in accounts:
        password_hash, changed = hashes[account.user]
        user_ids[account.user] = await ensure(
            users, account.user, "user", domain_id=DEFAULT_DOMAIN_ID, password_hash=password_hash,
            enabled=True, default_project_id=project_ids[account.project], description="")
        if changed and f"user {account.user}" not in created:
            await conn.execute(update(users).where(users.c.id == user_ids[account.user])
                               .values(password_hash=password_hash, enabled=True))
            created.append(f"password of user {account.user}")
        project_id, user_id, role_id = project_ids[account.project], user_ids[account.user], role_ids[account.role]
        if not await _has_assignment(conn, project_id, user_id, role_id):
            await conn.execute(insert(role_assignments).values(project_id=project_id, user_id=user_id,
                                                               role_id=role_id))
            created.append(f"role {account.role} for user {account.user} on project {account.project}")
    return BootstrapResult(
        admin_user_id=user_ids["admin"], admin_project_id=project_ids["admin"],
        service_project_id=project_ids["service"], role_ids=role_ids,
        demo_user_id=user_ids.get("demo"), demo_project_id=project_ids.get("demo"),
        service_user_id=user_ids.get(SERVICE_USER_NAME), created=tuple(created))
