"""The ASGI application: one explicit list of routes and middleware, built from the server's parts."""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from neutrino.api.controller import Controller
from neutrino.api.errors import json_response, keystone_error, neutron_error, render
from neutrino.api.limits import DEFAULT_MAX_BODY_BYTES, TOO_LARGE_MESSAGE, BodySizeLimit
from neutrino.context import RequestContext
from neutrino.errors import HTTPNotFound, MethodNotAllowed, NeutrinoError, Unauthenticated
from neutrino.resources.definition import Resource
from neutrino.resources.extensions import Extension

log = logging.getLogger(__name__)

Authenticator = Callable[[Request, str], Awaitable[RequestContext]]
AgentStates = Callable[[], Awaitable[Sequence[tuple[str, str, Mapping[str, Any]]]]]


class RequestIdMiddleware:
    """Every response carries ``x-openstack-request-id``; requests are counted and timed."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = "req-" + str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-openstack-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.metrics.observe(scope, status_holder["status"], time.perf_counter() - started)


class ApiMetrics:
    """Prometheus request counts and latencies per method, route and status.

    Every label value comes from a fixed set (the route table, the HTTP methods the API knows,
    status codes), never from the raw path or method a client sent: a flood of random URLs must
    not grow the metrics (or the server) without bound.
    """

    METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

    def __init__(self, route_label: Callable[[str], str]) -> None:
        self.route_label = route_label
        self.registry = CollectorRegistry()
        self.requests = Counter("neutrino_api_requests_total", "API requests", ["method", "resource", "status"],
                                registry=self.registry)
        self.latency = Histogram("neutrino_api_request_seconds", "API request latency", ["method", "resource"],
                                 registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
        # What each agent's reconciler reported with its last heartbeat (configurations.reconciler):
        # read from the database at each scrape, so the same in every worker and never summed.
        self.agents = _AgentGauges()
        self.agent_registry = CollectorRegistry()
        self.agent_registry.register(self.agents)

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        label = self.route_label(scope.get("path", ""))
        method = scope.get("method", "")
        method = method if method in self.METHODS else "other"
        code = str(status) if 100 <= status <= 599 else "other"
        self.requests.labels(method, label, code).inc()
        self.latency.labels(method, label).observe(seconds)

    def set_agents(self, reported: Sequence[tuple[str, str, Mapping[str, Any]]]) -> None:
        self.agents.reported = list(reported)  # agents that went away leave no stale series

    def render(self) -> Response:
        """With worker processes (``PROMETHEUS_MULTIPROC_DIR`` set by the supervisor), the request
        counts and latencies of every worker of this server host, added up."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
        else:
            registry = self.registry
        body = generate_latest(registry) + generate_latest(self.agent_registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)


class _AgentGauges(Collector):
    def __init__(self) -> None:
        self.reported: list[tuple[str, str, Mapping[str, Any]]] = []

    def collect(self) -> Iterable[Metric]:
        families = {field: GaugeMetricFamily(f"neutrino_agent_reconciler_{field}", help_text,
                                             labels=["host", "agent_type"])
                    for field, help_text in RECONCILER_GAUGES.items()}
        for host, agent_type, configurations in self.reported:
            state = configurations.get("reconciler")
            if not isinstance(state, Mapping):
                continue
            for field, family in families.items():
                value = state.get(field)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    family.add_metric([host, agent_type], value)
        return list(families.values())


RECONCILER_GAUGES = {
    "objects": "Desired objects the agent role's reconciler holds",
    "pending": "Objects asked for and not yet reconciled",
    "errors": "Objects whose last reconcile failed (retried with backoff)",
    "drift_actions": "Actions full resyncs took that no change or event asked for, since the agent started",
    "drift_objects": "Objects full resyncs found drifted, since the agent started",
    "full_resyncs": "Full resyncs since the agent started",
}


def route_labeller(controller: Controller) -> Callable[[str], str]:
    """The metrics label of a path: its collection in the route table, or a fixed name."""
    fixed = {"": "root", "v2.0": "v2.0", "healthz": "healthz", "metrics": "metrics", "openapi.json": "openapi"}

    def label(path: str) -> str:
        top, _, rest = path.strip("/").partition("/")
        if top == "v2.0" and rest:
            if rest.startswith("extensions"):
                return "extensions"
            try:
                return controller.route(rest).resource.collection
            except NeutrinoError:
                return "unmatched"
        if top in ("identity", "dashboard"):
            return top
        return fixed.get(top, "unmatched") if not rest else "unmatched"

    return label


def _metrics_view(metrics: ApiMetrics, agent_states: AgentStates | None) -> Callable[[Request], Awaitable[Response]]:
    async def metrics_view(request: Request) -> Response:
        if agent_states is not None:
            try:
                metrics.set_agents(await agent_states())
            except Exception:  # noqa: BLE001 - request metrics are still worth serving without the database
                log.warning("/metrics: could not read the agents' reported state")
        return metrics.render()

    return metrics_view


def metrics_app(metrics: ApiMetrics, agent_states: AgentStates | None = None) -> ASGIApp:
    """``/metrics`` alone, for a listener of its own (``[server] metrics_listen``)."""
    return Starlette(routes=[Route("/metrics", _metrics_view(metrics, agent_states), methods=["GET"])])


