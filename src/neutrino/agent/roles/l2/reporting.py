"""Which port status changes to tell the server (``update_device_up``/``down``). Pure: no I/O.

Neutron linuxbridge semantics, kept cheap: a port is reported up once per (port, revision) while
its tap is wired, so a periodic resync of a settled host sends nothing; a tap that disappears is
reported down once; a port with ``admin_state_up`` false is reported down. What was reported is
remembered by the caller (``reported``); a fresh process remembers nothing, so it takes what the
server already shows (a wired port it has ACTIVE, see ``known_to_server``) as reported and reports
every other wired port once, which corrects a server that missed an earlier report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass

from neutrino.contract.l2 import L2Port


@dataclass(frozen=True, slots=True)
class PortStatus:
    """What the server was told about a device, at which port revision."""

    revision: int
    up: bool


# Recorded when a report's delivery failed: "the server may believe it is up", so the next pass
# reports again whatever the device's state (up for a wired tap, down for a missing one).
UNCERTAIN = PortStatus(revision=-1, up=True)


@dataclass(frozen=True, slots=True)
class StatusReport:
    device: str
    status: PortStatus


def decide_reports(
    ports: Iterable[L2Port],
    *,
    present: Set[str],
    wired: Set[str],
    reported: Mapping[str, PortStatus],
    first_pass: bool = False,
) -> tuple[StatusReport, ...]:
    """The reports due for ``ports`` given which taps exist (``present``) and were wired.

    ``first_pass`` (the first full reconcile of this process) also reports down the desired ports
    whose tap is missing, in case the tap vanished while no agent was watching; later passes
    report down only a tap that was reported up, so a port whose instance is still being built
    costs no call.
    """
    reports = []
    for port in ports:
        device, last = port.device, reported.get(port.device)
        if device not in present:
            if (last is not None and last.up) or (last is None and first_pass):
                reports.append(StatusReport(device, PortStatus(port.revision, False)))
        elif device not in wired:
            continue  # its network cannot be wired here, or wiring failed: the next pass retries
        elif port.admin_state_up:
            if last != PortStatus(port.revision, True):
                reports.append(StatusReport(device, PortStatus(port.revision, True)))
        elif last is None or last.up:
            reports.append(StatusReport(device, PortStatus(port.revision, False)))
    return tuple(reports)


def known_to_server(
    ports: Iterable[L2Port], *, wired: Set[str], reported: Mapping[str, PortStatus]
) -> tuple[StatusReport, ...]:
    """Statuses to remember without sending: wired ports the server already shows ACTIVE, never reported here.

    Without this a restarted agent re-reports every port of its host (a thousand calls after a
    restart on a full host) to tell the server what it already knows.
    """
    return tuple(
        StatusReport(port.device, PortStatus(port.revision, True))
        for port in ports
        if port.status == "ACTIVE" and port.admin_state_up and port.device in wired and port.device not in reported
    )


def forgotten_devices(ports: Iterable[L2Port], reported: Mapping[str, PortStatus]) -> tuple[str, ...]:
    """Devices remembered as reported whose port is no longer desired here (deleted, unbound)."""
    wanted = {port.device for port in ports}
    return tuple(sorted(device for device in reported if device not in wanted))
