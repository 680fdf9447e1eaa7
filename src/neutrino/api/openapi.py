"""``/openapi.json``: an OpenAPI 3 document generated from the same resource definitions the
controller serves, so it always describes the real API.

It lists what the controller routes, and nothing else: collections and members, declared member
actions, the tags sub-resource of taggable resources, sub-collections under their parent, the
discovery documents and ``/v2.0/extensions``. Identity (``/identity/v3``) is Keystone's API and is
documented by Keystone, not here.

Schemas are derived from the attribute value types, so a client (or a fuzzer) that follows them
sends values the converters accept. Error responses carry Neutron's ``NeutronError`` body, 401 the
keystonemiddleware body. Create responses carry OpenAPI links to the member operations, so tools
can follow an object from creation to deletion.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from neutrino.resources import types as t
from neutrino.resources.definition import TAG_FILTERS, Attribute, MemberAction, Resource
from neutrino.resources.extensions import Extension

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["NeutronError"],
    "properties": {"NeutronError": {"type": "object", "required": ["type", "message", "detail"], "properties": {
        "type": {"type": "string"}, "message": {"type": "string"}, "detail": {"type": "string"}}}},
}
UNAUTHORIZED_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "title", "message"], "properties": {
        "code": {"type": "integer"}, "title": {"type": "string"}, "message": {"type": "string"}}}},
}
# Neutron's quirk: NotImplementedError is rendered under its own key, not NeutronError.
NOT_IMPLEMENTED_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["NotImplementedError"],
    "properties": {"NotImplementedError": ERROR_SCHEMA["properties"]["NeutronError"]},
}
_LINK_SCHEMA: dict[str, Any] = {"type": "object", "required": ["rel", "href"],
                                "properties": {"rel": {"type": "string"}, "href": {"type": "string"}}}
# Tags: <= 255 characters, no comma (the list filter separator) and no slash (the URL separator).
_TAG_SCHEMA: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[^,/]+$"}
_MAC_PATTERN = "^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$"

# Statuses each kind of operation may answer besides success (what the controller can raise).
_LIST_ERRORS = (400, 401, 404)
_CREATE_ERRORS = (400, 401, 403, 404, 409, 503)
_SHOW_ERRORS = (400, 401, 404)
_UPDATE_ERRORS = (400, 401, 403, 404, 409, 412, 503)
_DELETE_ERRORS = (400, 401, 403, 404, 409, 412)
_ACTION_ERRORS = (400, 401, 403, 404, 409)
_TAG_ERRORS = (400, 401, 403, 404)


def value_schema(typ: Any) -> dict[str, Any]:
    """The JSON schema (OpenAPI 3.0 dialect) of values a type converter accepts and returns."""
    out: dict[str, Any]
    if isinstance(typ, t.Boolean):
        out = {"type": "boolean"}
    elif isinstance(typ, t.Integer):
        out = {"type": "integer", "minimum": typ.low, "maximum": typ.high}
    elif isinstance(typ, t.Count):
        out = {"type": "integer", "minimum": 0}
    elif isinstance(typ, t.Enum):
        out = {"enum": list(typ.values)}
        if all(isinstance(v, str) for v in typ.values):
            out["type"] = "string"
        elif all(isinstance(v, int) for v in typ.values):
            out["type"] = "integer"
    elif isinstance(typ, t.Uuid):
        out = {"type": "string", "format": "uuid"}
    elif isinstance(typ, t.String):
        out = {"type": "string"}
        if typ.max_len:
            out["maxLength"] = typ.max_len
        if typ.strict_name:
            # No control characters, no surrounding whitespace.
            out["pattern"] = r"^([^\x00-\x1f\x7f\s]([^\x00-\x1f\x7f]*[^\x00-\x1f\x7f\s])?)?$"
    elif isinstance(typ, t.IpAddress):
        out = {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]}
    elif isinstance(typ, t.MacAddress):
        out = {"type": "string", "pattern": _MAC_PATTERN}
    elif isinstance(typ, t.Cidr | t.IpOrCidr):
        out = {"type": "string"}
    elif isinstance(typ, t.ListOf):
        out = {"type": "array", "items": value_schema(typ.item)}
        if typ.unique:
            out["uniqueItems"] = True
        if typ.max_items is not None:
            out["maxItems"] = typ.max_items
    elif isinstance(typ, t.Dict):
        out = {"type": "object"}
        if not typ.free_form:
            types = dict(typ.types)
            out["properties"] = {k: value_schema(types[k]) if k in types else {}
                                 for k in (*typ.required, *typ.optional)}
            out["additionalProperties"] = False
            if typ.required:
                out["required"] = list(typ.required)
    else:  # Any_, Custom: validated by the service in context
        out = {}
    if getattr(typ, "nullable", False):
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        out["nullable"] = True
    return out


def _query_value_schema(attr: Attribute) -> dict[str, Any]:
    """A filter value: the filter converter's schema, or the item schema of a list attribute."""
    typ = attr.filter_converter
    if isinstance(typ, t.ListOf):
        typ = typ.item
    schema = value_schema(typ)
    if schema.get("type") in ("object", "array"):
        return {"type": "string"}
    schema.pop("nullable", None)
    if "enum" in schema:
        schema["enum"] = [v for v in schema["enum"] if v is not None]
    return schema


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _error_schema(status: int) -> dict[str, Any]:
    if status == 401:
        return UNAUTHORIZED_SCHEMA
    if status == 501:
        return NOT_IMPLEMENTED_SCHEMA
    return ERROR_SCHEMA


