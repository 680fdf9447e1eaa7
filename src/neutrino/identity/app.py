"""The embedded identity's HTTP API: the Keystone v3 subset real OpenStack clients use.

Mounted by the server at ``/identity`` (so this app's ``/v3/auth/tokens`` is the public
``/identity/v3/auth/tokens``). The route table below is the whole API: path, methods, who may call
it, handler. Access: ``PUBLIC`` (no token), ``USER`` (any valid token; the handler may narrow it to
the caller's own objects), ``ADMIN`` (a project-scoped token with role ``admin``, which makes the
caller cloud admin as in Keystone's default policy). Errors use Keystone's body
``{"error": {"code", "title", "message"}}``; bad input is a 400, never a 500.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, compile_path, get_route_path

from neutrino.api.limits import JsonRejected, parse_json
from neutrino.config import Settings
from neutrino.db.engine import Database
from neutrino.errors import (
    BadRequest,
    Conflict,
    NeutrinoError,
    NotAuthorized,
    NotFound,
    ServiceUnavailable,
    Unauthenticated,
)
from neutrino.identity import documents, inputs
from neutrino.identity.documents import AssignmentNames, Urls
from neutrino.identity.model import Token
from neutrino.identity.roles import ADMIN, SERVICE
from neutrino.identity.store import IdentityStore, build_identity_store

log = logging.getLogger(__name__)

_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
           409: "Conflict", 500: "Internal Server Error", 503: "Service Unavailable"}
# Most specific first: the first base an error is an instance of decides its status.
_STATUS_BY_ERROR: tuple[tuple[type[NeutrinoError], int], ...] = (
    (Unauthenticated, 401), (NotAuthorized, 403), (NotFound, 404), (Conflict, 409), (BadRequest, 400),
    (ServiceUnavailable, 503))


class Access(enum.Enum):
    PUBLIC = "public"
    USER = "user"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Call:
    """One API call as handlers see it."""

    request: Request
    store: IdentityStore
    urls: Urls
    # The caller's validated token; None only on PUBLIC routes.
    caller: Token | None

    def path(self, name: str) -> str:
        return str(self.request.path_params[name])

    def query(self, name: str) -> str | None:
        return self.request.query_params.get(name)

    def flag(self, name: str) -> bool:
        """A Keystone boolean query flag: present and not ``0``/``false``."""
        value = self.request.query_params.get(name)
        return value is not None and value.strip().lower() not in ("0", "false", "no", "off")

    @property
    def is_admin(self) -> bool:
        return self.caller is not None and ADMIN in self.caller.subject.roles

    def require_admin_or_user(self, user_id: str) -> None:
        """Admins may act on anyone; other callers only on themselves."""
        if not self.is_admin and (self.caller is None or self.caller.subject.user.id != user_id):
            raise NotAuthorized("You are not authorized to perform the requested action.")

    async def body(self) -> Any:
        raw = await self.request.body()
        if not raw:
            raise BadRequest("The request body is empty; a JSON object is required.")
        try:
            document, nul = parse_json(raw)
        except JsonRejected as exc:
            message = exc.reason if "depth" in exc.reason else "The request body is not valid JSON."
            raise BadRequest(message) from None
        if nul:
            # Databases refuse NUL inside text (PostgreSQL errors out): refuse it up front.
            raise BadRequest("The request body must not contain NUL characters.")
        return document


Handler = Callable[[Call], Awaitable[Response]]


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def _no_content() -> Response:
    return Response(status_code=204)


def _error_response(status: int, message: str) -> JSONResponse:
    return _json(documents.error_body(status, _TITLES.get(status, "Error"), message), status)


# ---- discovery -------------------------------------------------------------------------------


async def versions(call: Call) -> Response:
    return _json(documents.versions(call.urls), 300)


async def version(call: Call) -> Response:
    return _json({"version": documents.version_v3(call.urls)})


# ---- tokens ----------------------------------------------------------------------------------


async def issue_token(call: Call) -> Response:
    auth = inputs.parse_auth_request(await call.body())
    if auth.method == "password":
        assert auth.user is not None and auth.password is not None
        token = await call.store.authenticate(auth.user, auth.password, auth.scope, unscoped=auth.unscoped)
    else:
        assert auth.token_id is not None
        token = await call.store.authenticate_with_token(auth.token_id, auth.scope, unscoped=auth.unscoped)
    body = await _token_document(call, token)
    return _json(body, 201, {"X-Subject-Token": token.id})


async def check_token(call: Call) -> Response:
    token = await _subject_token(call)
    if call.request.method == "HEAD":
        return Response(status_code=200, headers={"X-Subject-Token": token.id})
    return _json(await _token_document(call, token), 200, {"X-Subject-Token": token.id})


async def revoke_token(call: Call) -> Response:
    await call.store.revoke_token(await _subject_token(call))
    return _no_content()


async def auth_projects(call: Call) -> Response:
    assert call.caller is not None
    found = await call.store.list_user_projects(call.caller.subject.user.id, enabled_only=True)
    return _json(documents.collection("projects", (documents.project_body(p, call.urls) for p in found),
                                      f"{call.urls.v3}/auth/projects"))


async def _subject_token(call: Call) -> Token:
    """The token named by ``X-Subject-Token``, which the caller may inspect if it is an admin, a
    service, or the token's own user (Keystone's ``identity:validate_token``)."""
    assert call.caller is not None
    subject_id = call.request.headers.get("x-subject-token")
    if not subject_id:
        raise BadRequest("The X-Subject-Token header is required.")
    roles = call.caller.subject.roles
    try:
        token = await call.store.validate_token(subject_id)
    except Unauthenticated as exc:
        raise NotFound(f"Could not find token: {exc.msg}") from exc
    if ADMIN not in roles and SERVICE not in roles and token.subject.user.id != call.caller.subject.user.id:
        raise NotAuthorized("You are not authorized to perform the requested action: identity:validate_token.")
    return token


async def _token_document(call: Call, token: Token) -> dict[str, Any]:
    role_ids = {r.name: r.id for r in await call.store.list_roles()} if token.subject.roles else {}
    return documents.token_body(token, role_ids, call.urls, with_catalog="nocatalog" not in call.request.query_params)


# ---- domains ---------------------------------------------------------------------------------


async def list_domains(call: Call) -> Response:
    found = await call.store.list_domains(name=call.query("name"))
    return _json(documents.collection("domains", (documents.domain_body(d, call.urls) for d in found),
                                      f"{call.urls.v3}/domains"))


async def show_domain(call: Call) -> Response:
    return _json({"domain": documents.domain_body(await call.store.get_domain(call.path("domain_id")), call.urls)})


# ---- projects --------------------------------------------------------------------------------


async def list_projects(call: Call) -> Response:
    assert call.caller is not None
    name, domain_id = call.query("name"), call.query("domain_id")
    if call.is_admin:
        found = await call.store.list_projects(name=name, domain_id=domain_id)
    else:
        # Keystone's default policy: listing projects is for admins. A 403 here (not an empty list)
        # is what makes clients such as `openstack rbac create --target-project ID` fall back to
        # taking the value as a project id.
        raise NotAuthorized("You are not authorized to perform the requested action: identity:list_projects.")
    return _json(documents.collection("projects", (documents.project_body(p, call.urls) for p in found),
                                      f"{call.urls.v3}/projects"))


async def create_project(call: Call) -> Response:
    fields = inputs.parse_entity(await call.body(), "project", inputs.PROJECT_CREATE)
    project = await call.store.create_project(**fields)
    return _json({"project": documents.project_body(project, call.urls)}, 201)


async def show_project(call: Call) -> Response:
    assert call.caller is not None
    project_id = call.path("project_id")
    if not call.is_admin:
        mine = await call.store.list_user_projects(call.caller.subject.user.id)
        if project_id not in {p.id for p in mine}:
            raise NotAuthorized("You are not authorized to perform the requested action: identity:get_project.")
    return _json({"project": documents.project_body(await call.store.get_project(project_id), call.urls)})


async def update_project(call: Call) -> Response:
    fields = inputs.parse_entity(await call.body(), "project", inputs.PROJECT_UPDATE)
    project = await call.store.update_project(call.path("project_id"), **fields)
    return _json({"project": documents.project_body(project, call.urls)})


async def delete_project(call: Call) -> Response:
    await call.store.delete_project(call.path("project_id"))
    return _no_content()


# ---- users -----------------------------------------------------------------------------------


async def list_users(call: Call) -> Response:
    found = await call.store.list_users(name=call.query("name"), domain_id=call.query("domain_id"))
    return _json(documents.collection("users", (documents.user_body(u, call.urls) for u in found),
                                      f"{call.urls.v3}/users"))


async def create_user(call: Call) -> Response:
    fields = inputs.parse_entity(await call.body(), "user", inputs.USER_CREATE)
    user = await call.store.create_user(**fields)
    return _json({"user": documents.user_body(user, call.urls)}, 201)


async def show_user(call: Call) -> Response:
    user_id = call.path("user_id")
    call.require_admin_or_user(user_id)
    return _json({"user": documents.user_body(await call.store.get_user(user_id), call.urls)})


async def update_user(call: Call) -> Response:
    fields = inputs.parse_entity(await call.body(), "user", inputs.USER_UPDATE)
    user = await call.store.update_user(call.path("user_id"), **fields)
    return _json({"user": documents.user_body(user, call.urls)})


async def change_password(call: Call) -> Response:
    """Keystone's self-service change: the original password is the proof, no token needed."""
    fields = inputs.parse_entity(await call.body(), "user", inputs.PASSWORD_CHANGE)
    await call.store.change_password(call.path("user_id"), fields["original_password"], fields["password"])
    return _no_content()


