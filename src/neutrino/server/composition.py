"""The composition root: builds the whole API server from settings, top to bottom.

Nothing registers itself at import time; every part is constructed here and handed what it needs.
"""

from __future__ import annotations

import logging
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp

from neutrino.api.app import ApiMetrics, build_app, metrics_app, route_labeller
from neutrino.api.controller import Controller
from neutrino.api.dashboard.app import Dashboard
from neutrino.api.openapi import build_openapi
from neutrino.bus.envelope import Envelope
from neutrino.bus.factory import build_bus
from neutrino.bus.interface import Bus
from neutrino.bus.memory import MemoryBroker, MemoryBus
from neutrino.config import Settings
from neutrino.context import RequestContext
from neutrino.db.engine import Database
from neutrino.db.migrate import ensure_current
from neutrino.identity.app import build_identity_app
from neutrino.identity.store import build_identity_store
from neutrino.identity.strategy import build_token_strategy, keystone_v3_root
from neutrino.policy.engine import PolicyEngine
from neutrino.resources.extensions import DNS_EXTENSIONS, with_requirements
from neutrino.server.agent_rpc import (
    CHANGES_TOPIC,
    AgentRpcHandlers,
    EventPublisher,
    changes_from_message,
    serve_agents,
)
from neutrino.server.metering_reports import REPORTS_PATTERN, REPORTS_QUEUE, MeteringReports
from neutrino.server.plugins import AgentCall, Components, DesiredStateProvider, load_service_plugins
from neutrino.server.plugins.core import CorePlugin
from neutrino.services.event_routing import EventAudience
from neutrino.services.events import Notifier
from neutrino.services.leases import BACKGROUND_JOBS, BackgroundJob, Lease, LeasedJobs
from neutrino.services.quotas import QuotaService
from neutrino.services.tags import TagService

log = logging.getLogger(__name__)


@dataclass
class Server:
    settings: Settings
    db: Database
    app: ASGIApp
    services: dict[str, Any]
    notifier: Notifier
    bus: Bus
    closers: list[Any] = field(default_factory=list)
    # What plugins registered for the agents: desired state by role, extra RPC methods by name.
    desired_state: dict[str, DesiredStateProvider] = field(default_factory=dict)
    agent_calls: dict[str, AgentCall] = field(default_factory=dict)
    # ``/metrics`` on a listener of its own (``[server] metrics_listen``), else None.
    metrics_app: ASGIApp | None = None
    dashboard: Dashboard = field(default_factory=Dashboard)
    # The metering agents' reports, counted for ``/metrics`` (None without the metering plugin).
    metering_reports: MeteringReports | None = None

    # What this process does: "all" (one process), "api" (an API worker) or "rpc" (an RPC worker).
    role: str = "all"
    background: LeasedJobs | None = None
    # This start of the server host (its workers share it): agents tell a restart from a slow reply.
    epoch: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def answers_agents(self) -> bool:
        return self.role in ("all", "rpc")

    async def start(self, *, answer_agents: bool | None = None) -> None:
        """Refuse an old schema, then connect the bus, answer agents and contend for the lease of
        the background jobs (agent failover) that run in one process across all server hosts."""
        await ensure_current(self.db)
        await self.bus.start()
        self.closers.append(self.bus.close)
        if self.role != "rpc" and not isinstance(self.bus, MemoryBus):
            # Every committed change, whichever process or host made it, reaches this process's
            # live event streams (the dashboard's) over the bus.
            await self.bus.subscribe(CHANGES_TOPIC, self._changes_heard)
        if self.role != "rpc" and self.metering_reports is not None:
            await self.bus.subscribe(REPORTS_PATTERN, self.metering_reports, queue=REPORTS_QUEUE)
        if self.answers_agents if answer_agents is None else answer_agents:
            handlers = AgentRpcHandlers(self.services["agent"], self.services["l2_agents"], self.desired_state,
                                        self.agent_calls, epoch=self.epoch)
            await serve_agents(self.bus, handlers)
            await handlers.announce_start(self.bus)
            failover = self.services["agent_failover"]
            self.background = LeasedJobs(
                Lease(self.db, BACKGROUND_JOBS, seconds=self.settings.server.background_lease_seconds),
                [BackgroundJob(failover.start, failover.stop)])
            self.background.start()
            self.closers.append(self.background.stop)

    async def _changes_heard(self, envelope: Envelope) -> None:
        changes = changes_from_message(envelope)
        if changes:
            await self.dashboard.listener(changes)

    async def close(self) -> None:
        for closer in reversed(self.closers):
            await closer()
        await self.db.dispose()