def _responses(ok_status: int, ok_schema: dict[str, Any] | None, errors: Sequence[int],
               links: dict[str, Any] | None = None) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "success"}
    if ok_schema is not None:
        ok["content"] = _json(ok_schema)
    if links:
        ok["links"] = links
    out: dict[str, Any] = {str(ok_status): ok}
    for code in errors:
        out[str(code)] = {"description": "error", "content": _json(_error_schema(code))}
    return out


def _array_param(name: str, items: dict[str, Any], description: str = "") -> dict[str, Any]:
    """A repeatable query parameter (``?name=a&name=b``), as Neutron's filters and sort keys are."""
    param: dict[str, Any] = {"name": name, "in": "query", "required": False, "style": "form", "explode": True,
                             "schema": {"type": "array", "items": items}}
    if description:
        param["description"] = description
    return param


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}}


_IF_MATCH = {"name": "If-Match", "in": "header", "required": False,
             "description": "revision_number=N: fail with 412 unless the object is at that revision.",
             "schema": {"type": "string"}}


class _ResourceDocument:
    """The paths of one resource, built from its definition."""

    def __init__(self, res: Resource) -> None:
        self.res = res
        self.tag = res.collection
        if res.parent is not None:
            self.base = f"/v2.0/{res.parent.collection_path}/{{parent_id}}/{res.path}"
            self.scope = [_path_param("parent_id", f"id of the parent {res.parent.resource}")]
        else:
            self.base = f"/v2.0/{res.path}"
            self.scope = []
        self.member_params = [*self.scope, _path_param("id", f"id of the {res.name}")]
        visible = [a for a in res.attributes if a.visible]
        self.object = {"type": "object", "properties": {
            a.name: value_schema(a.type if a.view_type is None else a.view_type) for a in visible}}
        self.one = {"type": "object", "required": [res.name], "properties": {res.name: self.object}}
        self.many = {"type": "object", "required": [res.collection], "properties": {
            res.collection: {"type": "array", "items": self.object}}}

    def op(self, verb: str, name: str, summary: str, params: list[dict[str, Any]], responses: dict[str, Any],
           body: dict[str, Any] | None = None) -> dict[str, Any]:
        operation: dict[str, Any] = {"operationId": f"{verb}_{name}", "summary": summary, "tags": [self.tag],
                                     "parameters": params, "responses": responses}
        if body is not None:
            operation["requestBody"] = {"required": True, "content": _json(body)}
        return operation

    def paths(self) -> dict[str, dict[str, Any]]:
        res = self.res
        paths: dict[str, dict[str, Any]] = {self.base: {"get": self.list_op()}}
        if res.allow_create:
            paths[self.base]["post"] = self.create_op()
        if not res.allow_show:
            return paths  # a list-only collection
        member: dict[str, Any] = {"get": self.op(
            "show", res.name, f"Show a {res.name}", [*self.member_params, self.fields_param()],
            _responses(200, self.one, _SHOW_ERRORS))}
        if res.allow_update:
            member["put"] = self.op("update", res.name, f"Update a {res.name}", [*self.member_params, _IF_MATCH],
                                    _responses(200, self.one, _UPDATE_ERRORS), self.body(create=False))
        if res.allow_delete:
            member["delete"] = self.op("delete", res.name, f"Delete a {res.name}",
                                       [*self.member_params, _IF_MATCH], _responses(204, None, _DELETE_ERRORS))
        paths[self.base + "/{id}"] = member
        for act in res.member_actions:
            path = f"{self.base}/{{id}}/{act.name}" + ("/{sub_id}" if act.sub_id else "")
            paths.setdefault(path, {})[act.method.lower()] = self.action_op(act)
        if res.taggable:
            paths.update(self.tag_paths())
        return paths

    def fields_param(self) -> dict[str, Any]:
        return _array_param("fields", {"type": "string", "enum": [a.name for a in self.res.attributes if a.visible]},
                            "attributes to return (default: all)")

    def list_op(self) -> dict[str, Any]:
        res = self.res
        params = [*self.scope, self.fields_param()]
        params += [_array_param(a.name, _query_value_schema(a), "filter: any of the values")
                   for a in res.attributes if a.filterable]
        if res.taggable:
            params += [_array_param(name, {"type": "string"}, "comma-separated tags") for name in TAG_FILTERS]
        sortable = [a.name for a in res.attributes if a.sortable]
        if sortable:
            params += [_array_param("sort_key", {"type": "string", "enum": sortable}),
                       _array_param("sort_dir", {"type": "string", "enum": ["asc", "desc"]},
                                    "one per sort_key")]
        ok = self.many
        if res.allow_pagination:
            params += [
                {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}},
                {"name": "marker", "in": "query", "required": False, "schema": {"type": "string"},
                 "description": f"id of the last {res.name} of the previous page"},
                {"name": "page_reverse", "in": "query", "required": False, "schema": {"type": "boolean"}},
            ]
            ok = {**self.many, "properties": {**self.many["properties"], f"{res.collection}_links": {
                "type": "array", "items": _LINK_SCHEMA}}}
        return self.op("list", res.collection, f"List {res.collection}", params, _responses(200, ok, _LIST_ERRORS))

    def body(self, *, create: bool) -> dict[str, Any]:
        res = self.res
        attrs = [a for a in res.attributes if (a.allow_post if create else a.allow_put)
                 and not (res.parent and a.name == res.parent.id_attribute)]
        inner: dict[str, Any] = {"type": "object", "properties": {a.name: value_schema(a.type) for a in attrs}}
        if attrs:
            inner["additionalProperties"] = False
        # else: the resource declares no writable attributes, so its service validates an open set
        # (quota limits name whatever resources the enabled plugins count).
        required = [a.name for a in attrs if create and a.is_required]
        if required:
            inner["required"] = required
        single = {"type": "object", "required": [res.name], "properties": {res.name: inner}}
        if not (create and res.allow_bulk):
            return single
        bulk = {"type": "object", "required": [res.collection], "properties": {
            res.collection: {"type": "array", "minItems": 1, "items": inner}}}
        return {"oneOf": [single, bulk]}

    def create_op(self) -> dict[str, Any]:
        res = self.res
        ok = {"oneOf": [self.one, self.many]} if res.allow_bulk else self.one
        member_ops = {f"show_{res.name}": "GET"} if res.allow_show else {}
        if res.allow_update:
            member_ops[f"update_{res.name}"] = "PUT"
        if res.allow_delete:
            member_ops[f"delete_{res.name}"] = "DELETE"
        if res.taggable:
            member_ops[f"list_{res.name}_tags"] = "GET"
        parameters = {"id": f"$response.body#/{res.name}/id"}
        if res.parent is not None:
            parameters["parent_id"] = "$request.path.parent_id"
        links = {op_id: {"operationId": op_id, "parameters": parameters} for op_id in member_ops}
        return self.op("create", res.name, f"Create a {res.name} (or several: bulk)", list(self.scope),
                       _responses(201, ok, _CREATE_ERRORS, links), self.body(create=True))

    def action_op(self, act: MemberAction) -> dict[str, Any]:
        params = list(self.member_params)
        if act.sub_id:
            params.append(_path_param("sub_id", f"id of the object the {act.name} action names"))
        body = {"type": "object"} if act.method in ("PUT", "POST") else None
        ok_schema: dict[str, Any] | None = None if act.status == 204 else {"type": "object"}
        if ok_schema is not None and act.null_body:
            ok_schema["nullable"] = True
        return self.op(act.handler_name, self.res.name, f"{act.name} ({self.res.name} action)", params,
                       _responses(act.status, ok_schema, _ACTION_ERRORS), body)

    def tag_paths(self) -> dict[str, dict[str, Any]]:
        name = self.res.name
        tags_body = {"type": "object", "required": ["tags"], "properties": {
            "tags": {"type": "array", "items": _TAG_SCHEMA, "uniqueItems": True, "maxItems": 50}}}
        one_tag = [*self.member_params, {"name": "tag", "in": "path", "required": True,
                                         "schema": _TAG_SCHEMA}]
        collection = {
            "get": self.op("list", f"{name}_tags", f"List the tags of a {name}", self.member_params,
                           _responses(200, tags_body, _TAG_ERRORS)),
            "put": self.op("replace", f"{name}_tags", f"Replace the tags of a {name}", self.member_params,
                           _responses(200, tags_body, _TAG_ERRORS), tags_body),
            "post": self.op("add", f"{name}_tags", f"Add tags to a {name}", self.member_params,
                            _responses(200, tags_body, _TAG_ERRORS), tags_body),
            "delete": self.op("clear", f"{name}_tags", f"Remove every tag of a {name}", self.member_params,
                              _responses(204, None, _TAG_ERRORS)),
        }
        single = {
            "get": self.op("check", f"{name}_tag", f"204 if the {name} has the tag", one_tag,
                           _responses(204, None, _TAG_ERRORS)),
            "put": self.op("set", f"{name}_tag", f"Add one tag to a {name}", one_tag,
                           _responses(201, None, _TAG_ERRORS)),
            "delete": self.op("remove", f"{name}_tag", f"Remove one tag of a {name}", one_tag,
                              _responses(204, None, _TAG_ERRORS)),
        }
        for operation in (*collection.values(), *single.values()):
            operation["tags"] = ["tags"]
        return {f"{self.base}/{{id}}/tags": collection, f"{self.base}/{{id}}/tags/{{tag}}": single}


