"""One reconciler for every agent role: desired objects by key, a pure planner, one apply engine.

A role describes its kernel to the engine as a :class:`Target`:

* ``desired()`` fetches the role's full desired state from the server, as objects keyed by id;
* ``read(keys)`` reads what the kernel holds (all of it, or what the given objects need);
* ``owned(actual)`` names the objects the kernel holds that are ours, so a full resync can remove
  those nobody wants any more;
* ``plan(key, desired, actual)`` is pure: the actions (data) that make one object right, ``()`` when
  it already is; ``desired`` is None for an object to remove;
* ``run(key, action)`` carries out one action; raising is a failure of that object;
* optionally ``run_batch(items)``: many objects' actions at once, all or nothing (one ``nft -f``
  transaction), for a round with many objects to change (a cold start). When a batch fails, its
  objects run one by one, so one bad object fails alone and reports its own reason.

The engine keeps the desired table and, per object, a :class:`Status`: pending (asked for, not yet
reconciled), done, or error with the reason. An object's actions run in plan order and stop at
the first failure; objects run concurrently (a few at a time) by ``rank``, lowest first, and
removals after every update, highest rank first. An object whose ``requires`` failed is not run
and reports why. A failed object is retried on its own with exponential backoff (clock and jitter
injected), not only at the next full resync.

What starts a round: a full resync (at start, every ``resync_interval``, on ``request_full``;
debounced, so a burst of requests is one resync) reconciles every object, desired or owned;
change hints (``put``, ``remove``, ``hint``) reconcile just their objects as soon as no round is
running. Hints that arrive during a round are kept for the next one, never lost. A full resync
counts *drift*: actions it had to take for objects no hint, change or failure had asked about
(someone changed the kernel behind the agent's back, or an event was lost).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import enum
import logging
import random
import time
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["Backoff", "Outcome", "Reconciler", "Round", "State", "Status", "Target"]

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)  # an object's key
D = TypeVar("D")  # a desired object
V = TypeVar("V")  # a read of the kernel
A = TypeVar("A")  # an action

# How many objects' errors the summary names (the counts are always complete).
SUMMARY_ERRORS = 20


class State(enum.Enum):
    PENDING = "pending"
    DONE = "done"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Status:
    """Where one object stands."""

    state: State
    reason: str | None = None  # why it is in error
    attempts: int = 0  # failed rounds in a row
    retry_at: float | None = None  # when an object in error is tried again


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before the n-th retry: ``initial * factor**(n-1)``, at most ``maximum``, less up to ``jitter`` of it."""

    initial: float = 1.0
    factor: float = 2.0
    maximum: float = 60.0
    jitter: float = 0.2

    def delay(self, attempts: int, rng: random.Random) -> float:
        base = min(self.maximum, self.initial * self.factor ** max(0, attempts - 1))
        return base * (1.0 - self.jitter * rng.random())


@dataclass(frozen=True, slots=True)
class Outcome(Generic[A]):
    """What one round did for one object."""

    planned: tuple[A, ...]
    applied: tuple[A, ...]
    error: str | None = None
    removed: bool = False  # the object was not desired: its actions removed it


@dataclass(frozen=True, slots=True)
class Round(Generic[K, A]):
    """One reconcile: a full resync, or the objects hints and retries asked for."""

    full: bool
    outcomes: Mapping[K, Outcome[A]]
    drift: int = 0  # actions no hint, change or failure asked for (full rounds only)
    seconds: float = 0.0

    @property
    def actions(self) -> tuple[A, ...]:
        return tuple(a for outcome in self.outcomes.values() for a in outcome.planned)

    @property
    def failed(self) -> dict[K, str]:
        return {key: o.error for key, o in self.outcomes.items() if o.error is not None}


