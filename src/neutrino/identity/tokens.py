"""Signed, expiring tokens: the format, the signing keys in the database, and a validation cache.

Format: a JWT signed with HMAC-SHA256 (PyJWT), header ``kid`` naming the signing key. Clients must
treat it as opaque; its claims (user id, project id, expanded role names, audit id, issue and expiry
times, methods) are not secret, only unforgeable. Time checks are done here against the ``now``
passed in, never against PyJWT's own clock, so expiry is testable without waiting.

Keys: rows of ``signing_keys``; every active key validates, the newest active key signs. Because
they live in the database, any server copy validates any other copy's tokens. Keys are cached in
memory (``cache_seconds``); an unknown ``kid`` triggers a reload at most once per
``miss_reload_seconds`` so a flood of forged tokens cannot turn into a flood of queries.
Revocation and the liveness of the token's user and project are checked by the store, which owns
those tables (see :meth:`neutrino.identity.store.IdentityStore.validate_token`).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

import jwt
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.db.engine import Database
from neutrino.db.schema.identity import signing_keys
from neutrino.errors import Unauthenticated
from neutrino.identity.model import TokenClaims

Clock = Callable[[], datetime]
RandomBytes = Callable[[int], bytes]
V = TypeVar("V")

_ALGORITHM = "HS256"
# PyJWT verifies the signature and the JSON; all time checks are ours (against an injected clock).
_JWT = jwt.PyJWT(options={
    "verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False,
    "verify_iss": False, "verify_sub": False, "verify_jti": False,
})


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """Keystone's timestamp format. tempest parses it with strptime: the trailing ``Z`` is required."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_audit_id(random_bytes: RandomBytes) -> str:
    """22 url-safe characters, like Keystone's audit ids."""
    return base64.urlsafe_b64encode(random_bytes(16)).rstrip(b"=").decode("ascii")


def to_db_time(moment: datetime) -> datetime:
    """Naive UTC, the way timestamps are stored on every backend."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def from_db_time(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class SigningKey:
    id: str
    secret: bytes
    created_at: datetime


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A signing key as operators see it: never its secret."""

    id: str
    created_at: datetime
    active: bool
    signing: bool


def encode_token(claims: TokenClaims, key: SigningKey) -> str:
    """Sign ``claims``; times are whole seconds (``issued_at``/``expires_at`` should be truncated)."""
    payload: dict[str, Any] = {
        "sub": claims.user_id,
        "rol": list(claims.roles),
        "aid": claims.audit_id,
        "mth": list(claims.methods),
        "iat": int(claims.issued_at.timestamp()),
        "exp": int(claims.expires_at.timestamp()),
    }
    if claims.project_id is not None:
        payload["pid"] = claims.project_id
    if claims.parent_audit_id is not None:
        payload["par"] = claims.parent_audit_id
    if claims.credential is not None:
        payload["crd"] = claims.credential
    # No "typ" header: it says nothing we need and costs bytes in every request.
    return _JWT.encode(payload, key.secret, algorithm=_ALGORITHM, headers={"kid": key.id, "typ": None})


