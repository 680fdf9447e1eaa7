"""The metering role's desired state (``sync_state(host, "metering")``) and its reports, as frozen data.

As Neutron's ``get_sync_data_metering``: every admin-up router this host's L3 agent hosts that a
label applies to (a label applies to its own project's routers; a ``shared`` one to every router),
with the router's gateway port and each label's rules. The agent counts, per label, the traffic
its rules select on the router's ``qg-`` device and reports it on the bus
(:data:`REPORT_TOPIC_PREFIX`), in Neutron's metering notification shape (:class:`MeteringReport`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from neutrino.contract.codec import wire

_OPTIONAL = wire(omit_none=True)

# Reports travel as ``metering.<event type>``: ``metering.l3.meter`` (one per label), or with
# ``granular_traffic_data`` ``metering.l3.meter.<granularity>`` (label, router, project,
# label_project, router_label), as Neutron's metering agent names its notifications' event types.
REPORT_TOPIC_PREFIX = "metering"
REPORT_EVENT_TYPE = "l3.meter"


@dataclass(frozen=True, slots=True)
class MeteringRule:
    id: str
    direction: str            # "ingress" (into the router from outside) | "egress"
    excluded: bool = False
    remote_ip_prefix: str | None = None
    source_ip_prefix: str | None = None
    destination_ip_prefix: str | None = None


@dataclass(frozen=True, slots=True)
class MeteringLabel:
    id: str
    name: str = ""
    shared: bool = False
    project_id: str = ""
    rules: tuple[MeteringRule, ...] = ()


@dataclass(frozen=True, slots=True)
class MeteringRouter:
    router_id: str
    project_id: str
    name: str = ""
    gw_port_id: str | None = None  # None: no gateway, nothing to count
    labels: tuple[MeteringLabel, ...] = ()


@dataclass(frozen=True, slots=True)
class MeteringState:
    host: str
    routers: tuple[MeteringRouter, ...] = ()
    generated_at: float = 0.0
    role: str = field(default="metering", init=False)


@dataclass(frozen=True, slots=True)
class MeteringReport:
    """One metering notification: Neutron's ``l3.meter`` payload (traffic since the previous report).

    ``label_id``/``router_id``/``project_id`` are set as the report's granularity gives them (Neutron's
    ``create_notification_message_data``); ``tenant_id`` repeats ``project_id`` for older consumers.
    """

    pkts: int
    bytes: int
    time: int                   # seconds the counted traffic spans
    first_update: int           # epoch seconds
    last_update: int
    host: str
    label_id: str | None = field(default=None, metadata=_OPTIONAL)
    project_id: str | None = field(default=None, metadata=_OPTIONAL)
    tenant_id: str | None = field(default=None, metadata=_OPTIONAL)
    router_id: str | None = field(default=None, metadata=_OPTIONAL)
    resource_id: str | None = field(default=None, metadata=_OPTIONAL)   # granular: the counter's key
    label_name: str | None = field(default=None, metadata=_OPTIONAL)
    label_shared: bool | None = field(default=None, metadata=_OPTIONAL)


__all__ = ["MeteringLabel", "MeteringReport", "MeteringRouter", "MeteringRule", "MeteringState",
           "REPORT_EVENT_TYPE", "REPORT_TOPIC_PREFIX"]
