"""Token strategies: how the API turns a request's headers into a :class:`RequestContext`.

One interface, three implementations, chosen by ``[identity] strategy``:

* ``embedded`` -- tokens issued by this server's own identity (``/identity``), checked against the
  shared database (:meth:`IdentityStore.validate_token`: no argon2, signing keys cached, one indexed
  query per token per few seconds).
* ``keystone`` -- tokens issued by an external Keystone, validated with ``GET /v3/auth/tokens``
  using this service's own token, results cached for ``keystone_cache_seconds``.
* ``noauth`` -- tests only: trusts ``X-Project-Id``/``X-User-Id``/``X-Roles`` headers. It cannot
  be constructed unless the settings say ``noauth``, so it cannot be switched on by accident.

The strategies take the whole header mapping (not just a token) because ``noauth`` has no token;
header names are matched case-insensitively. Every failure to authenticate is
:class:`~neutrino.errors.Unauthenticated`; an unreachable Keystone is
:class:`~neutrino.errors.ServiceUnavailable`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx

from neutrino.config import ConfigError, IdentitySettings, Settings
from neutrino.context import RequestContext
from neutrino.db.engine import Database
from neutrino.errors import ServiceUnavailable, Unauthenticated
from neutrino.identity.roles import MEMBER, expand_roles
from neutrino.identity.store import IdentityStore, build_identity_store
from neutrino.identity.tokens import Clock, ExpiringCache, utc_now

log = logging.getLogger(__name__)

AUTH_TOKEN_HEADER = "x-auth-token"


class TokenStrategy(Protocol):
    async def validate(self, headers: Mapping[str, str], request_id: str) -> RequestContext:
        """The caller's context, or :class:`Unauthenticated`."""
        ...

    async def close(self) -> None:
        """Release connections (called once at shutdown)."""
        ...


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup (Starlette's Headers already is; plain dicts may not be)."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


class EmbeddedStrategy:
    """Validates tokens of the embedded identity; share its ``store`` with the identity app."""

    def __init__(self, store: IdentityStore) -> None:
        self._store = store

    async def validate(self, headers: Mapping[str, str], request_id: str) -> RequestContext:
        token_id = header(headers, AUTH_TOKEN_HEADER)
        if not token_id:
            raise Unauthenticated()
        token = await self._store.validate_token(token_id)
        subject = token.subject
        if subject.project is None:
            raise Unauthenticated("A project-scoped token is required.")
        return RequestContext(user_id=subject.user.id, project_id=subject.project.id,
                              roles=frozenset(subject.roles), request_id=request_id,
                              project_name=subject.project.name, user_name=subject.user.name)

    async def close(self) -> None:
        return None


class NoAuthStrategy:
    """Trusts identity headers (tests only). ``X-Project-Id`` is required; ``X-Roles`` is a comma
    list (default ``member``), expanded like real tokens; ``X-User-Id`` defaults to ``noauth``."""

    def __init__(self, settings: IdentitySettings) -> None:
        if settings.strategy != "noauth":
            raise ConfigError("NoAuthStrategy requires [identity] strategy = \"noauth\"")

    async def validate(self, headers: Mapping[str, str], request_id: str) -> RequestContext:
        project_id = header(headers, "x-project-id") or header(headers, "x-tenant-id")
        if not project_id:
            raise Unauthenticated("noauth: the X-Project-Id header is required.")
        roles_header = header(headers, "x-roles")
        roles = [r.strip() for r in (roles_header if roles_header is not None else MEMBER).split(",") if r.strip()]
        return RequestContext(user_id=header(headers, "x-user-id") or "noauth", project_id=project_id,
                              roles=expand_roles(roles), request_id=request_id,
                              project_name=header(headers, "x-project-name") or "",
                              user_name=header(headers, "x-user-name") or "")

    async def close(self) -> None:
        return None


def keystone_v3_root(url: str) -> str:
    """Keystone's v3 root from ``keystone_url``, which operators give as the root or the v3 root."""
    base = url.rstrip("/")
    return base if base.endswith("/v3") else base + "/v3"


class KeystoneStrategy:
    """Validates tokens against an external Keystone (``keystone_url`` is its v3 root or its root).

    The service's own credentials (``keystone_username``/``keystone_password``, project
    ``keystone_project``, all in the ``default`` domain) get a token that is reused until a minute
    before it expires or until Keystone rejects it. Valid tokens are cached by their SHA-256 (the
    raw token is never kept) for ``keystone_cache_seconds``, never past their own expiry.
    """

    def __init__(self, settings: IdentitySettings, *, client: httpx.AsyncClient | None = None,
                 clock: Clock = utc_now) -> None:
        if not settings.keystone_url:
            raise ConfigError("[identity] keystone_url is required with strategy = \"keystone\"")
        self._v3 = keystone_v3_root(settings.keystone_url)
        self._settings = settings
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(10.0))
        self._owns_client = client is None
        self._clock = clock
        self._cache_for = timedelta(seconds=settings.keystone_cache_seconds)
        self._validated: ExpiringCache[RequestContext] = ExpiringCache()
        self._service_token: tuple[str, datetime] | None = None
        self._service_lock = asyncio.Lock()

    async def validate(self, headers: Mapping[str, str], request_id: str) -> RequestContext:
        token_id = header(headers, AUTH_TOKEN_HEADER)
        if not token_id:
            raise Unauthenticated()
        key = hashlib.sha256(token_id.encode("utf-8", "surrogateescape")).hexdigest()
        now = self._clock()
        cached = self._validated.get(key, now)
        if cached is None:
            cached, expires_at = await self._ask_keystone(token_id)
            self._validated.put(key, cached, until=min(now + self._cache_for, expires_at), now=now)
        return RequestContext(user_id=cached.user_id, project_id=cached.project_id, roles=cached.roles,
                              request_id=request_id, project_name=cached.project_name,
                              user_name=cached.user_name)

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def _ask_keystone(self, token_id: str) -> tuple[RequestContext, datetime]:
        for attempt in range(2):
            service_token = await self._get_service_token(renew=attempt > 0)
            response = await self._request("GET", f"{self._v3}/auth/tokens?nocatalog",
                                           headers={"X-Auth-Token": service_token, "X-Subject-Token": token_id})
            if response.status_code == 200:
                return _context_from_token_body(response)
            if response.status_code == 404:
                raise Unauthenticated("The token is invalid or has expired.")
            if response.status_code != 401:
                break
            # 401: our own token expired or was revoked; get a new one and try once more.
        log.error("keystone refused to validate a token: HTTP %s", response.status_code)
        raise ServiceUnavailable("The identity service could not validate the token.")

    async def _get_service_token(self, *, renew: bool) -> str:
        async with self._service_lock:
            now = self._clock()
            if not renew and self._service_token and now < self._service_token[1] - timedelta(seconds=60):
                return self._service_token[0]
            body = {"auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": self._settings.keystone_username, "password": self._settings.keystone_password,
                    "domain": {"id": "default"}}}},
                "scope": {"project": {"name": self._settings.keystone_project, "domain": {"id": "default"}}}}}
            response = await self._request("POST", f"{self._v3}/auth/tokens?nocatalog", json=body)
            token_id: str | None = response.headers.get("x-subject-token")
            if response.status_code != 201 or not token_id:
                log.error("cannot get this service's own token from keystone: HTTP %s", response.status_code)
                raise ServiceUnavailable("The identity service refused this service's credentials.")
            try:
                expires_at = _parse_time(response.json()["token"]["expires_at"])
            except (ValueError, KeyError, TypeError):
                expires_at = now + timedelta(minutes=5)
            self._service_token = (token_id, expires_at)
            return token_id

    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            log.error("keystone at %s unreachable: %s", self._v3, exc)
            raise ServiceUnavailable("The identity service is unreachable.") from exc


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("timestamp without a time zone")
    return moment