def read_key_id(token: str) -> str:
    """The ``kid`` a token claims to be signed with (not yet verified)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise Unauthenticated("The token is malformed.") from exc
    kid = header.get("kid")
    if not isinstance(kid, str) or header.get("alg") != _ALGORITHM:
        raise Unauthenticated("The token is malformed.")
    return kid


def decode_token(token: str, secret: bytes, now: datetime) -> TokenClaims:
    """Verify signature and expiry; the claims of a good token, else :class:`Unauthenticated`."""
    try:
        payload = _JWT.decode(token, secret, algorithms=[_ALGORITHM])
    except jwt.PyJWTError as exc:
        raise Unauthenticated("The token is invalid.") from exc
    try:
        claims = _claims_from_payload(payload)
    except (KeyError, TypeError, ValueError, OverflowError, OSError) as exc:
        raise Unauthenticated("The token is invalid.") from exc
    if now >= claims.expires_at:
        raise Unauthenticated("The token has expired.")
    return claims


def _claims_from_payload(payload: dict[str, Any]) -> TokenClaims:
    def text(value: Any) -> str:
        if not isinstance(value, str):
            raise TypeError("expected a string")
        return value

    def texts(value: Any) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise TypeError("expected a list")
        return tuple(text(v) for v in value)

    def moment(value: Any) -> datetime:
        if not isinstance(value, int):
            raise TypeError("expected an integer")
        return datetime.fromtimestamp(value, UTC)

    return TokenClaims(
        user_id=text(payload["sub"]),
        project_id=text(payload["pid"]) if "pid" in payload else None,
        roles=texts(payload["rol"]),
        audit_id=text(payload["aid"]),
        issued_at=moment(payload["iat"]),
        expires_at=moment(payload["exp"]),
        methods=texts(payload["mth"]),
        parent_audit_id=text(payload["par"]) if "par" in payload else None,
        credential=text(payload["crd"]) if "crd" in payload else None,
    )


class SigningKeyRing:
    """The active signing keys, read from the database and cached; creates the first key on demand."""

    def __init__(self, db: Database, *, random_bytes: RandomBytes, cache_seconds: float = 60.0,
                 miss_reload_seconds: float = 1.0) -> None:
        self._db = db
        self._random_bytes = random_bytes
        self._cache_for = timedelta(seconds=cache_seconds)
        self._miss_reload_after = timedelta(seconds=miss_reload_seconds)
        self._keys: dict[str, SigningKey] = {}
        self._loaded_at: datetime | None = None
        self._lock = asyncio.Lock()

    async def signing_key(self, now: datetime) -> SigningKey:
        """The newest active key, creating one if the database has none."""
        if not self._keys:
            await self._reload(now, self._miss_reload_after)
        elif self._stale(now, self._cache_for):
            await self._reload(now, self._cache_for)
        if not self._keys:
            await self._db.write(lambda conn: self._ensure_one_key(conn, now))
            await self._reload(now, timedelta(0))
        return max(self._keys.values(), key=lambda k: (k.created_at, k.id))

    async def verification_secret(self, key_id: str, now: datetime) -> bytes | None:
        """The secret of active key ``key_id``, or None if no such active key exists."""
        if key_id not in self._keys:
            await self._reload(now, self._miss_reload_after)
        elif self._stale(now, self._cache_for):
            await self._reload(now, self._cache_for)
        key = self._keys.get(key_id)
        return key.secret if key else None

    async def rotate(self, now: datetime, *, retire_older_than: timedelta) -> SigningKey:
        """Add a new signing key and deactivate keys created before ``now - retire_older_than``.

        ``retire_older_than`` must exceed the token lifetime, or tokens signed with a retired key
        stop validating before they expire. Other server copies pick the change up within
        ``cache_seconds``.
        """
        async def work(conn: AsyncConnection) -> SigningKey:
            key = self._new_key(now)
            await conn.execute(update(signing_keys)
                               .where(signing_keys.c.created_at < to_db_time(now - retire_older_than))
                               .values(active=False))
            await conn.execute(insert(signing_keys).values(
                id=key.id, secret=key.secret.hex(), created_at=to_db_time(now), active=True))
            return key

        key = await self._db.write(work)
        await self._reload(now, timedelta(0))
        return key

    async def list_keys(self) -> list[KeyInfo]:
        """Every key, newest first; the newest active one is the one that signs."""
        async with self._db.read() as conn:
            rows = (await conn.execute(select(signing_keys.c.id, signing_keys.c.created_at, signing_keys.c.active)
                                       .order_by(signing_keys.c.created_at.desc(), signing_keys.c.id.desc()))).all()
        signer = next((row.id for row in rows if row.active), None)
        return [KeyInfo(row.id, from_db_time(row.created_at), bool(row.active), row.id == signer) for row in rows]

    def _stale(self, now: datetime, age: timedelta) -> bool:
        return self._loaded_at is None or now - self._loaded_at >= age or now < self._loaded_at

    async def _reload(self, now: datetime, max_age: timedelta) -> None:
        """Re-read the active keys unless another task did so within ``max_age`` (under the lock)."""
        async with self._lock:
            if max_age and not self._stale(now, max_age):
                return
            async with self._db.read() as conn:
                rows = (await conn.execute(select(signing_keys).where(signing_keys.c.active.is_(True)))).all()
            self._keys = {row.id: SigningKey(row.id, bytes.fromhex(row.secret), from_db_time(row.created_at))
                          for row in rows}
            self._loaded_at = now

    async def _ensure_one_key(self, conn: AsyncConnection, now: datetime) -> None:
        # Two servers racing here may both insert a key; both are active and valid, which is harmless.
        existing = (await conn.execute(select(signing_keys.c.id).where(signing_keys.c.active.is_(True))
                                       .limit(1))).first()
        if existing is None:
            key = self._new_key(now)
            await conn.execute(insert(signing_keys).values(
                id=key.id, secret=key.secret.hex(), created_at=to_db_time(now), active=True))

    def _new_key(self, now: datetime) -> SigningKey:
        return SigningKey(id=self._random_bytes(16).hex(), secret=self._random_bytes(32), created_at=now)


class ExpiringCache(Generic[V]):
    """A bounded map whose entries vanish at their own deadline; the oldest entry goes when full."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._max_entries = max_entries
        self._entries: dict[str, tuple[datetime, V]] = {}

    def get(self, key: str, now: datetime) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if now >= entry[0]:
            self._entries.pop(key, None)
            return None
        return entry[1]

    def put(self, key: str, value: V, *, until: datetime, now: datetime) -> None:
        if until <= now:
            return
        if key not in self._entries and len(self._entries) >= self._max_entries:
            for stale in [k for k, (deadline, _) in self._entries.items() if now >= deadline]:
                del self._entries[stale]
            if len(self._entries) >= self._max_entries:
                del self._entries[next(iter(self._entries))]
        self._entries[key] = (until, value)

    def discard(self, key: str) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