async def delete_user(call: Call) -> Response:
    await call.store.delete_user(call.path("user_id"))
    return _no_content()


async def list_user_projects(call: Call) -> Response:
    user_id = call.path("user_id")
    call.require_admin_or_user(user_id)
    found = await call.store.list_user_projects(user_id)
    return _json(documents.collection("projects", (documents.project_body(p, call.urls) for p in found),
                                      f"{call.urls.v3}/users/{user_id}/projects"))


# ---- roles and assignments -------------------------------------------------------------------


async def list_roles(call: Call) -> Response:
    found = await call.store.list_roles(name=call.query("name"))
    return _json(documents.collection("roles", (documents.role_body(r, call.urls) for r in found),
                                      f"{call.urls.v3}/roles"))


async def create_role(call: Call) -> Response:
    fields = inputs.parse_entity(await call.body(), "role", inputs.ROLE_CREATE)
    return _json({"role": documents.role_body(await call.store.create_role(**fields), call.urls)}, 201)


async def show_role(call: Call) -> Response:
    return _json({"role": documents.role_body(await call.store.get_role(call.path("role_id")), call.urls)})


async def delete_role(call: Call) -> Response:
    await call.store.delete_role(call.path("role_id"))
    return _no_content()


async def grant_role(call: Call) -> Response:
    await call.store.assign_role(call.path("project_id"), call.path("user_id"), call.path("role_id"))
    return _no_content()