class Target(abc.ABC, Generic[K, D, V, A]):
    """What a role tells the engine about its part of the kernel (see the module)."""

    name: str = "role"
    # True: ``desired()`` may run while a round runs (it only asks the server), so hints are not held
    # up by the fetch of a full state; False: it runs under the round lock (it reads the kernel too).
    fetch_unlocked: bool = False

    @abc.abstractmethod
    async def desired(self) -> Mapping[K, D]:
        """The full desired state, fetched from the server."""

    @abc.abstractmethod
    async def read(self, keys: Collection[K] | None) -> V:
        """What the kernel holds: everything (``None``), or at least what ``keys`` need."""

    @abc.abstractmethod
    def owned(self, actual: V) -> Iterable[K]:
        """Keys of the objects of ours ``actual`` holds (a full resync removes the undesired ones)."""

    @abc.abstractmethod
    def plan(self, key: K, desired: D | None, actual: V) -> Sequence[A]:
        """Pure: the actions that make ``key`` right (remove it when ``desired`` is None)."""

    @abc.abstractmethod
    async def run(self, key: K, action: A) -> None:
        """Carry out one action; raise if the kernel refused."""

    # Objects per ``run_batch`` call; 0: the target does not batch. A rank with fewer objects to
    # change than ``batch_min`` runs them one by one (a change event's round: its errors stay exact).
    batch_size: int = 0
    batch_min: int = 8

    async def run_batch(self, items: Sequence[tuple[K, Sequence[A]]]) -> None:
        """Carry out every action of every item as one transaction; raise if any was refused (then
        nothing must have been applied: the engine retries each object on its own)."""
        raise NotImplementedError

    def rank(self, key: K) -> int:
        """Objects of lower rank are updated first and removed last."""
        return 0

    def requires(self, key: K, desired: D) -> Iterable[K]:
        """Objects that must be right before this one can be (a bridge before its taps)."""
        return ()

    async def settled(self, done: Round[K, A], desired: Mapping[K, D], actual: V) -> None:
        """After every round (report statuses to the server, remember what was wired...)."""


@dataclass
class _Counters:
    rounds: int = 0
    full_rounds: int = 0
    actions: int = 0
    failures: int = 0
    drift_actions: int = 0
    drift_objects: int = 0
    batch_fallbacks: int = 0  # batches refused whole, whose objects then ran one by one


