"""What a server change event means to one host's l2 role. Pure: no I/O.

Every change event is a hint (docs/agent-contract.md §5); most are about other hosts. A port event
that names its host and network (additive payload keys) and cannot concern this host (another
host's port on a network with no port here, or an unbound port coming or going) costs nothing; a
port just bound here is fetched alone, so its tap is wired the moment it appears without a full
resync per instance of a burst; the echo of the role's own status report is old news. Anything
else asks for a (debounced, coalesced) full resync. This module is the one place that decides;
``role.LinuxBridgeRole.on_change`` carries the verdict out.
"""

from __future__ import annotations

import enum
from collections.abc import Container

from neutrino.contract.events import ChangeHint


class Verdict(enum.Enum):
    IGNORE = "ignore"  # cannot change anything here, or already applied
    RESYNC = "resync"  # a full resync (debounced)
    EXPECT = "expect"  # a port bound here: fetch it alone, wire its tap when it is there
    WAIT = "wait"  # maybe the echo of a report still in flight: judge again once it is answered


def judge(
    hint: ChangeHint,
    *,
    host: str,
    known_revision: int | None,
    reported_revision: int | None,
    report_pending: bool,
    port_networks: Container[str],
) -> Verdict:
    """``known_revision``: of the port as the role has it (None: not a port of this host as far as it
    knows); ``reported_revision``: the revision the role's own last report about it produced;
    ``report_pending``: a report about it is on its way (the server publishes the change a report
    makes before it answers); ``port_networks``: networks with a port of this host."""
    if hint.resource != "port":
        return Verdict.RESYNC
    revision = hint.revision
    if hint.op in ("create", "update"):
        if revision is not None and known_revision is not None and revision <= known_revision:
            return Verdict.IGNORE
        if revision is not None and reported_revision is not None and revision <= reported_revision:
            return Verdict.IGNORE
        if report_pending:
            return Verdict.WAIT
    if known_revision is not None or hint.host is None or hint.network_id is None:
        return Verdict.RESYNC  # one of ours, or a server that does not say where the port is
    if hint.host == host:
        return Verdict.EXPECT if hint.op in ("create", "update") else Verdict.RESYNC
    if hint.network_id in port_networks and not (hint.host == "" and hint.op in ("create", "delete")):
        return Verdict.RESYNC  # l2 population: another host's port on one of our networks
    # Another host's port on a network with no port here, or an unbound port that no host carries
    # (it has no tap and no FDB entry anywhere): nothing here changes.
    return Verdict.IGNORE
