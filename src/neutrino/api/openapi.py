"""``/openapi.json``: an OpenAPI 3 document generated from the same resource definitions the
controller serves, so it always describes the real API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from neutrino.resources import types as t
from neutrino.resources.definition import Attribute, Resource
from neutrino.resources.extensions import Extension

ERROR_SCHEMA = {
    "type": "object", "required": ["NeutronError"],
    "properties": {"NeutronError": {"type": "object", "required": ["type", "message", "detail"], "properties": {
        "type": {"type": "string"}, "message": {"type": "string"}, "detail": {"type": "string"}}}},
}
UNAUTHORIZED_SCHEMA = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "title", "message"], "properties": {
        "code": {"type": "integer"}, "title": {"type": "string"}, "message": {"type": "string"}}}},
}


def _schema(typ: Any) -> dict[str, Any]:
    nullable = getattr(typ, "nullable", False)
    if isinstance(typ, t.Boolean):
        out: dict[str, Any] = {"type": "boolean"}
    elif isinstance(typ, t.Integer):
        out = {"type": "integer"}
        if typ.minimum is not None:
            out["minimum"] = typ.minimum
        if typ.maximum is not None:
            out["maximum"] = typ.maximum
    elif isinstance(typ, t.Enum):
        out = {"enum": [v for v in typ.values]}
    elif isinstance(typ, t.Uuid):
        out = {"type": "string", "format": "uuid"}
    elif isinstance(typ, t.String):
        out = {"type": "string"}
        if typ.max_len:
            out["maxLength"] = typ.max_len
    elif isinstance(typ, t.IpAddress):
        out = {"type": "string", "format": "ip-address"}
    elif isinstance(typ, t.Cidr | t.MacAddress | t.IpOrCidr):
        out = {"type": "string"}
    elif isinstance(typ, t.ListOf):
        out = {"type": "array", "items": _schema(typ.item)}
    elif isinstance(typ, t.Dict):
        props = dict(typ.types)
        out = {"type": "object"}
        if not typ.free_form:
            out["properties"] = {k: _schema(props[k]) if k in props else {} for k in (*typ.required, *typ.optional)}
            if typ.required:
                out["required"] = list(typ.required)
    else:
        out = {}
    if nullable:
        out = {"anyOf": [out, {"type": "null"}]}
    return out


def _body_schema(res: Resource, attrs: Sequence[Attribute], required: Sequence[str]) -> dict[str, Any]:
    inner: dict[str, Any] = {"type": "object", "properties": {a.name: _schema(a.type) for a in attrs}}
    if required:
        inner["required"] = list(required)
    return {"type": "object", "required": [res.name], "properties": {res.name: inner}}


def _responses(ok_status: str, ok_schema: dict[str, Any] | None, errors: Sequence[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ok: dict[str, Any] = {"description": "success"}
    if ok_schema is not None:
        ok["content"] = {"application/json": {"schema": ok_schema}}
    out[ok_status] = ok
    for code in errors:
        schema = UNAUTHORIZED_SCHEMA if code == 401 else ERROR_SCHEMA
        out[str(code)] = {"description": "error", "content": {"application/json": {"schema": schema}}}
    return out


def build_openapi(resources: Sequence[Resource], extensions: Sequence[Extension], public_url: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for res in resources:
        base = f"/v2.0/{res.path}"
        if res.parent is not None:
            base = f"/v2.0/{res.parent.collection_path}/{{parent_id}}/{res.path}"
        params = [{"name": "parent_id", "in": "path", "required": True, "schema": {"type": "string"}}] \
            if res.parent else []
        visible = [a for a in res.attributes if a.visible]
        obj = {"type": "object", "properties": {a.name: _schema(a.type) for a in visible}}
        query = [{"name": a.name, "in": "query", "required": False, "schema": {"type": "string"}}
                 for a in res.attributes if a.filterable]
        query += [{"name": n, "in": "query", "required": False, "schema": s} for n, s in (
            ("fields", {"type": "string"}), ("limit", {"type": "integer", "minimum": 0}),
            ("marker", {"type": "string"}), ("sort_key", {"type": "string"}),
            ("sort_dir", {"enum": ["asc", "desc"]}))] if res.allow_pagination else []
        coll: dict[str, Any] = {"get": {
            "operationId": f"list_{res.collection}", "tags": [res.collection], "parameters": params + query,
            "responses": _responses("200", {"type": "object", "properties": {
                res.collection: {"type": "array", "items": obj}}}, (400, 401, 404))}}
        if res.allow_create:
            post_attrs = [a for a in res.attributes if a.allow_post]
            coll["post"] = {
                "operationId": f"create_{res.name}", "tags": [res.collection], "parameters": params,
                "requestBody": {"required": True, "content": {"application/json": {"schema": _body_schema(
                    res, post_attrs, [a.name for a in post_attrs if a.is_required])}}},
                "responses": _responses("201", {"type": "object", "properties": {res.name: obj}},
                                        (400, 401, 403, 404, 409))}
        paths[base] = coll
        member_params = params + [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
        member: dict[str, Any] = {"get": {
            "operationId": f"show_{res.name}", "tags": [res.collection], "parameters": member_params,
            "responses": _responses("200", {"type": "object", "properties": {res.name: obj}}, (401, 404))}}
        if res.allow_update:
            put_attrs = [a for a in res.attributes if a.allow_put]
            member["put"] = {
                "operationId": f"update_{res.name}", "tags": [res.collection], "parameters": member_params,
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": _body_schema(res, put_attrs, [])}}},
                "responses": _responses("200", {"type": "object", "properties": {res.name: obj}},
                                        (400, 401, 403, 404, 409, 412))}
        if res.allow_delete:
            member["delete"] = {"operationId": f"delete_{res.name}", "tags": [res.collection],
                                "parameters": member_params, "responses": _responses("204", None, (401, 403, 404, 409, 412))}
        paths[base + "/{id}"] = member
        if res.taggable:
            paths[base + "/{id}/tags"] = {
                "get": {"operationId": f"list_{res.name}_tags", "tags": ["tags"], "parameters": member_params,
                        "responses": _responses("200", {"type": "object", "properties": {
                            "tags": {"type": "array", "items": {"type": "string"}}}}, (401, 404))}}
    paths["/"] = {"get": {"operationId": "list_versions", "security": [], "responses": _responses("200", {
        "type": "object", "properties": {"versions": {"type": "array"}}}, ())}}
    paths["/v2.0/extensions"] = {"get": {"operationId": "list_extensions", "responses": _responses("200", {
        "type": "object", "properties": {"extensions": {"type": "array"}}}, (401,))}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Neutrino Networking API", "version": "2.0",
                 "description": "OpenStack Networking API v2.0 as served by Neutrino. Extensions: "
                                + ", ".join(e.alias for e in extensions)},
        "servers": [{"url": public_url}],
        "components": {"securitySchemes": {"keystone": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}}},
        "security": [{"keystone": []}],
        "paths": paths,
    }