async def check_role(call: Call) -> Response:
    project_id, user_id, role_id = call.path("project_id"), call.path("user_id"), call.path("role_id")
    call.require_admin_or_user(user_id)
    if not await call.store.has_role(project_id, user_id, role_id):
        raise NotFound(f"Could not find role assignment with role: {role_id}, user: {user_id}, "
                       f"project: {project_id}.")
    return _no_content()


async def revoke_role(call: Call) -> Response:
    await call.store.unassign_role(call.path("project_id"), call.path("user_id"), call.path("role_id"))
    return _no_content()


async def list_project_user_roles(call: Call) -> Response:
    project_id, user_id = call.path("project_id"), call.path("user_id")
    call.require_admin_or_user(user_id)
    found = await call.store.list_user_roles_on_project(project_id, user_id)
    return _json(documents.collection("roles", (documents.role_body(r, call.urls) for r in found),
                                      f"{call.urls.v3}/projects/{project_id}/users/{user_id}/roles"))


async def list_role_assignments(call: Call) -> Response:
    user_id = call.query("user.id")
    if not call.is_admin:
        # Anyone may list their own assignments (``openstack role assignment list --auth-user``).
        if user_id is None:
            raise NotAuthorized("You are not authorized to perform the requested action: "
                                "identity:list_role_assignments.")
        call.require_admin_or_user(user_id)
    found = await call.store.list_role_assignments(
        user_id=user_id, project_id=call.query("scope.project.id"), role_id=call.query("role.id"),
        effective=call.flag("effective"))
    names = await _assignment_names(call, found) if call.flag("include_names") else None
    return _json(documents.collection("role_assignments",
                                      (documents.assignment_body(a, call.urls, names) for a in found),
                                      f"{call.urls.v3}/role_assignments"))


async def _assignment_names(call: Call, found: list[Any]) -> AssignmentNames:
    store = call.store
    return AssignmentNames(
        roles={r.id: r for r in await store.list_roles()},
        users={u.id: u for u in await store.list_users(ids={a.user_id for a in found})},
        projects={p.id: p for p in await store.list_projects(ids={a.project_id for a in found})},
        domains={d.id: d for d in await store.list_domains()},
    )


# ---- the route table -------------------------------------------------------------------------

_ASSIGNMENT = "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}"

