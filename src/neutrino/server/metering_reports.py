"""The server's consumer of the metering agents' reports: logged, and counted in ``/metrics``.

Neutron leaves metering notifications to a telemetry service (Ceilometer); here the server itself
takes them from the bus, so an operator sees per-label traffic without one: every report is logged,
and each label's reports add up in ``neutrino_metering_label_packets_total`` /
``neutrino_metering_label_bytes_total`` (labels ``label_id``, ``host``). The API processes of a
server host compete on one named queue, so each report is counted once; with worker processes the
counters add up across them (prometheus multiprocess mode), as the request counters do.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from neutrino.bus.envelope import Envelope
from neutrino.contract.metering import REPORT_EVENT_TYPE, REPORT_TOPIC_PREFIX

log = logging.getLogger(__name__)

REPORTS_PATTERN = f"{REPORT_TOPIC_PREFIX}.#"
REPORTS_QUEUE = "neutrino.server.metering_reports"
# Reports that carry one label's whole traffic on a host (the others are finer cuts of the same).
_LABEL_TOTALS = (REPORT_EVENT_TYPE, f"{REPORT_EVENT_TYPE}.label")


class MeteringReports:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.packets = Counter("neutrino_metering_label_packets", "Packets metering labels counted, as reported",
                               ["label_id", "host"], registry=registry)
        self.bytes = Counter("neutrino_metering_label_bytes", "Bytes metering labels counted, as reported",
                             ["label_id", "host"], registry=registry)
        self.heard = 0

    async def __call__(self, envelope: Envelope) -> None:
        event_type = envelope.payload.get("event_type")
        payload: Any = envelope.payload.get("payload")
        if not isinstance(payload, dict):
            return
        self.heard += 1
        log.info("metering report %s from %s: %s", event_type, envelope.payload.get("publisher_id"),
                 {k: v for k, v in payload.items() if k != "host"})
        label, host = payload.get("label_id"), payload.get("host")
        pkts, nbytes = payload.get("pkts"), payload.get("bytes")
        if (event_type in _LABEL_TOTALS and isinstance(label, str) and isinstance(host, str)
                and isinstance(pkts, int) and isinstance(nbytes, int) and pkts >= 0 and nbytes >= 0):
            self.packets.labels(label, host).inc(pkts)
            self.bytes.labels(label, host).inc(nbytes)


__all__ = ["REPORTS_PATTERN", "REPORTS_QUEUE", "MeteringReports"]