def _context_from_token_body(response: httpx.Response) -> tuple[RequestContext, datetime]:
    try:
        token = response.json()["token"]
        project = token.get("project")
        if not project:
            raise Unauthenticated("A project-scoped token is required.")
        context = RequestContext(
            user_id=str(token["user"]["id"]), project_id=str(project["id"]),
            roles=frozenset(str(r["name"]) for r in token.get("roles", [])),
            project_name=str(project.get("name", "")), user_name=str(token["user"].get("name", "")))
        return context, _parse_time(token["expires_at"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ServiceUnavailable("The identity service returned an unreadable token.") from exc


_STRATEGIES: Mapping[str, Callable[[Database, Settings, IdentityStore | None], TokenStrategy]] = {
    "embedded": lambda db, settings, store: EmbeddedStrategy(store or build_identity_store(db, settings.identity)),
    "keystone": lambda db, settings, store: KeystoneStrategy(settings.identity),
    "noauth": lambda db, settings, store: NoAuthStrategy(settings.identity),
}


def build_token_strategy(db: Database, settings: Settings, *, store: IdentityStore | None = None) -> TokenStrategy:
    """The strategy ``settings.identity.strategy`` names (pass the identity app's ``store`` for embedded)."""
    factory = _STRATEGIES.get(settings.identity.strategy)
    if factory is None:
        raise ConfigError(f"unknown [identity] strategy {settings.identity.strategy!r}; "
                          f"expected one of {', '.join(sorted(_STRATEGIES))}")
    return factory(db, settings, store)
