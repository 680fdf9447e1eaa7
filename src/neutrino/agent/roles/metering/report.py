"""Neutron's metering agent bookkeeping (pure): counter readings -> traffic per key -> reports.

Each measure reads every router's counters; what grew since the previous reading is added to the
key's entry (Neutron's ``metering_infos``: packets, bytes, seconds covered, first and last
update). A report (``flush``) sends every entry and zeroes it, then forgets entries not updated
for ``report_interval``, as Neutron's ``_metering_notification`` and ``_purge_metering_info``.

Keys: without granular traffic data one per label (its traffic summed over this host's routers);
with it, Neutron's ``label-<l>``, ``router-<r>``, ``project-<p>``, ``project-<p>-label-<l>`` and
``router-<r>-label-<l>``, each report telling its granularity.

The kernel counters are never reset: a delta is the reading less the previous one (a reading
below it means the counter was made again: all of it is new). A counter this process created
counts from zero; one it finds already there (the agent restarted) counts from its first reading,
so nothing is reported twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from neutrino.agent.roles.metering.desired import DIRECTIONS, RouterMeters, counter_name
from neutrino.contract.metering import REPORT_EVENT_TYPE, MeteringReport

Reading = tuple[int, int]  # (packets, bytes)


@dataclass
class _Info:
    granularity: str | None
    first_update: int
    last_update: int
    pkts: int = 0
    bytes: int = 0
    time: int = 0


@dataclass(frozen=True, slots=True)
class _Label:
    name: str
    shared: bool
    project_id: str  # the project of (the last) router it applies to here, as Neutron's label_project_id


class MeterBook:
    def __init__(self, host: str, *, granular: bool = False) -> None:
        self.host = host
        self.granular = granular
        self.infos: dict[str, _Info] = {}
        self._last: dict[tuple[str, str], Reading] = {}
        self._fresh: set[tuple[str, str]] = set()
        self._labels: dict[str, _Label] = {}
        self._routers: dict[str, str] = {}  # router id -> project id
        self._measured: dict[str, RouterMeters] = {}  # namespace -> what its counters were last read as

    def last_wish(self, netns: str) -> RouterMeters | None:
        """What the namespace's counters were last measured as (None: never measured)."""
        return self._measured.get(netns)

    def created(self, netns: str, counters: Iterable[str]) -> None:
        """These counters were just made by this process: all they count is new."""
        for name in counters:
            self._fresh.add((netns, name))
            self._last.pop((netns, name), None)

    def _delta(self, netns: str, name: str, reading: Reading | None) -> Reading:
        key = (netns, name)
        if reading is None:
            return (0, 0)
        before = self._last.get(key)
        self._last[key] = reading
        if before is None:
            if key in self._fresh:
                self._fresh.discard(key)
                return reading
            return (0, 0)  # found there: counted by an earlier process
        if reading[0] < before[0] or reading[1] < before[1]:
            return reading
        return (reading[0] - before[0], reading[1] - before[1])

    def measure(self, now: int, readings: Iterable[tuple[RouterMeters, Mapping[str, Reading]]], *,
                complete: bool = True) -> None:
        """Add what every router's counters grew by since the last measure. ``complete``: these are all
        the routers (readings of others are forgotten); False for a last look at one router's counters
        before a change deletes some of them (Neutron measures before removing a label or router)."""
        traffic: dict[str, tuple[int, int, str | None]] = {}

        def add(key: str, grew: Reading, granularity: str | None) -> None:
            pkts, nbytes, _ = traffic.get(key, (0, 0, granularity))
            traffic[key] = (pkts + grew[0], nbytes + grew[1], granularity)

        seen: set[tuple[str, str]] = set()
        for wish, counters in readings:
            self._measured[wish.netns] = wish
            self._routers[wish.router_id] = wish.project_id
            project_key, router_key = f"project-{wish.project_id}", f"router-{wish.router_id}"
            if self.granular:
                add(project_key, (0, 0), "project")
                add(router_key, (0, 0), "router")
            for label in wish.labels:
                self._labels[label.id] = _Label(label.name, label.shared, wish.project_id)
                grew = (0, 0)
                for direction in DIRECTIONS:
                    name = counter_name(label.id, direction)
                    seen.add((wish.netns, name))
                    d = self._delta(wish.netns, name, counters.get(name))
                    grew = (grew[0] + d[0], grew[1] + d[1])
                if not self.granular:
                    add(label.id, grew, None)
                    continue
                label_key = f"label-{label.id}"
                add(label_key, grew, "label")
                add(f"{project_key}-{label_key}", grew, "label_project")
                add(f"{router_key}-{label_key}", grew, "router_label")
                add(project_key, grew, "project")
                add(router_key, grew, "router")
        if complete:
            for gone in set(self._last) - seen:  # a router or label no longer here
                del self._last[gone]
            for netns in set(self._measured) - {ns for ns, _ in seen}:
                del self._measured[netns]
        for key, (pkts, nbytes, granularity) in traffic.items():
            info = self.infos.get(key)
            if info is None:
                info = self.infos[key] = _Info(granularity, now, now)
            info.pkts += pkts
            info.bytes += nbytes
            info.time += now - info.last_update
            info.last_update = now

    def flush(self, now: int, report_interval: float) -> list[tuple[str, MeteringReport]]:
        """Every entry as (event type, report); entries are zeroed, stale ones forgotten."""
        out = []
        for key, info in self.infos.items():
            event = REPORT_EVENT_TYPE if info.granularity is None else f"{REPORT_EVENT_TYPE}.{info.granularity}"
            out.append((event, self._report(key, info)))
            info.pkts = info.bytes = info.time = 0
        for key in [k for k, info in self.infos.items() if info.last_update < now - report_interval]:
            del self.infos[key]
        return out

    def give_back(self, event_type: str, report: MeteringReport) -> None:
        """A report that could not be sent: its traffic goes with the next one instead of being lost."""
        key = report.resource_id if self.granular else report.label_id
        if key is None:
            return
        granularity = event_type[len(REPORT_EVENT_TYPE) + 1:] or None
        info = self.infos.get(key)
        if info is None:
            info = self.infos[key] = _Info(granularity, report.first_update, report.last_update)
        info.pkts += report.pkts
        info.bytes += report.bytes
        info.time += report.time

    def _report(self, key: str, info: _Info) -> MeteringReport:
        base = {"pkts": info.pkts, "bytes": info.bytes, "time": info.time, "first_update": info.first_update,
                "last_update": info.last_update, "host": self.host}
        if not self.granular:
            label = self._labels.get(key)
            project = label.project_id if label is not None else None
            return MeteringReport(**base, label_id=key, project_id=project, tenant_id=project)
        extra: dict[str, object] = {"resource_id": key}
        head, sep, label_id = key.partition("label-")
        if sep:
            label = self._labels.get(label_id)
            extra.update(label_id=label_id, label_name=label.name if label else label_id,
                         label_shared=label.shared if label else None)
            owner = head[:-1]  # "", "router-<id>" or "project-<id>"
            if owner.startswith("router-"):
                extra["router_id"] = owner[len("router-"):]
                extra["project_id"] = self._routers.get(owner[len("router-"):])
            elif owner.startswith("project-"):
                extra["project_id"] = owner[len("project-"):]
            else:
                extra["project_id"] = "all" if label is not None and label.shared else (
                    label.project_id if label else None)
        elif key.startswith("router-"):
            extra["router_id"] = key[len("router-"):]
            extra["project_id"] = self._routers.get(key[len("router-"):])
        elif key.startswith("project-"):
            extra["project_id"] = key[len("project-"):]
        extra["tenant_id"] = extra.get("project_id")
        return MeteringReport(**base, **extra)  # type: ignore[arg-type]


__all__ = ["MeterBook"]