def build_app(*, controller: Controller, resources: Sequence[Resource], extensions: Sequence[Extension],
              authenticate: Authenticator, public_url: str, identity_app: ASGIApp | None,
              openapi: Callable[[], dict[str, Any]], health: Callable[[], Awaitable[bool]],
              dashboard: ASGIApp | None = None, agent_states: AgentStates | None = None,
              metrics: ApiMetrics | None = None, serve_metrics: bool = True,
              max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> ASGIApp:
    """The whole HTTP API. ``agent_states``: (host, agent type, configurations) of the agents, for
    their reconcilers' gauges. ``serve_metrics`` False leaves ``/metrics`` to another listener (or none)."""
    metrics = metrics or ApiMetrics(route_labeller(controller))
    auth_url = public_url + "/identity/v3"
    ext_by_alias = {e.alias: e for e in extensions}

    def base(request: Request) -> str:
        proto = request.headers.get("x-forwarded-proto", request.url.scheme)
        return f"{proto}://{request.url.netloc}"

    async def versions(request: Request) -> Response:
        return json_response({"versions": [{"id": "v2.0", "status": "CURRENT",
                                            "links": [{"rel": "self", "href": base(request) + "/v2.0/"}]}]})

    async def v2_root(request: Request) -> Response:
        try:
            await authenticate(request, request.state.request_id)
        except Unauthenticated as exc:
            return render(exc, auth_url)
        core = [r for r in resources if r.name in ("network", "subnet", "subnetpool", "port")]
        return json_response({"resources": [
            {"name": r.name, "collection": r.collection,
             "links": [{"rel": "self", "href": f"{base(request)}/v2.0/{r.path}"}]} for r in core]})

    async def api(request: Request) -> Response:
        # Not the route's parameter: its pattern's ``$`` matches before a trailing newline, which
        # would turn ``GET /v2.0/floatingips/%0A`` into the list instead of a show of id "\n".
        path = request.scope["path"].removeprefix("/v2.0/")
        try:
            ctx = await authenticate(request, request.state.request_id)
            if path.rstrip("/") in ("extensions", "extensions.json") or path.startswith("extensions/"):
                return extensions_view(request, path)
            return await controller.dispatch(request, ctx, path)
        except NeutrinoError as exc:
            return render(exc, auth_url)
        except Exception as exc:  # noqa: BLE001 - never leak a traceback to the client
            return render(exc, auth_url)

    def extensions_view(request: Request, path: str) -> Response:
        if request.method != "GET":
            return render(HTTPNotFound())
        parts = [p for p in path.split("/") if p]
        if len(parts) == 1:
            return json_response({"extensions": [e.view() for e in extensions]})
        alias = parts[1].removesuffix(".json")
        ext = ext_by_alias.get(alias)
        if ext is None or len(parts) > 2:
            return neutron_error("HTTPNotFound", "The resource could not be found.", 404)
        return json_response({"extension": ext.view()})

    async def healthz(request: Request) -> Response:
        ok = await health()
        return json_response({"status": "ok" if ok else "degraded"}, 200 if ok else 503)

    metrics_view = _metrics_view(metrics, agent_states)

    async def openapi_view(request: Request) -> Response:
        return json_response(openapi())

    async def not_found(request: Request) -> Response:
        path = request.url.path
        if identity_app is not None and (path == "/identity" or path.startswith("/identity/")):
            # What the identity mount cannot match (a newline in an id defeats its pattern) is
            # still the identity API's to answer, in Keystone's shape.
            return keystone_error(404, "Not Found", f"The resource {path} could not be found.")
        return neutron_error("HTTPNotFound", "The resource could not be found.", 404)

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
    routes: list[Any] = [
        Route("/", versions, methods=["GET"]),
        Route("/v2.0/", v2_root, methods=["GET"]),
        Route("/v2.0/{path:path}", api, methods=methods),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/openapi.json", openapi_view, methods=["GET"]),
    ]
    if serve_metrics:
        routes.append(Route("/metrics", metrics_view, methods=["GET"]))
    if identity_app is not None:
        routes.append(Mount("/identity", app=identity_app))
    if dashboard is not None:
        routes.append(Mount("/dashboard", app=dashboard))

    async def on_404(request: Request, exc: Exception) -> Response:
        return await not_found(request)

    async def on_405(request: Request, exc: Exception) -> Response:
        allow = getattr(exc, "headers", None) or {}
        return render(MethodNotAllowed(allow=tuple(m.strip() for m in allow.get("Allow", "").split(",") if m.strip())))

    def too_large(scope: Scope) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        path = scope.get("path", "")
        if identity_app is not None and (path == "/identity" or path.startswith("/identity/")):
            response = keystone_error(413, "Request Entity Too Large", TOO_LARGE_MESSAGE)
        else:
            response = neutron_error("HTTPRequestEntityTooLarge", TOO_LARGE_MESSAGE, 413)
        return 413, [(b"content-type", b"application/json")], bytes(response.body)

    app = Starlette(routes=routes, exception_handlers={404: on_404, 405: on_405})
    return RequestIdMiddleware(BodySizeLimit(app, max_body_bytes, too_large), metrics)