def build_server(settings: Settings, *, broker: MemoryBroker | None = None, role: str = "all",
                 epoch: str | None = None) -> Server:
    """``broker`` shares one in-process bus with agent roles of the same process (all-in-one);
    ``role``: see :attr:`Server.role`; ``epoch``: the server host's start, shared by its workers
    (a new one when None: this process is the whole server)."""
    db = Database(settings.database_url, pool_size=settings.database.pool_size, echo=settings.database.echo)
    notifier = Notifier()
    bus = build_bus(settings.bus.url, sender=f"server.{socket.gethostname()}", broker=broker)
    notifier.add_listener(EventPublisher(bus, changes=not isinstance(bus, MemoryBus), audience=EventAudience(db)))
    quotas = QuotaService(db, settings.quotas)
    components = Components(settings=settings, db=db, notifier=notifier, quotas=quotas)

    plugins = [CorePlugin(), *load_service_plugins(settings.server.service_plugins)]
    components.plugin_names = tuple(p.name for p in plugins)
    resources = [r for p in plugins for r in p.resources()]
    extensions = with_requirements([e for p in plugins for e in p.extensions()
                                    if e.alias not in DNS_EXTENSIONS or "dns" in settings.ml2.extension_drivers])
    listed = {e.alias for e in extensions}
    components.extensions = frozenset(listed)
    resources = [r.with_extensions(listed) for r in resources]
    taggable = {name: table for p in plugins for name, table in p.taggable_tables().items()}
    for plugin in plugins:
        components.services.update(plugin.build_services(components))
    components.services["tags"] = TagService(db, notifier, taggable)

    policy = PolicyEngine.from_override_file(settings.server.policy_file or None)
    controller = Controller(resources, components.services, policy, settings.server.pagination_max_limit)
    identity_store = build_identity_store(db, settings.identity)
    strategy = build_token_strategy(db, settings, store=identity_store)

    async def authenticate(request: Request, request_id: str) -> RequestContext:
        return await strategy.validate(request.headers, request_id)

    async def health() -> bool:
        try:
            async with db.read() as conn:
                await conn.exec_driver_sql("SELECT 1")
            return True
        except Exception:  # noqa: BLE001 - health reports, never raises
            log.warning("health check: database unreachable")
            return False

    public_url = settings.public_url
    openapi_doc = build_openapi(resources, extensions, public_url)
    identity_app = (build_identity_app(db, settings, public_url=public_url, store=identity_store)
                    if settings.identity.strategy == "embedded" else None)
    # The dashboard logs users in wherever the API validates their tokens.
    dashboard = Dashboard(identity_v3=keystone_v3_root(settings.identity.keystone_url)
                          if settings.identity.strategy == "keystone" else None)
    if isinstance(bus, MemoryBus):  # one process: its own commits are all there is
        notifier.add_listener(dashboard.listener)
    metrics = ApiMetrics(route_labeller(controller))
    listen = settings.server.metrics_listen
    agent_states = components.services["agent"].reported_configurations
    app = build_app(controller=controller, resources=resources, extensions=extensions,
                    authenticate=authenticate, public_url=public_url, identity_app=identity_app,
                    openapi=lambda: openapi_doc, health=health, dashboard=dashboard,
                    agent_states=agent_states, metrics=metrics, serve_metrics=listen == "",
                    max_body_bytes=settings.server.max_request_body_size)
    dashboard.bind(app)
    return Server(settings=settings, db=db, app=app, services=components.services, notifier=notifier, bus=bus,
                  closers=[strategy.close], desired_state=components.desired_state,
                  agent_calls=components.agent_calls, dashboard=dashboard, role=role,
                  epoch=epoch or uuid.uuid4().hex,
                  metrics_app=metrics_app(metrics, agent_states) if listen not in ("", "off") else None,
                  metering_reports=MeteringReports(metrics.registry) if "metering" in components.plugin_names
                  else None)
