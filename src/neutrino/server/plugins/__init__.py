"""Plug-ins as in Neutron: the core plugin always, service plugins by configuration.

A plugin contributes resource definitions, the extensions it implements, its tables for quota
counting and tagging, and the service objects that serve its resources. Service plugins are found
through the ``neutrino.service_plugins`` entry-point group and enabled by name in
``[server] service_plugins``; nothing registers itself at import time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Protocol

from sqlalchemy import Table

from neutrino.config import Settings
from neutrino.db.engine import Database
from neutrino.resources.definition import Resource
from neutrino.resources.extensions import Extension
from neutrino.services.events import Notifier
from neutrino.services.quotas import QuotaService

# A role's desired state for one host: ``host -> record`` (a dataclass of ``neutrino.contract``).
DesiredStateProvider = Callable[[str], Awaitable[Any]]
# An agent RPC method beyond the common ones: the call's payload -> its JSON-able reply.
AgentCall = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass
class Components:
    """What every plugin may use to build its services (filled in by the composition root)."""

    settings: Settings
    db: Database
    notifier: Notifier
    quotas: QuotaService
    services: dict[str, Any] = field(default_factory=dict)  # services built so far, by key
    # The one table of what each agent role is sent by ``sync_state``, by role name ("l2", "l3"...).
    desired_state: dict[str, DesiredStateProvider] = field(default_factory=dict)
    # Agent RPC methods a plugin serves (a role's status reports), by method name.
    agent_calls: dict[str, AgentCall] = field(default_factory=dict)
    # The aliases ``/v2.0/extensions`` lists: a service shows an extension's nested keys only then.
    extensions: frozenset[str] = frozenset()
    # Names of the enabled plugins (``[server] service_plugins`` and the core).
    plugin_names: tuple[str, ...] = ()


class Plugin(Protocol):
    name: str

    def resources(self) -> Sequence[Resource]: ...

    def extensions(self) -> Sequence[Extension]: ...

    def taggable_tables(self) -> Mapping[str, Table]: ...

    def build_services(self, components: Components) -> Mapping[str, Any]: ...


class UnknownPlugin(Exception):
    pass


def load_service_plugins(names: Sequence[str]) -> list[Plugin]:
    """Instantiate the configured service plugins by entry-point name, in the configured order."""
    available = {ep.name: ep for ep in entry_points(group="neutrino.service_plugins")}
    plugins = []
    for name in names:
        ep = available.get(name)
        if ep is None:
            raise UnknownPlugin(f"service plugin '{name}' is not installed (known: {sorted(available)})")
        plugins.append(ep.load()())
    return plugins