class Reconciler(Generic[K, D, V, A]):
    """The desired table of one role and the loop that keeps the kernel equal to it."""

    def __init__(
        self,
        target: Target[K, D, V, A],
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        backoff: Backoff = Backoff(),
        debounce: float = 0.05,
        resync_interval: float | None = None,
        concurrency: int = 8,
    ) -> None:
        """``resync_interval``: seconds between full resyncs the engine starts itself (None: only on request)."""
        self.target = target
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._backoff = backoff
        self._debounce = debounce
        self._resync_interval = resync_interval
        self._gate = asyncio.Semaphore(max(1, concurrency))
        self._desired: dict[K, D] = {}
        self._status: dict[K, Status] = {}
        self._hinted: set[K] = set()
        self._full_wanted = False
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._last_full: float | None = None
        self._failed_rounds = 0  # rounds in a row that could not run at all (server unreachable...)
        self.counters = _Counters()
        self.last_round: Round[K, A] | None = None

    # ---- the desired table ---------------------------------------------------------------------

    @property
    def desired(self) -> Mapping[K, D]:
        return self._desired

    def put(self, key: K, obj: D) -> None:
        """Want ``obj`` for ``key``; reconciled soon if it differs from what was wanted."""
        if self._desired.get(key) != obj or key not in self._desired:
            self._desired[key] = obj
            self.hint((key,))

    def remove(self, key: K) -> None:
        """Want ``key`` gone; reconciled soon."""
        if self._desired.pop(key, None) is not None:
            self.hint((key,))

    def hint(self, keys: Iterable[K]) -> None:
        """Reconcile these objects soon (a change event, a link event)."""
        for key in keys:
            self._hinted.add(key)
            status = self._status.get(key)
            if status is None or status.state is not State.ERROR:
                self._status[key] = Status(State.PENDING)
        self._wake.set()

    def request_full(self) -> None:
        """A full resync soon; requests until it starts count once."""
        self._full_wanted = True
        self._wake.set()

    # ---- what operators and tests see ------------------------------------------------------------

    @property
    def full_pending(self) -> bool:
        return self._full_wanted

    @property
    def running(self) -> bool:
        return self._lock.locked()

    @property
    def pending(self) -> frozenset[K]:
        """Objects hinted and not yet taken by a round."""
        return frozenset(self._hinted)

    def status(self, key: K) -> Status | None:
        return self._status.get(key)

    def errors(self) -> dict[K, str]:
        return {k: s.reason or "" for k, s in self._status.items() if s.state is State.ERROR}

    def summary(self) -> dict[str, Any]:
        """JSON-able state for the agent's reported ``configurations`` and ``/metrics``."""
        states = {state: 0 for state in State}
        for status in self._status.values():
            states[status.state] += 1
        errors = sorted(self.errors().items(), key=lambda item: str(item[0]))
        c = self.counters
        return {
            "objects": len(self._desired),
            "pending": states[State.PENDING],
            "errors": states[State.ERROR],
            "failed_objects": {str(k): reason for k, reason in errors[:SUMMARY_ERRORS]},
            "drift_actions": c.drift_actions,
            "drift_objects": c.drift_objects,
            "full_resyncs": c.full_rounds,
            "rounds": c.rounds,
            "actions": c.actions,
            "failures": c.failures,
            "batch_fallbacks": c.batch_fallbacks,
        }

    # ---- rounds --------------------------------------------------------------------------------

    async def full(self) -> Round[K, A]:
        """Fetch the full desired state and reconcile every object, desired or owned; counts drift."""
        fetched: dict[K, D] | None = None
        if self.target.fetch_unlocked:
            self._full_wanted = False  # a request while the state travels may predate it: it counts again
            fetched = dict(await self.target.desired())
        async with self._lock:
            if fetched is None:
                self._full_wanted = False
            fresh = fetched if fetched is not None else dict(await self.target.desired())
            changed = {k for k in fresh.keys() | self._desired.keys() if fresh.get(k) != self._desired.get(k)}
            self._desired = fresh
            taken, self._hinted = self._hinted, set()
            asked = taken | changed | {k for k, s in self._status.items() if s.state is not State.DONE}
            actual = await self.target.read(None)
            keys = self._desired.keys() | set(self.target.owned(actual)) | asked
            done = await self._round(keys, actual, full=True, asked=asked)
            self._last_full = self._clock()
            return done

    async def run_pending(self) -> Round[K, A] | None:
        """Reconcile the hinted objects and those whose retry is due; None if there were none."""
        async with self._lock:
            now = self._clock()
            due = {k for k, s in self._status.items()
                   if s.state is State.ERROR and s.retry_at is not None and s.retry_at <= now}
            keys, self._hinted = self._hinted | due, set()
            if not keys:
                return None
            actual = await self.target.read(keys)
            return await self._round(keys, actual, full=False, asked=keys)

    async def _round(self, keys: Collection[K], actual: V, *, full: bool, asked: Collection[K]) -> Round[K, A]:
        started = self._clock()
        desired = dict(self._desired)
        target = self.target
        plans: dict[K, tuple[A, ...]] = {}
        outcomes: dict[K, Outcome[A]] = {}
        for key in keys:
            try:
                plans[key] = tuple(target.plan(key, desired.get(key), actual))
            except Exception as exc:  # noqa: BLE001 - a planner bug fails its object, not the round
                log.exception("%s: planning %r failed", target.name, key)
                outcomes[key] = Outcome((), (), f"planning failed: {exc}")
        updates = sorted((k for k in plans if k in desired), key=target.rank)
        removals = sorted((k for k in plans if k not in desired), key=target.rank, reverse=True)

        def blocked(key: K) -> str | None:
            """Why an object cannot be made right now: something it requires failed (this round or before)."""
            wanted = desired.get(key)
            if wanted is None:
                return None
            for needed in target.requires(key, wanted):
                blocker = outcomes.get(needed)
                status = self._status.get(needed)
                reason = blocker.error if blocker is not None else (
                    status.reason if status is not None and status.state is State.ERROR else None)
                if reason is not None:
                    return f"waiting for {needed}: {reason}"
            return None

        async def run_object(key: K) -> None:
            planned = plans[key]
            removed = key not in desired
            applied: list[A] = []
            async with self._gate:
                for action in planned:
                    try:
                        await target.run(key, action)
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:  # noqa: BLE001 - recorded on the object; retried with backoff
                        log.warning("%s: %r failed: %s", target.name, action, exc)
                        outcomes[key] = Outcome(planned, tuple(applied), f"{_describe(action)}: {exc}",
                                                removed=removed)
                        return
                    applied.append(action)
            outcomes[key] = Outcome(planned, tuple(applied), removed=removed)

        async def run_chunk(chunk: list[K]) -> None:
            try:
                async with self._gate:
                    await target.run_batch([(key, plans[key]) for key in chunk])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - each object is tried alone, for its own reason
                log.warning("%s: a batch of %d objects failed (%s); applying them one by one",
                            target.name, len(chunk), exc)
                self.counters.batch_fallbacks += 1
                await asyncio.gather(*(run_object(key) for key in chunk))
                return
            for key in chunk:
                outcomes[key] = Outcome(plans[key], plans[key], removed=key not in desired)

        async def run_all(busy: list[K]) -> None:
            size = target.batch_size
            if size <= 0 or len(busy) < max(2, target.batch_min):
                await asyncio.gather(*(run_object(key) for key in busy))
                return
            await asyncio.gather(*(run_chunk(busy[i:i + size]) for i in range(0, len(busy), size)))

        for batch in (*_by_rank(updates, target.rank), *_by_rank(removals, target.rank)):
            busy = []
            for key in batch:
                reason = blocked(key)
                if reason is not None:
                    outcomes[key] = Outcome(plans[key], (), reason)
                elif plans[key]:
                    busy.append(key)
                else:  # already right: no task to run (a settled host has thousands of these)
                    outcomes[key] = _NOTHING if key in desired else _NOTHING_REMOVED
            if busy:
                await run_all(busy)

        drift = self._account(outcomes, full=full, asked=asked)
        done = Round(full, outcomes, drift, self._clock() - started)
        self.last_round = done
        try:
            await target.settled(done, desired, actual)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - reporting trouble must not undo what was applied
            log.exception("%s: after a round", target.name)
        if done.actions:
            log.info("%s: %s round, %d actions (%d objects failed, %d drift) in %.3fs", target.name,
                     "full" if full else "keyed", len(done.actions), len(done.failed), drift, done.seconds)
        return done

    def _account(self, outcomes: Mapping[K, Outcome[A]], *, full: bool, asked: Collection[K]) -> int:
        c = self.counters
        c.rounds += 1
        c.full_rounds += int(full)
        now = self._clock()
        drift = 0
        for key, outcome in outcomes.items():
            c.actions += len(outcome.applied)
            if full and outcome.planned and key not in asked:
                drift += len(outcome.planned)
                c.drift_objects += 1
            if outcome.error is not None:
                c.failures += 1
                previous = self._status.get(key)
                attempts = (previous.attempts if previous is not None else 0) + 1
                retry_at = now + self._backoff.delay(attempts, self._rng)
                self._status[key] = Status(State.ERROR, outcome.error, attempts, retry_at)
            elif key in self._hinted:
                self._status[key] = Status(State.PENDING)  # asked again meanwhile
            elif outcome.removed:
                self._status.pop(key, None)
            else:
                self._status[key] = _DONE
        c.drift_actions += drift
        return drift

    # ---- the loop --------------------------------------------------------------------------------

    async def start(self, *, full: bool = True) -> None:
        """Run the loop: a full resync first (unless ``full`` is False: the caller starts one), then hints,
        retries and periodic resyncs."""
        if self._task is None:
            self._full_wanted = self._full_wanted or full
            self._task = asyncio.create_task(self._loop(), name=f"reconciler-{self.target.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _next_due(self) -> float | None:
        """Seconds until a retry or a periodic resync is due (None: nothing is scheduled)."""
        now = self._clock()
        times = [s.retry_at for s in self._status.values() if s.state is State.ERROR and s.retry_at is not None]
        if self._resync_interval is not None and self._last_full is not None:
            times.append(self._last_full + self._resync_interval)
        return max(0.0, min(times) - now) if times else None

    async def _loop(self) -> None:
        while True:
            if not (self._full_wanted or self._hinted):
                self._wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._next_due())
            periodic = (self._resync_interval is not None and self._last_full is not None
                        and self._clock() >= self._last_full + self._resync_interval)
            try:
                if self._full_wanted or periodic:
                    await asyncio.sleep(self._debounce)
                    await self.full()
                else:
                    await self.run_pending()
                self._failed_rounds = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a full resync tries again, backing off
                self._failed_rounds += 1
                log.warning("%s: round failed (%d in a row): %s", self.target.name, self._failed_rounds, exc)
                self._full_wanted = True
                await asyncio.sleep(self._backoff.delay(self._failed_rounds, self._rng))


# Shared by the many objects a round finds already right (frozen, so one instance serves all).
_DONE = Status(State.DONE)
_NOTHING: Outcome[Any] = Outcome((), ())
_NOTHING_REMOVED: Outcome[Any] = Outcome((), (), removed=True)


def _by_rank(keys: Sequence[K], rank: Callable[[K], int]) -> list[list[K]]:
    batches: list[list[K]] = []
    last: int | None = None
    for key in keys:
        r = rank(key)
        if r != last:
            batches.append([])
            last = r
        batches[-1].append(key)
    return batches


def _describe(action: object) -> str:
    return type(action).__name__