def _discovery_paths() -> dict[str, dict[str, Any]]:
    extension = {"type": "object", "required": ["name", "alias", "description", "updated", "links"],
                 "properties": {"name": {"type": "string"}, "alias": {"type": "string"},
                                "description": {"type": "string"}, "updated": {"type": "string"},
                                "links": {"type": "array"}}}
    versions = {"type": "object", "required": ["versions"], "properties": {"versions": {"type": "array", "items": {
        "type": "object", "required": ["id", "status", "links"], "properties": {
            "id": {"type": "string"}, "status": {"type": "string"},
            "links": {"type": "array", "items": _LINK_SCHEMA}}}}}}
    resources = {"type": "object", "required": ["resources"], "properties": {"resources": {
        "type": "array", "items": {"type": "object", "required": ["name", "collection", "links"], "properties": {
            "name": {"type": "string"}, "collection": {"type": "string"},
            "links": {"type": "array", "items": _LINK_SCHEMA}}}}}}
    discovery = ["discovery"]
    return {
        "/": {"get": {"operationId": "list_versions", "summary": "API versions (no token needed)",
                      "tags": discovery, "security": [], "responses": _responses(200, versions, ())}},
        "/v2.0/": {"get": {"operationId": "list_core_resources", "summary": "The core collections",
                           "tags": discovery, "responses": _responses(200, resources, (401,))}},
        "/v2.0/extensions": {"get": {
            "operationId": "list_extensions", "summary": "Implemented extensions", "tags": discovery,
            "responses": _responses(200, {"type": "object", "required": ["extensions"], "properties": {
                "extensions": {"type": "array", "items": extension}}}, (401,))}},
        "/v2.0/extensions/{alias}": {"get": {
            "operationId": "show_extension", "summary": "One extension by alias", "tags": discovery,
            "parameters": [_path_param("alias", "extension alias")],
            "responses": _responses(200, {"type": "object", "required": ["extension"], "properties": {
                "extension": extension}}, (401, 404))}},
    }


def build_openapi(resources: Sequence[Resource], extensions: Sequence[Extension], public_url: str) -> dict[str, Any]:
    """The whole document for the resources and extensions this server was built with."""
    paths = _discovery_paths()
    for res in resources:
        paths.update(_ResourceDocument(res).paths())
    return {
        "openapi": "3.0.3",
        "info": {"title": "Neutrino Networking API", "version": "2.0",
                 "description": "OpenStack Networking API v2.0 as served by Neutrino. Authenticate with a "
                                "Keystone token from /identity/v3/auth/tokens. Extensions: "
                                + ", ".join(e.alias for e in extensions)},
        "servers": [{"url": public_url}],
        "tags": [{"name": r.collection, "description": r.description or f"{r.collection} ({r.extension or 'core'})"}
                 for r in resources] + [{"name": "tags", "description": "tags of taggable resources"},
                                        {"name": "discovery", "description": "versions and extensions"}],
        "components": {"securitySchemes": {"keystone": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}}},
        "security": [{"keystone": []}],
        "paths": paths,
    }
