"""The generic reconciler on a fake kernel: a dict of objects, with failures and gates on demand."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from neutrino.agent.reconciler import Backoff, Reconciler, Round, State, Target


@dataclass(frozen=True)
class Put:
    key: str
    value: str


@dataclass(frozen=True)
class Delete:
    key: str


Action = Put | Delete


@dataclass
class FakeKernel(Target[str, str, dict[str, str], Action]):
    """Objects are strings by key; ``server`` is what the desired-state fetch returns."""

    name = "fake"
    server: dict[str, str] = field(default_factory=dict)
    objects: dict[str, str] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)  # key -> how many more runs fail
    gates: dict[str, asyncio.Event] = field(default_factory=dict)  # key -> wait before running
    entered: dict[str, asyncio.Event] = field(default_factory=dict)
    runs: list[Action] = field(default_factory=list)
    rounds: list[Round[str, Action]] = field(default_factory=list)

    async def desired(self) -> Mapping[str, str]:
        return dict(self.server)

    async def read(self, keys: Collection[str] | None) -> dict[str, str]:
        return dict(self.objects)

    def owned(self, actual: dict[str, str]) -> Iterable[str]:
        return actual.keys()

    def plan(self, key: str, desired: str | None, actual: dict[str, str]) -> Sequence[Action]:
        if desired is None:
            return (Delete(key),) if key in actual else ()
        return (Put(key, desired),) if actual.get(key) != desired else ()

    async def run(self, key: str, action: Action) -> None:
        self.runs.append(action)
        if key in self.entered:
            self.entered[key].set()
        if key in self.gates:
            await self.gates[key].wait()
        if self.failures.get(key, 0) > 0:
            self.failures[key] -= 1
            raise OSError(f"device {key} is busy")
        if isinstance(action, Put):
            self.objects[key] = action.value
        else:
            del self.objects[key]

    async def settled(self, done: Round[str, Action], desired: Mapping[str, str], actual: dict[str, str]) -> None:
        self.rounds.append(done)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def reconciler(kernel: FakeKernel, clock: Clock | None = None, **kwargs: object) -> Reconciler[str, str, dict[str, str], Action]:
    return Reconciler(kernel, clock=clock or Clock(), rng=random.Random(7), debounce=0.0, **kwargs)  # type: ignore[arg-type]


async def test_a_failing_action_is_retried_with_backoff_and_its_object_reports_the_reason() -> None:
    kernel = FakeKernel(server={"a": "1", "b": "2"}, failures={"a": 2})
    clock = Clock()
    engine = reconciler(kernel, clock, backoff=Backoff(initial=2.0, factor=2.0, maximum=60.0, jitter=0.0))

    first = await engine.full()
    assert first.failed == {"a": "Put: device a is busy"}
    status = engine.status("a")
    assert status is not None and status.state is State.ERROR
    assert status.reason == "Put: device a is busy" and status.attempts == 1
    assert status.retry_at == clock.now + 2.0
    assert engine.status("b").state is State.DONE  # type: ignore[union-attr]
    assert kernel.objects == {"b": "2"}
    assert engine.summary()["failed_objects"] == {"a": "Put: device a is busy"}

    clock.now += 1.0
    assert await engine.run_pending() is None  # not due yet: nothing runs
    clock.now += 1.0
    second = await engine.run_pending()
    assert second is not None and set(second.outcomes) == {"a"}  # only the failed object, no full resync
    status = engine.status("a")
    assert status.state is State.ERROR and status.attempts == 2  # type: ignore[union-attr]
    assert status.retry_at == clock.now + 4.0  # type: ignore[union-attr]  # the delay doubled

    clock.now += 4.0
    third = await engine.run_pending()
    assert third is not None and third.failed == {}
    assert engine.status("a").state is State.DONE  # type: ignore[union-attr]
    assert kernel.objects == {"a": "1", "b": "2"}
    assert engine.errors() == {}


async def test_jitter_shortens_the_delay_by_at_most_its_share() -> None:
    backoff = Backoff(initial=1.0, factor=3.0, maximum=10.0, jitter=0.5)
    rng = random.Random(1)
    for attempts, base in ((1, 1.0), (2, 3.0), (3, 9.0), (4, 10.0), (9, 10.0)):
        delay = backoff.delay(attempts, rng)
        assert base * 0.5 <= delay <= base


async def test_an_unchanged_desired_state_plans_zero_actions() -> None:
    kernel = FakeKernel(server={"a": "1", "b": "2"}, objects={"stale": "x"})
    engine = reconciler(kernel)
    first = await engine.full()
    assert sorted(map(repr, first.actions)) == sorted(map(repr, (Put("a", "1"), Put("b", "2"), Delete("stale"))))
    kernel.runs.clear()

    again = await engine.full()
    assert again.actions == ()
    assert kernel.runs == []
    assert again.drift == 0
    assert {k: engine.status(k).state for k in ("a", "b")} == {"a": State.DONE, "b": State.DONE}  # type: ignore[union-attr]
    assert engine.status("stale") is None  # removed objects leave the table


async def test_a_hint_during_a_resync_is_not_lost() -> None:
    kernel = FakeKernel(server={"a": "1", "b": "2"})
    kernel.gates["a"] = asyncio.Event()
    kernel.entered["a"] = asyncio.Event()
    engine = reconciler(kernel)
    await engine.start()
    try:
        await kernel.entered["a"].wait()  # the first full resync is applying "a" now
        assert engine.running
        engine.put("b", "3")  # a change event for "b" while the resync holds the old desired state
        kernel.gates["a"].set()
        # Wait for the engine to record the outcome, not only for the kernel write: under load the
        # write can be seen before the engine marks "b" done, and stopping then would lose the mark.
        while kernel.objects.get("b") != "3" or engine.pending or engine.status("b").state is not State.DONE:  # type: ignore[union-attr]
            await asyncio.sleep(0.01)
    finally:
        await engine.stop()
    assert kernel.objects == {"a": "1", "b": "3"}
    assert engine.status("b").state is State.DONE  # type: ignore[union-attr]
    assert engine.pending == frozenset()


async def test_hints_that_arrive_together_make_one_round() -> None:
    kernel = FakeKernel(server={})
    engine = reconciler(kernel)
    await engine.full()
    for key in "abc":
        engine.put(key, key.upper())
    assert engine.pending == {"a", "b", "c"}
    assert {engine.status(k).state for k in "abc"} == {State.PENDING}  # type: ignore[union-attr]
    done = await engine.run_pending()
    assert done is not None and not done.full and set(done.outcomes) == {"a", "b", "c"}
    assert await engine.run_pending() is None
    assert kernel.objects == {"a": "A", "b": "B", "c": "C"}


async def test_drift_repaired_by_a_full_resync_is_counted() -> None:
    kernel = FakeKernel(server={"a": "1", "b": "2"})
    engine = reconciler(kernel)
    await engine.full()
    assert engine.counters.drift_actions == 0

    # A change the server announced is not drift, even when a full resync is what applies it.
    kernel.server["b"] = "3"
    changed = await engine.full()
    assert changed.drift == 0 and len(changed.actions) == 1

    # Someone changed the kernel behind the agent's back, and removed... and added one of ours.
    kernel.objects["a"] = "tampered"
    kernel.objects["orphan"] = "x"
    repaired = await engine.full()
    assert repaired.drift == 2
    assert kernel.objects == {"a": "1", "b": "3"}
    summary = engine.summary()
    assert summary["drift_actions"] == 2 and summary["drift_objects"] == 2
    assert summary["full_resyncs"] == 3


async def test_an_object_whose_requirement_failed_waits_and_says_for_what() -> None:
    class Dependent(FakeKernel):
        def rank(self, key: str) -> int:
            return 0 if key.startswith("bridge") else 1

        def requires(self, key: str, desired: str) -> Iterable[str]:
            return ("bridge",) if key.startswith("tap") else ()

    kernel = Dependent(server={"bridge": "up", "tap1": "in-bridge"}, failures={"bridge": 1})
    engine = reconciler(kernel)
    done = await engine.full()
    assert done.failed == {"bridge": "Put: device bridge is busy",
                           "tap1": "waiting for bridge: Put: device bridge is busy"}
    assert kernel.runs == [Put("bridge", "up")]  # the tap was never touched
    assert engine.status("tap1").state is State.ERROR  # type: ignore[union-attr]


async def test_a_resync_that_cannot_fetch_the_desired_state_is_tried_again() -> None:
    class Flaky(FakeKernel):
        calls = 0

        async def desired(self) -> Mapping[str, str]:
            self.calls += 1
            if self.calls == 1:
                raise ConnectionError("server unreachable")
            return await super().desired()

    kernel = Flaky(server={"a": "1"})
    engine = reconciler(kernel, backoff=Backoff(initial=0.01, jitter=0.0))
    await engine.start()
    try:
        while kernel.objects != {"a": "1"}:
            await asyncio.sleep(0.01)
    finally:
        await engine.stop()
    assert kernel.calls >= 2


async def test_removals_run_after_updates_in_reverse_rank() -> None:
    class Ranked(FakeKernel):
        def rank(self, key: str) -> int:
            return int(key[-1])

    kernel = Ranked(server={"new0": "x", "new1": "y"}, objects={"old0": "a", "old1": "b"})
    engine = reconciler(kernel)
    await engine.full()
    assert kernel.runs == [Put("new0", "x"), Put("new1", "y"), Delete("old1"), Delete("old0")]


class Batching(FakeKernel):
    """Applies many objects in one transaction: a failing object refuses the whole batch."""

    batch_size = 4
    batch_min = 3

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.batches: list[list[str]] = []

    async def run_batch(self, items: Sequence[tuple[str, Sequence[Action]]]) -> None:
        keys = [key for key, _ in items]
        self.batches.append(keys)
        if any(self.failures.get(key, 0) > 0 for key in keys):
            raise OSError("transaction refused")
        for key, actions in items:
            for action in actions:
                self.runs.append(action)
                if isinstance(action, Put):
                    self.objects[key] = action.value
                else:
                    del self.objects[key]


async def test_a_large_round_is_applied_in_bounded_batches_and_a_small_one_object_by_object() -> None:
    kernel = Batching(server={f"k{i}": str(i) for i in range(10)})
    engine = reconciler(kernel)
    done = await engine.full()
    assert done.failed == {} and kernel.objects == kernel.server
    assert sorted(len(b) for b in kernel.batches) == [2, 4, 4]  # bounded: 10 objects, 4 at most each
    assert all(engine.status(k).state is State.DONE for k in kernel.server)  # type: ignore[union-attr]

    kernel.batches.clear()
    engine.put("k1", "changed")
    engine.put("k2", "changed")
    await engine.run_pending()
    assert kernel.batches == [] and kernel.objects["k1"] == kernel.objects["k2"] == "changed"


async def test_a_refused_batch_falls_back_to_one_object_at_a_time_so_one_bad_object_fails_alone() -> None:
    kernel = Batching(server={f"k{i}": str(i) for i in range(8)}, failures={"k5": 1})
    clock = Clock()
    engine = reconciler(kernel, clock, backoff=Backoff(initial=1.0, jitter=0.0))
    done = await engine.full()
    assert done.failed == {"k5": "Put: device k5 is busy"}  # its own reason, not the batch's
    assert kernel.objects == {k: v for k, v in kernel.server.items() if k != "k5"}
    assert engine.counters.batch_fallbacks == 1 and engine.summary()["batch_fallbacks"] == 1
    clock.now += 1.0
    again = await engine.run_pending()  # retried on its own, as any failed object
    assert again is not None and set(again.outcomes) == {"k5"} and again.failed == {}
    assert kernel.objects == kernel.server


async def test_a_role_on_the_reconciler_reports_its_state_and_resyncs_on_a_change_hint() -> None:
    from neutrino.agent.roles.base import ReconcilingRole
    from neutrino.bus.envelope import Envelope

    class FakeRole(ReconcilingRole):
        name, agent_type, binary, topic = "fake", "Fake agent", "neutrino-fake-agent", "fake_agent"

        def __init__(self, kernel: FakeKernel) -> None:
            self.reconciler = reconciler(kernel)

        def role_configurations(self) -> Mapping[str, object]:
            return {"objects_wanted": len(self.reconciler.desired)}

    kernel = FakeKernel(server={"a": "1"}, failures={"a": 1})
    role = FakeRole(kernel)
    await role.resync()
    configurations = role.configurations()
    assert configurations["objects_wanted"] == 1
    assert configurations["reconciler"]["errors"] == 1
    assert configurations["reconciler"]["failed_objects"] == {"a": "Put: device a is busy"}

    kernel.server["a"] = "2"
    await role.on_event(Envelope.event("event.fake", {"resource": "fake", "id": "a", "op": "update", "revision": 2},
                                       id="e1", sent_at=0.0, sender="server.test"))
    assert role.reconciler.full_pending
    await role.resync()
    assert kernel.objects == {"a": "2"} and role.configurations()["reconciler"]["errors"] == 0
