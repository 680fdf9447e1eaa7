"""The one generic controller: every resource is served from its declarative definition.

It implements the request contract once — body envelopes and bulk, attribute checks and
conversion, policy per action and per attribute, ``fields``, pagination links, If-Match and the
tags sub-resource — and calls the resource's service with plain data. No branch here names a
resource; behaviour hangs off the definitions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from neutrino.api.errors import json_response
from neutrino.api.limits import JsonRejected, parse_json
from neutrino.api.query import parse_list_query
from neutrino.context import RequestContext
from neutrino.errors import (
    BadRequest,
    HTTPBadRequest,
    HTTPNotFound,
    MethodNotAllowed,
    NeutrinoError,
    NotFound,
    PolicyNotAuthorized,
    TagNotFound,
    TagResourceNotFound,
    not_found,
)
from neutrino.resources.definition import MISSING, MemberAction, Resource
from neutrino.resources.types import InvalidValue, String

MAX_TAGS = 50
# Any integer, as Neutron reads it: a stale ``revision_number=-1`` fails the precondition (412).
_REVISION = re.compile(r"^revision_number=(-?\d+)$")
# PostgreSQL text cannot hold NUL, so no value may contain one, on any backend (ids, names, filters,
# markers, tags alike): refused once, here, rather than failing in the database.
_NUL_MESSAGE = "Invalid input: the request contains a NUL character, which no value may hold."


def _holds_nul(pair: tuple[str, str]) -> bool:
    """Whether a query parameter's name or value holds a NUL."""
    return "\x00" in pair[0] or "\x00" in pair[1]


@dataclass(frozen=True, slots=True)
class Route:
    """What a /v2.0 path resolved to."""

    resource: Resource
    parent_id: str | None = None
    member_id: str | None = None
    action: str | None = None  # member action name, or "tags"
    tag: str | None = None
    sub_id: str | None = None  # an id under a member action (scheduler endpoints)