ROUTES: tuple[tuple[str, tuple[str, ...], Access, Handler], ...] = (
    ("/", ("GET",), Access.PUBLIC, versions),
    ("/v3", ("GET",), Access.PUBLIC, version),
    ("/v3/", ("GET",), Access.PUBLIC, version),
    ("/v3/auth/tokens", ("POST",), Access.PUBLIC, issue_token),
    ("/v3/auth/tokens", ("GET", "HEAD"), Access.USER, check_token),
    ("/v3/auth/tokens", ("DELETE",), Access.USER, revoke_token),
    ("/v3/auth/projects", ("GET",), Access.USER, auth_projects),
    ("/v3/domains", ("GET",), Access.USER, list_domains),
    ("/v3/domains/{domain_id}", ("GET",), Access.USER, show_domain),
    ("/v3/projects", ("GET",), Access.USER, list_projects),
    ("/v3/projects", ("POST",), Access.ADMIN, create_project),
    ("/v3/projects/{project_id}", ("GET",), Access.USER, show_project),
    ("/v3/projects/{project_id}", ("PATCH",), Access.ADMIN, update_project),
    ("/v3/projects/{project_id}", ("DELETE",), Access.ADMIN, delete_project),
    ("/v3/projects/{project_id}/users/{user_id}/roles", ("GET",), Access.USER, list_project_user_roles),
    (_ASSIGNMENT, ("PUT",), Access.ADMIN, grant_role),
    (_ASSIGNMENT, ("GET", "HEAD"), Access.USER, check_role),
    (_ASSIGNMENT, ("DELETE",), Access.ADMIN, revoke_role),
    ("/v3/users", ("GET",), Access.ADMIN, list_users),
    ("/v3/users", ("POST",), Access.ADMIN, create_user),
    ("/v3/users/{user_id}", ("GET",), Access.USER, show_user),
    ("/v3/users/{user_id}", ("PATCH",), Access.ADMIN, update_user),
    ("/v3/users/{user_id}", ("DELETE",), Access.ADMIN, delete_user),
    ("/v3/users/{user_id}/projects", ("GET",), Access.USER, list_user_projects),
    ("/v3/users/{user_id}/password", ("POST",), Access.PUBLIC, change_password),
    ("/v3/roles", ("GET",), Access.USER, list_roles),
    ("/v3/roles", ("POST",), Access.ADMIN, create_role),
    ("/v3/roles/{role_id}", ("GET",), Access.USER, show_role),
    ("/v3/roles/{role_id}", ("DELETE",), Access.ADMIN, delete_role),
    ("/v3/role_assignments", ("GET",), Access.USER, list_role_assignments),
)


def _endpoint(handler: Handler, access: Access, store: IdentityStore, urls: Urls) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a handler: authenticate the caller as ``access`` demands, render domain errors."""

    async def endpoint(request: Request) -> Response:
        try:
            if "\x00" in request.url.path or "\x00" in str(request.query_params) or "%00" in str(request.url):
                raise BadRequest("The request must not contain NUL characters.")
            caller = None if access is Access.PUBLIC else await _authenticate(request, store)
            call = Call(request=request, store=store, urls=urls, caller=caller)
            if access is Access.ADMIN and not call.is_admin:
                raise NotAuthorized(f"You are not authorized to perform the requested action: "
                                    f"identity:{handler.__name__}.")
            return await handler(call)
        except NeutrinoError as exc:
            status = next((code for base, code in _STATUS_BY_ERROR if isinstance(exc, base)), 500)
            if status >= 500:
                log.error("identity %s %s failed: %s", request.method, request.url.path, exc)
            response = _error_response(status, exc.msg)
            if status == 401:
                # Keystone names itself in 401s; clients may use it to find where to authenticate.
                response.headers["WWW-Authenticate"] = f'Keystone uri="{urls.identity}"'
            return response

    endpoint.__name__ = handler.__name__
    return endpoint


async def _authenticate(request: Request, store: IdentityStore) -> Token:
    token_id = request.headers.get("x-auth-token")
    if not token_id:
        raise Unauthenticated("The request you have made requires authentication.")
    return await store.validate_token(token_id)


def _allowed_methods(path: str) -> str:
    """Every method the route table serves at ``path`` (one path may have several rows)."""
    methods = {m for template, ms, _, _ in ROUTES if compile_path(template)[0].match(path) for m in ms}
    return ", ".join(m for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE") if m in methods)


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 405:
        response = _error_response(405, f"The method {request.method} is not allowed for {request.url.path}.")
        allow = _allowed_methods(get_route_path(request.scope))
        if allow:
            response.headers["Allow"] = allow
        return response
    if status == 404:
        return _error_response(404, f"The resource {request.url.path} could not be found.")
    return _error_response(status, exc.detail if isinstance(exc, HTTPException) else "Internal error.")


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("identity %s %s failed", request.method, request.url.path)
    return _error_response(500, "An unexpected error prevented the server from fulfilling your request.")


def build_identity_app(db: Database, settings: Settings, *, public_url: str,
                       store: IdentityStore | None = None) -> Starlette:
    """The identity ASGI app, to be mounted at ``/identity`` of the server whose root is ``public_url``.

    Pass the same ``store`` to :class:`~neutrino.identity.strategy.EmbeddedStrategy` so that a token
    revoked here stops working on the network API at once rather than after the validation cache.
    """
    store = store or build_identity_store(db, settings.identity)
    urls = Urls(public_url=public_url.rstrip("/"), region=settings.identity.region)
    routes = [Route(path, _endpoint(handler, access, store, urls), methods=list(methods))
              for path, methods, access, handler in ROUTES]
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_error, Exception: _unexpected_error})

