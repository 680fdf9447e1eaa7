"""Renders domain errors once, as Neutron's NeutronError body with the right status code."""

from __future__ import annotations

import json
import logging

import orjson
from starlette.responses import Response

from neutrino import errors as e

log = logging.getLogger(__name__)

STATUS_BY_BASE: tuple[tuple[type[e.NeutrinoError], int], ...] = (
    (e.Unauthenticated, 401),
    (e.BadRequest, 400),
    (e.NotFound, 404),
    (e.Conflict, 409),
    (e.NotAuthorized, 403),
    (e.ServiceUnavailable, 503),
    (e.PreconditionFailed, 412),
    (e.MethodNotAllowed, 405),
    (e.NotImplementedFeature, 501),
)


def status_for(exc: e.NeutrinoError) -> int:
    for base, status in STATUS_BY_BASE:
        if isinstance(exc, base):
            return status
    return 500


def json_response(body: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    try:
        content = orjson.dumps(body)
    except TypeError:
        # orjson stops at 64-bit integers; an IPv6 subnet's address count does not (a /64 holds
        # 2**64). The standard library writes any integer exactly, as Neutron does.
        content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(content, status_code=status, media_type="application/json", headers=headers)


def neutron_error(type_name: str, message: str, status: int) -> Response:
    return json_response({"NeutronError": {"type": type_name, "message": message, "detail": ""}}, status)


def keystone_error(status: int, title: str, message: str) -> Response:
    """Keystone's error body, for answers given on the identity API's behalf."""
    return json_response({"error": {"code": status, "title": title, "message": message}}, status)


def unauthorized(auth_url: str) -> Response:
    body = {"error": {"code": 401, "title": "Unauthorized",
                      "message": "The request you have made requires authentication."}}
    return json_response(body, 401, {"WWW-Authenticate": f'Keystone uri="{auth_url}"'})


def render(exc: BaseException, auth_url: str = "") -> Response:
    if isinstance(exc, e.Unauthenticated):
        return unauthorized(auth_url)
    if isinstance(exc, e.NeutrinoError):
        status = status_for(exc)
        if status == 500:
            log.error("unmapped domain error %s: %s", type(exc).__name__, exc)
            return neutron_error("HTTPInternalServerError", "Request Failed: internal server error while "
                                 "processing your request.", 500)
        if status == 501:
            return json_response({"NotImplementedError": {"type": "NotImplementedError", "message": exc.msg,
                                                          "detail": ""}}, 501)
        response = neutron_error(exc.type_name, exc.msg, status)
        if isinstance(exc, e.MethodNotAllowed) and exc.allow:
            response.headers["Allow"] = ", ".join(exc.allow)
        return response
    log.exception("internal error", exc_info=exc)
    return neutron_error("HTTPInternalServerError",
                         "Request Failed: internal server error while processing your request.", 500)