class Controller:
    def __init__(self, resources: Sequence[Resource], services: Mapping[str, Any], policy: Any,
                 pagination_max_limit: int = -1) -> None:
        self.resources = list(resources)
        self.services = services
        self.policy = policy
        self.max_limit = pagination_max_limit
        self._by_path = {r.path: r for r in self.resources if r.parent is None}
        # Neutron's router finds a collection by either spelling of its name (``floatingip_pools``
        # and ``floatingip-pools``; clients use both): the other spelling is an alias.
        for res in list(self._by_path.values()):
            for alias in (res.path.replace("_", "-"), res.path.replace("-", "_")):
                self._by_path.setdefault(alias, res)
        self._children = {(r.parent.collection_path, r.path): r for r in self.resources if r.parent}
        self._tags_paths = {r.tags_path: r for r in self.resources if r.taggable and r.tags_path}

    # ---- routing -----------------------------------------------------------------------------

    def route(self, path: str) -> Route:
        segments = [s for s in path.split("/") if s]
        if segments and segments[-1].endswith(".json"):
            segments[-1] = segments[-1][:-5]
        if 3 <= len(segments) <= 4 and segments[0] in self._tags_paths and segments[2] == "tags":
            return Route(self._tags_paths[segments[0]], member_id=segments[1], action="tags",
                         tag=segments[3] if len(segments) == 4 else None)
        for width in (2, 1):
            head = "/".join(segments[:width])
            if len(segments) >= width and head in self._by_path:
                return self._route_rest(self._by_path[head], segments[width:])
        raise HTTPNotFound()

    def _route_rest(self, res: Resource, rest: list[str]) -> Route:
        if not rest:
            return Route(res)
        if len(rest) >= 2 and (res.path, rest[1]) in self._children:
            child = self._children[(res.path, rest[1])]
            sub = rest[2:]
            if len(sub) == 2 and child.has_action(sub[1]):  # ports/{id}/bindings/{host}/activate
                return Route(child, parent_id=rest[0], member_id=sub[0], action=sub[1])
            if len(sub) > 1:
                raise HTTPNotFound()
            return Route(child, parent_id=rest[0], member_id=sub[0] if sub else None)
        if len(rest) == 1:
            return Route(res, member_id=rest[0])
        if rest[1] == "tags" and res.taggable and len(rest) <= 3:
            return Route(res, member_id=rest[0], action="tags", tag=rest[2] if len(rest) == 3 else None)
        if res.has_action(rest[1]) and len(rest) <= 3:
            return Route(res, member_id=rest[0], action=rest[1], sub_id=rest[2] if len(rest) == 3 else None)
        raise HTTPNotFound()

    # ---- dispatch ----------------------------------------------------------------------------

    async def dispatch(self, request: Request, ctx: RequestContext, path: str) -> Response:
        if "\x00" in path or any(_holds_nul(pair) for pair in request.query_params.multi_items()):
            raise HTTPBadRequest(_NUL_MESSAGE)
        route = self.route(path)
        method = request.method
        res = route.resource
        if route.action == "tags":
            return await self._tags(request, ctx, route)
        if route.action is not None:
            act = res.action(route.action, method, sub_id=route.sub_id is not None)
            if act is None:
                raise MethodNotAllowed(allow=self.allowed_methods(route))
            return await self._member_action(request, ctx, route, act)
        if route.member_id is None:
            if method == "GET":
                return await self._list(request, ctx, route)
            if method == "POST" and res.allow_create:
                return await self._create(request, ctx, route)
            if method in ("PUT", "DELETE") and res.allow_update:
                # Neutron looks the (missing) id up and reports the typed NotFound.
                raise not_found(res.name, "None")
            raise MethodNotAllowed(allow=self.allowed_methods(route))
        if not res.allow_show:
            raise HTTPNotFound()  # a list-only collection has no member URLs
        if method == "GET":
            return await self._show(request, ctx, route)
        if method == "PUT" and res.allow_update:
            return await self._update(request, ctx, route)
        if method == "DELETE" and res.allow_delete:
            return await self._delete(request, ctx, route)
        raise MethodNotAllowed(allow=self.allowed_methods(route))

    @staticmethod
    def allowed_methods(route: Route) -> tuple[str, ...]:
        """The methods ``route``'s URL answers other than with 405, for the ``Allow`` header."""
        res = route.resource
        if route.action == "tags":
            return ("GET", "PUT", "DELETE") if route.tag is not None else ("GET", "POST", "PUT", "DELETE")
        if route.action is not None:
            sub = route.sub_id is not None
            return tuple(m for m in ("GET", "POST", "PUT", "DELETE") if res.action(route.action, m, sub_id=sub))
        if route.member_id is None:
            return ("GET", "POST") if res.allow_create else ("GET",)
        return ("GET", *(("PUT",) if res.allow_update else ()), *(("DELETE",) if res.allow_delete else ()))

    def service(self, res: Resource) -> Any:
        return self.services[res.service_key]

    def _parent_args(self, route: Route) -> tuple[Any, ...]:
        return (route.parent_id,) if route.resource.parent else ()

    # ---- reads -------------------------------------------------------------------------------

    async def _list(self, request: Request, ctx: RequestContext, route: Route) -> Response:
        res = route.resource
        query = parse_list_query(res, request.query_params.multi_items(), self.max_limit)
        items = await self.service(res).list(ctx, *self._parent_args(route), query)
        action = f"get_{res.policy_resource}"
        read_filter = self.policy.attribute_filter(ctx, res.policy_resource, res.attribute_names)
        allowed = self.policy.for_context(ctx).rule(action)  # bound to the caller once, not per item
        if allowed.constant is True:  # the caller's roles decide alone (admins): no targets needed
            visible = [self._present(ctx, res, item, query.fields, read_filter) for item in items]
        else:
            targets = await self._targets(ctx, res, items, route)
            visible = [self._present(ctx, res, item, query.fields, read_filter)
                       for item, target in zip(items, targets, strict=True) if allowed(target)]
        body: dict[str, Any] = {res.collection: visible}
        if query.paginated:
            body[f"{res.collection}_links"] = self._links(request, visible, items, query)
        return json_response(body)

    def _links(self, request: Request, visible: list[dict[str, Any]], items: list[dict[str, Any]],
               query: Any) -> list[dict[str, str]]:
        links = []
        base_params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("marker", "page_reverse")]
        proto = request.headers.get("x-forwarded-proto", request.url.scheme)
        base = f"{proto}://{request.url.netloc}{request.url.path}"
        # As Neutron: a short page ends the walk in its direction only. An empty page still links
        # back (without a marker, which then means "from the far end"): clients walking pages one
        # by one reach the empty end page and turn round from it.
        full = len(items) >= (query.limit or 0)
        if full or query.page_reverse:
            marker = [("marker", items[-1]["id"])] if items else []
            links.append({"rel": "next", "href": base + "?" + urlencode(base_params + marker)})
        if full or not query.page_reverse:
            marker = [("marker", items[0]["id"])] if items else []
            links.append({"rel": "previous", "href": base + "?" + urlencode(
                base_params + marker + [("page_reverse", "True")])})
        return links

    async def _show(self, request: Request, ctx: RequestContext, route: Route) -> Response:
        res = route.resource
        query = parse_list_query(res, request.query_params.multi_items(), for_show=True)
        extra = {"fields": query.fields} if res.show_takes_fields else {}
        item = await self.service(res).get(ctx, *self._parent_args(route), route.member_id, **extra)
        if isinstance(item, dict) and "__envelope__" in item:
            envelope = item.pop("__envelope__")
            return json_response({envelope: item})
        related = not self.policy.allowed_by_roles(ctx, f"get_{res.policy_resource}")
        target = await self._target(ctx, res, item, route, related)
        if not self._may_read(ctx, res, target, route):
            raise not_found(res.name, route.member_id or "")
        return json_response({res.name: self._present(ctx, res, item, query.fields)})

    def _present(self, ctx: RequestContext, res: Resource, item: dict[str, Any],
                 fields: Sequence[str] | None, read_filter: Any = None) -> dict[str, Any]:
        """Drop what policy hides from this caller, then apply ``fields``."""
        if read_filter is None:
            read_filter = self.policy.attribute_filter(ctx, res.policy_resource, res.attribute_names)
        hidden = read_filter.hidden(item) | res.unlisted_attributes
        if hidden:
            item = {k: v for k, v in item.items() if k not in hidden}
        if fields:
            item = {k: item[k] for k in fields if k in item}
        return item

    async def _targets(self, ctx: RequestContext, res: Resource, items: Sequence[Mapping[str, Any]],
                       route: Route) -> list[dict[str, Any]]:
        """Policy targets of a listed page; a service's ``policy_targets`` gathers the related
        objects' facts for the whole page at once instead of one lookup per item."""
        batch_fn = getattr(self.service(res), "policy_targets", None)
        if batch_fn is None:
            return [await self._target(ctx, res, item, route) for item in items]
        targets = [self._own_target(res, item, route) for item in items]
        for target, extra in zip(targets, await batch_fn(ctx, targets), strict=True):
            target.update(extra)
            target.setdefault("tenant_id", target.get("project_id"))
        return targets

    async def _target(self, ctx: RequestContext, res: Resource, item: Mapping[str, Any], route: Route,
                      related: bool = True) -> dict[str, Any]:
        """The policy target: the object plus owner facts of related objects (e.g. its network's).
        Without ``related`` (the caller's roles alone decide) those facts are not looked up."""
        extra_fn = getattr(self.service(res), "policy_target", None) if related else None
        target = self._own_target(res, item, route)
        if extra_fn is not None:
            target.update(await extra_fn(ctx, target))
        target.setdefault("tenant_id", target.get("project_id"))
        return target

    @staticmethod
    def _own_target(res: Resource, item: Mapping[str, Any], route: Route) -> dict[str, Any]:
        target = dict(item)
        if route.member_id is not None and route.parent_id is None:
            # Records that do not carry their id in the body (quotas) are still addressed by it.
            target.setdefault("id", route.member_id)
        if route.parent_id is not None and res.parent is not None:
            # A sub-resource's rules look at its parent (``ext_parent:*``), found through this id.
            target.setdefault(res.parent.id_attribute, route.parent_id)
        return target

    def _may_read(self, ctx: RequestContext, res: Resource, target: Mapping[str, Any], route: Route) -> bool:
        """``get_<resource>``, unless the service reads the caller's own record without policy
        (Neutron's quota API does: any role may read its own project's quota)."""
        own = getattr(self.service(res), "readable_without_policy", None)
        if own is not None and route.member_id is not None and own(ctx, route.member_id):
            return True
        return self.policy.check(ctx, f"get_{res.policy_resource}", target)

    # ---- writes ------------------------------------------------------------------------------

    async def _body(self, request: Request) -> Any:
        raw = await request.body()
        if not raw:
            return None
        try:
            body, nul = parse_json(raw)
        except JsonRejected as exc:
            raise HTTPBadRequest(exc.reason) from None
        if nul:
            raise HTTPBadRequest(_NUL_MESSAGE)
        return body

    def _items(self, res: Resource, body: Any) -> tuple[list[dict[str, Any]], bool]:
        if not isinstance(body, dict):
            raise HTTPBadRequest("Body contains invalid data")
        # As Neutron's prepare_request_body: the collection key wins over the resource key, and an
        # item holding the resource key is that key's value (other keys beside it are ignored).
        # A resource named like its collection (``security_groups_default_statefulness``) is bulk
        # only when the value is a list.
        if res.collection in body and not (res.collection == res.name and isinstance(body[res.name], dict)):
            if not res.allow_bulk:
                raise HTTPBadRequest("Bulk operation not supported")
            items = body[res.collection]
            if not isinstance(items, list):
                raise HTTPBadRequest(f"Object '{res.collection}' contains invalid data")
            if not items:
                raise HTTPBadRequest("Resources required")
            out = []
            for it in items:
                if isinstance(it, dict) and res.name in it:
                    it = it[res.name]
                if not isinstance(it, dict):
                    raise HTTPBadRequest(f"Object '{res.name}' contains invalid data")
                out.append(it)
            return out, True
        if res.name not in body:
            raise HTTPBadRequest(f"Unable to find '{res.name}' in request body")
        item = body[res.name]
        if not isinstance(item, dict):
            raise HTTPBadRequest(f"Object '{res.name}' contains invalid data")
        return [item], False

    def _project(self, ctx: RequestContext, item: dict[str, Any], res: Resource) -> None:
        if not res.project_owned:
            return
        tenant, project = item.get("tenant_id"), item.get("project_id")
        if tenant is not None and project is not None and tenant != project:
            raise HTTPBadRequest("'project_id' and 'tenant_id' do not match")
        given = project if project is not None else tenant
        if given is not None:
            try:
                String(255).convert(given)
            except InvalidValue as exc:
                raise HTTPBadRequest(f"Invalid input for project_id. Reason: {exc}.") from None
            if given != ctx.project_id and not ctx.is_privileged:
                raise HTTPBadRequest("Specifying 'project_id' or 'tenant_id' other than the authenticated "
                                     "project in request requires admin privileges")
        item.pop("tenant_id", None)
        item["project_id"] = given if given is not None else ctx.project_id

    def _convert(self, res: Resource, item: dict[str, Any], *, create: bool) -> dict[str, Any]:
        unknown = [k for k in item if res.attribute(k) is None or
                   (res.parent and k == res.parent.id_attribute)]
        if unknown:
            raise HTTPBadRequest(f"Unrecognized attribute(s) '{', '.join(unknown)}'")
        out: dict[str, Any] = {}
        for key, value in item.items():
            attr = res.attribute(key)
            assert attr is not None
            if key in ("project_id", "tenant_id") and create:
                # An owned resource's project was checked by _project; any other's is checked
                # as its attribute says (a 300-character project_id is no project).
                try:
                    out[key] = value if res.project_owned else attr.type.convert(value)
                except InvalidValue as exc:
                    raise HTTPBadRequest(f"Invalid input for {key}. Reason: {exc}.") from None
                continue
            if create and not attr.allow_post:
                raise HTTPBadRequest(f"Attribute '{key}' not allowed in POST")
            if not create and not attr.allow_put:
                raise HTTPBadRequest(f"Cannot update read-only attribute {key}")
            try:
                out[key] = attr.type.convert(value)
            except InvalidValue as exc:
                raise HTTPBadRequest(f"Invalid input for {key}. Reason: {exc}.") from None
        if create:
            for attr in res.attributes:
                if attr.is_required and attr.name not in out:
                    raise HTTPBadRequest(f"Failed to parse request. Required attribute '{attr.name}' not specified")
        return out

    def _convert_body(self, res: Resource, item: dict[str, Any], *, create: bool) -> dict[str, Any]:
        """The definition's attribute checks, or the service's own when its attribute set is open
        (quota limits name whatever resources are counted, known only once the server is composed)."""
        own = getattr(self.service(res), "convert_body", None)
        if own is not None:
            return own(item, create=create)
        return self._convert(res, item, create=create)

    @staticmethod
    def _defaults(res: Resource) -> dict[str, Any]:
        """Create-time defaults: a request value equal to its default triggers no attribute rule."""
        return {a.name: a.default for a in res.attributes if a.default is not MISSING}

    async def _create(self, request: Request, ctx: RequestContext, route: Route) -> Response:
        res = route.resource
        service = self.service(res)
        items, bulk = self._items(res, await self._body(request))
        action, defaults = f"create_{res.policy_resource}", self._defaults(res)
        # A service that reads the related objects its targets need inside its write anyway checks
        # the policy there, with what it read (one read instead of one here and one there).
        in_write = getattr(service, "checks_create_in_write", False)
        converted = []
        for raw in items:
            item = dict(raw)
            self._project(ctx, item, res)
            item = self._convert_body(res, item, create=True)
            if self.policy.for_context(ctx).rule(action).constant is False:
                # The caller's roles alone refuse (a member creating QoS rules): 403 as Neutron
                # answers, before looking up a parent the caller might not even see.
                raise PolicyNotAuthorized(action=action)
            related = not self.policy.allowed_by_roles(ctx, action, item, defaults)
            if not (in_write and related):
                target = await self._target(ctx, res, item, route, related)
                self.policy.enforce_attributes(ctx, action, target, item, defaults)
            converted.append(item)

        def authorize(item: dict[str, Any], facts: dict[str, Any]) -> None:
            if self.policy.allowed_by_roles(ctx, action, item, defaults):
                return  # checked above, without the related facts
            target = self._own_target(res, item, route)
            target.update(facts)
            target.setdefault("tenant_id", target.get("project_id"))
            self.policy.enforce_attributes(ctx, action, target, item, defaults)

        extra = {"authorize": authorize} if in_write else {}
        created = await service.create_many(ctx, *self._parent_args(route), converted, **extra)
        views = [self._present(ctx, res, c, None) for c in created]
        if bulk:
            return json_response({res.collection: views}, 201)
        return json_response({res.name: views[0]}, 201)

    def _if_match(self, request: Request) -> int | None:
        header = request.headers.get("if-match")
        if not header:
            return None
        # Entity tags may be quoted (RFC 9110); Neutron reads them through webob, which unquotes.
        etags = [p.strip().removeprefix("W/").strip('"') for p in header.split(",")]
        revs = [e for e in etags if e.startswith("revision_number=")]
        if not revs:
            return None
        if len(revs) > 1:
            raise BadRequest(resource="if-match", msg="Multiple revision_number etags are not supported.")
        m = _REVISION.match(revs[0])
        if not m:
            raise BadRequest(resource="if-match",
                             msg="Revision number etag must be in the format of revision_number=<int>")
        return int(m.group(1))

    async def _writable_target(self, ctx: RequestContext, route: Route, action: str,
                               request: Mapping[str, Any] | None = None, *, update: bool = False
                               ) -> dict[str, Any]:
        """Look the member up in the caller's scope and check the write rule: 403 if it may read it,
        404 if it may not (so the existence of others' objects never leaks)."""
        res = route.resource
        if res.member_is_project:
            # Clients that name no project send the string "None" (tempest's, neutronclient's):
            # Neutron takes it for the caller's own project, before its policy check too.
            project = ctx.project_id if route.member_id == "None" else route.member_id
            target = {"id": project, "project_id": project, "tenant_id": project}
            self.policy.enforce_attributes(ctx, action, target, request or {})
            return target
        service = self.service(res)
        by_roles = self.policy.allowed_by_roles(ctx, action, request)
        # When the roles alone decide, only existence in the caller's scope matters: a service's
        # ``find`` (the object's own row, no related lookups) is then enough.
        lookup = getattr(service, "find", None) if by_roles else None
        item = await (lookup or service.get)(ctx, *self._parent_args(route), route.member_id)
        target = await self._target(ctx, res, item, route, related=not by_roles)
        try:
            self.policy.enforce_attributes(ctx, action, target, request or {})
        except PolicyNotAuthorized:
            # Neutron's update (only) reads the object with its policy-required fields alone.
            fetched = {k: v for k, v in target.items() if not update or k not in res.unfetched_on_write}
            if not self._may_read(ctx, res, fetched, route):
                raise not_found(res.name, route.member_id or "") from None
            raise
        return target

    async def _update(self, request: Request, ctx: RequestContext, route: Route) -> Response:
        res = route.resource
        body = await self._body(request)
        if not isinstance(body, dict):
            raise HTTPBadRequest("Body contains invalid data")
        if res.collection in body and res.collection != res.name:
            raise HTTPBadRequest("Bulk operation not supported")  # updates are never bulk in Neutron
        if res.name not in body:
            raise HTTPBadRequest(f"Unable to find '{res.name}' in request body")
        raw = body[res.name]
        if not isinstance(raw, dict):
            raise HTTPBadRequest(f"Object '{res.name}' contains invalid data")
        changes = self._convert_body(res, dict(raw), create=False)
        if_rev = self._if_match(request)
        await self._writable_target(ctx, route, f"update_{res.policy_resource}", changes, update=True)
        updated = await self.service(res).update(ctx, *self._parent_args(route), route.member_id, changes,
                                                 if_revision=if_rev)
        return json_response({res.name: self._present(ctx, res, updated, None)})

    async def _delete(self, request: Request, ctx: RequestContext, route: Route) -> Response:
        res = route.resource
        if await request.body():
            raise HTTPBadRequest("Request body is not supported in DELETE.")
        if_rev = self._if_match(request)
        await self._writable_target(ctx, route, f"delete_{res.policy_resource}")
        await self.service(res).delete(ctx, *self._parent_args(route), route.member_id, if_revision=if_rev)
        return Response(status_code=204)

    async def _member_action(self, request: Request, ctx: RequestContext, route: Route,
                             act: MemberAction) -> Response:
        res = route.resource
        body = await self._body(request) if request.method in ("PUT", "POST") else None
        if request.method in ("PUT", "POST") and body is None and act.body_required:
            raise HTTPBadRequest("Body contains invalid data")
        policy_action = act.policy or act.name
        service = self.services[act.service] if act.service else self.service(res)
        if act.fetch_target:
            await self._writable_target(ctx, route, policy_action)
        else:
            own = getattr(service, "readable_without_policy", None)
            if not (request.method == "GET" and own is not None and own(ctx, route.member_id)):
                self.policy.enforce(ctx, policy_action, {"project_id": route.member_id,
                                                         "tenant_id": route.member_id})
        handler = getattr(service, act.handler_name)
        args: list[Any] = [ctx, *self._parent_args(route), route.member_id]
        if route.sub_id is not None:
            args.append(route.sub_id)
        result = await handler(*args, body)
        if act.status == 204 or result is None and act.status != 200 and not act.null_body:
            return Response(status_code=act.status)
        return json_response(result, act.status)

    # ---- tags --------------------------------------------------------------------------------

    def _check_tags(self, tags: Any) -> list[str]:
        if not isinstance(tags, list):
            raise HTTPBadRequest("Invalid input for tags. Reason: 'tags' must be a list.")
        for tag in tags:
            if not isinstance(tag, str) or not tag or len(tag) > 255 or "," in tag or "/" in tag:
                raise BadRequest(f"Invalid input for operation: '{tag}' is not a valid tag.",
                                 resource="tag", msg="")
        if len(set(tags)) != len(tags):
            raise BadRequest("Invalid input for operation: Duplicate tags in the list.", resource="tag", msg="")
        return tags

    async def _tags(self, request: Request, ctx: RequestContext, route: Route) -> Response:
        res = route.resource
        tags_svc = self.services["tags"]
        method = request.method
        verb = {"GET": "get", "POST": "create", "PUT": "update", "DELETE": "delete"}.get(method, "update")
        action = f"{verb}_{res.policy_resource}:tags"
        try:
            await self._writable_target(ctx, route, action)
        except NotFound:
            raise TagResourceNotFound(resource=res.name, resource_id=route.member_id) from None
        current = await tags_svc.get(res.name, route.member_id)
        if route.tag is None:
            if method == "GET":
                return json_response({"tags": current})
            if method == "DELETE":
                await tags_svc.replace(res, route.member_id, [])
                return Response(status_code=204)
            body = await self._body(request)
            if not isinstance(body, dict) or "tags" not in body:
                raise HTTPBadRequest("Invalid input for tags. Reason: body must contain 'tags'.")
            tags = self._check_tags(body["tags"])
            if method == "PUT":
                new = tags
            elif method == "POST":
                new = current + [t for t in tags if t not in current]
            else:
                raise MethodNotAllowed(allow=self.allowed_methods(route))
            if len(new) > MAX_TAGS:
                raise BadRequest(f"Bad tag request: Number of tags exceeds the limit of {MAX_TAGS}.",
                                 resource="tag", msg="")
            await tags_svc.replace(res, route.member_id, new)
            return json_response({"tags": tags if method == "POST" else new})
        tag = route.tag
        if method == "GET":
            if tag not in current:
                raise TagNotFound(tag=tag, resource=res.name, resource_id=route.member_id)
            return Response(status_code=204)
        if method == "PUT":
            self._check_tags([tag])
            if tag not in current:
                if len(current) >= MAX_TAGS:
                    raise BadRequest(f"Bad tag request: Number of tags exceeds the limit of {MAX_TAGS}.",
                                     resource="tag", msg="")
                await tags_svc.replace(res, route.member_id, current + [tag])
            return Response(status_code=201)
        if method == "DELETE":
            if tag not in current:
                raise TagNotFound(tag=tag, resource=res.name, resource_id=route.member_id)
            await tags_svc.replace(res, route.member_id, [t for t in current if t != tag])
            return Response(status_code=204)
        raise MethodNotAllowed(allow=self.allowed_methods(route))


__all__ = ["Controller", "Route", "NeutrinoError"]
