"""The dashboard at ``/dashboard``: a static single-page app plus a thin same-origin proxy.

Routes (all under the mount point):

* ``GET /`` -- the page (sets the CSRF cookie); ``GET /static/...`` -- its own assets, nothing else.
* ``POST /session`` (log in), ``GET /session`` (who am I, my projects), ``PUT /session`` (switch
  project), ``DELETE /session`` (log out): the identity API's tokens, kept in an HttpOnly cookie.
* ``/api/v2.0/...`` and ``/api/identity/v3/...`` -- the public API, called in-process with the
  session's token (the identity calls go to the external Keystone instead when the server
  validates tokens there, ``[identity] strategy = "keystone"``); the page never holds the token.
* ``GET /events`` -- server-sent events of committed changes, filtered per viewer (events.py).

Everything goes through the public API (the same ASGI application clients use), so policy,
validation and error bodies are exactly the API's own. See docs/decisions.md for why a proxy.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from neutrino.api.dashboard import session as sess
from neutrino.api.dashboard.events import COLLECTIONS, EventHub, KnownIds, ids_in_body
from neutrino.api.limits import JsonRejected, parse_json

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
ASSET_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png",
               ".ico": "image/x-icon", ".txt": "text/plain"}
NETWORK_PREFIX = "v2.0/"
IDENTITY_PREFIX = "identity/v3/"
# Token issue/validation goes through /session only: the page must never see a token.
BLOCKED_PREFIXES = ("identity/v3/auth/tokens",)
FORWARDED_HEADERS = ("content-type", "accept", "if-match")
FETCH_CHUNK = 100  # ids per re-read of changed objects


def _error(status: int, message: str, kind: str = "DashboardError") -> JSONResponse:
    return JSONResponse({"NeutronError": {"type": kind, "message": message, "detail": ""}}, status,
                        headers=sess.SECURITY_HEADERS)


def _own_origin(request: Request) -> str:
    proto = request.headers.get("x-forwarded-proto", request.url.scheme)
    return f"{proto}://{request.headers.get('host', request.url.netloc)}"


def _secure(request: Request) -> bool:
    return request.headers.get("x-forwarded-proto", request.url.scheme) == "https"


class Dashboard:
    """Build once in the composition root; ``bind`` the public API app, ``listener`` to the Notifier."""

    def __init__(self, identity_v3: str | None = None) -> None:
        """``identity_v3``: an external Keystone's v3 root; None means the embedded identity."""
        self._identity_v3 = identity_v3.rstrip("/") if identity_v3 else None
        self.hub = EventHub()
        self.known = KnownIds()
        self._upstream: ASGIApp | None = None
        self.app = Starlette(routes=[
            Route("/", self.index, methods=["GET"]),
            Route("/static/{name:path}", self.asset, methods=["GET"]),
            Route("/session", self.session, methods=["GET", "POST", "PUT", "DELETE"]),
            Route("/api/{path:path}", self.proxy, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
            Route("/events", self.events, methods=["GET"]),
        ])

    def bind(self, upstream: ASGIApp) -> None:
        """The public API application that the proxy and the event stream call with the viewer's token."""
        self._upstream = upstream

    @property
    def listener(self) -> EventHub:
        return self.hub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    # ---- plumbing ------------------------------------------------------------------------------

    def _client(self, request: Request) -> httpx.AsyncClient:
        """The networking API, in-process."""
        if self._upstream is None:
            raise RuntimeError("dashboard used before bind()")
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self._upstream), base_url=_own_origin(request),
                                 timeout=60)

    def _identity(self, request: Request) -> httpx.AsyncClient:
        """The identity API's v3 root: the embedded one in-process, or the external Keystone."""
        if self._identity_v3 is not None:
            return httpx.AsyncClient(base_url=self._identity_v3, timeout=30)
        if self._upstream is None:
            raise RuntimeError("dashboard used before bind()")
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self._upstream),
                                 base_url=_own_origin(request) + "/identity/v3", timeout=60)

    async def _token_info(self, identity: httpx.AsyncClient, token: str) -> dict[str, Any] | None:
        try:
            resp = await identity.get("/auth/tokens?nocatalog",
                                      headers={"x-auth-token": token, "x-subject-token": token})
        except httpx.HTTPError as exc:
            log.warning("dashboard: the identity service is unreachable: %s", type(exc).__name__)
            return None
        return resp.json()["token"] if resp.status_code == 200 else None

    async def _session_view(self, identity: httpx.AsyncClient, token: str) -> dict[str, Any] | None:
        info = await self._token_info(identity, token)
        if info is None:
            return None
        projects = await identity.get("/auth/projects", headers={"x-auth-token": token})
        roles = sorted(r["name"] for r in info.get("roles", []))
        return {"user": {"id": info["user"]["id"], "name": info["user"]["name"],
                         "domain": info["user"].get("domain", {}).get("name", "Default")},
                "project": info.get("project"), "roles": roles, "is_admin": "admin" in roles,
                "expires_at": info.get("expires_at"),
                "projects": [{"id": p["id"], "name": p["name"]}
                             for p in (projects.json().get("projects", []) if projects.status_code == 200 else [])]}

    def _with_token(self, request: Request, body: dict[str, Any], token: str, expires_at: str | None) -> JSONResponse:
        max_age = 3600
        if expires_at:
            try:
                left = datetime.fromisoformat(expires_at.replace("Z", "+00:00")) - datetime.now(UTC)
                max_age = max(0, int(left.total_seconds()))
            except ValueError:
                pass
        response = JSONResponse(body, headers=sess.SECURITY_HEADERS)
        response.headers.append("set-cookie", sess.cookie(sess.TOKEN_COOKIE, token, http_only=True,
                                                          secure=_secure(request), max_age=max_age))
        return response

    # ---- routes --------------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        response = FileResponse(STATIC / "index.html", media_type="text/html", headers=sess.SECURITY_HEADERS)
        if not request.cookies.get(sess.CSRF_COOKIE):
            response.headers.append("set-cookie", sess.cookie(sess.CSRF_COOKIE, sess.new_csrf_value(), http_only=False,
                                                              secure=_secure(request), max_age=None))
        return response

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        path = (STATIC / name).resolve()
        if (STATIC.resolve() not in path.parents or path.suffix not in ASSET_TYPES or not path.is_file()
                or path.name == "index.html"):
            return _error(404, "The resource could not be found.", "HTTPNotFound")
        headers = {**sess.SECURITY_HEADERS, "cache-control": "no-cache"}
        return FileResponse(path, media_type=ASSET_TYPES[path.suffix], headers=headers)

    async def session(self, request: Request) -> Response:
        verdict = sess.check_csrf(request.method, request.headers, request.cookies, _own_origin(request))
        if not verdict.ok:
            return _error(403, verdict.reason, "CsrfFailure")
        token = request.cookies.get(sess.TOKEN_COOKIE, "")
        async with self._identity(request) as client:
            if request.method == "GET":
                view = await self._session_view(client, token) if token else None
                # Not logged in is an answer, not an error: the page asks before showing the login form.
                return JSONResponse(view or {"logged_in": False}, headers=sess.SECURITY_HEADERS)
            if request.method == "DELETE":
                if token:
                    await client.delete("/auth/tokens",
                                        headers={"x-auth-token": token, "x-subject-token": token})
                    self.known.forget(sess.session_key(token))
                response = JSONResponse({}, headers=sess.SECURITY_HEADERS)
                response.headers.append("set-cookie", sess.cookie(sess.TOKEN_COOKIE, "", http_only=True,
                                                                  secure=_secure(request), max_age=0))
                return response
            try:
                body, _ = parse_json(await request.body() or b"{}")  # bounded depth: never a RecursionError
            except JsonRejected:
                return _error(400, "The request body is not JSON.", "BadRequest")
            if not isinstance(body, dict):
                return _error(400, "The request body must be an object.", "BadRequest")
            if request.method == "POST":
                auth = self._password_auth(body)
            else:
                if not token:
                    return _error(401, "Not logged in.", "Unauthenticated")
                auth = {"auth": {"identity": {"methods": ["token"], "token": {"id": token}},
                                 "scope": {"project": {"id": str(body.get("project_id", ""))}}}}
            try:
                resp = await client.post("/auth/tokens?nocatalog", json=auth)
            except httpx.HTTPError:
                return _error(503, "The identity service is unreachable.", "ServiceUnavailable")
            if resp.status_code != 201:
                message = resp.json().get("error", {}).get("message", "Login failed.")
                return _error(resp.status_code, message, "Unauthenticated")
            new_token = resp.headers["x-subject-token"]
            view = await self._session_view(client, new_token)
            if view is None:
                return _error(401, "The new token was refused.", "Unauthenticated")
            return self._with_token(request, view, new_token, view.get("expires_at"))

    @staticmethod
    def _password_auth(body: dict[str, Any]) -> dict[str, Any]:
        domain = str(body.get("domain") or "Default")
        auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {"user": {
            "name": str(body.get("username", "")), "password": str(body.get("password", "")),
            "domain": {"name": domain}}}}}
        if body.get("project"):
            auth["scope"] = {"project": {"name": str(body["project"]), "domain": {"name": domain}}}
        return {"auth": auth}

    async def proxy(self, request: Request) -> Response:
        path = request.path_params["path"]
        if (not path.startswith((NETWORK_PREFIX, IDENTITY_PREFIX)) or path.startswith(BLOCKED_PREFIXES)
                or ".." in path):
            return _error(404, "The resource could not be found.", "HTTPNotFound")
        verdict = sess.check_csrf(request.method, request.headers, request.cookies, _own_origin(request))
        if not verdict.ok:
            return _error(403, verdict.reason, "CsrfFailure")
        token = request.cookies.get(sess.TOKEN_COOKIE)
        if not token:
            return _error(401, "Not logged in.", "Unauthenticated")
        headers = {k: v for k in FORWARDED_HEADERS if (v := request.headers.get(k)) is not None}
        headers["x-auth-token"] = token
        query = ("?" + request.url.query) if request.url.query else ""
        if path.startswith(IDENTITY_PREFIX):
            client, url = self._identity(request), "/" + path.removeprefix(IDENTITY_PREFIX) + query
        else:
            client, url = self._client(request), "/" + path + query
        async with client:
            try:
                resp = await client.request(request.method, url, headers=headers, content=await request.body())
            except httpx.HTTPError:
                return _error(503, "The identity service is unreachable.", "ServiceUnavailable")
        out_headers = dict(sess.SECURITY_HEADERS)
        for name in ("content-type", "x-openstack-request-id"):
            if name in resp.headers:
                out_headers[name] = resp.headers[name]
        if request.method == "GET" and resp.status_code == 200 and path.startswith(NETWORK_PREFIX):
            try:
                self.known.add(sess.session_key(token), ids_in_body(resp.json()))
            except ValueError:
                pass
        return Response(resp.content, resp.status_code, headers=out_headers)

    async def events(self, request: Request) -> Response:
        token = request.cookies.get(sess.TOKEN_COOKIE)
        if not token:
            return _error(401, "Not logged in.", "Unauthenticated")
        async with self._identity(request) as identity:
            if await self._token_info(identity, token) is None:
                return _error(401, "Not logged in.", "Unauthenticated")
        client = self._client(request)
        known = self.known.of(sess.session_key(token))

        async def fetch(resource: str, ids: Sequence[str]) -> tuple[int, dict[str, dict[str, Any]]]:
            path, plural = COLLECTIONS[resource]
            found: dict[str, dict[str, Any]] = {}
            for start in range(0, len(ids), FETCH_CHUNK):
                query = "&".join(f"id={quote(i)}" for i in ids[start:start + FETCH_CHUNK])
                resp = await client.get(f"/v2.0/{path}?{query}", headers={"x-auth-token": token})
                if resp.status_code == 401:
                    return 401, {}
                if resp.status_code == 200:
                    found.update((o["id"], o) for o in resp.json().get(plural, []) if isinstance(o, dict))
            return 200, found

        async def body() -> Any:
            try:
                async for chunk in self.hub.stream(fetch, known):
                    yield chunk
            finally:
                await client.aclose()

        headers = {**sess.SECURITY_HEADERS, "x-accel-buffering": "no"}
        return StreamingResponse(body(), media_type="text/event-stream", headers=headers)
