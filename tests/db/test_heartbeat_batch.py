"""Heartbeats in batches: the agents that are alive and report nothing new, heard within one window,
cost one UPDATE together; a new, revived, restarted or reconfigured agent in the same window still
gets its own answer (and its events), as one by one.

The server is composed in-process on a migrated SQLite database, as the RPC worker composes it;
the statements are counted on the engine.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from sqlalchemy import event

from neutrino.config import load_settings
from neutrino.context import RequestContext
from neutrino.db.migrate import upgrade
from neutrino.server import Server, build_server
from neutrino.services.listing import ListQuery

DOWN = 10


@pytest_asyncio.fixture(loop_scope="function")
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'beats.sqlite'}"
    await asyncio.to_thread(upgrade, url)
    settings = load_settings(environ={}, overrides={
        "database": {"url": url}, "server": {"state_dir": str(tmp_path)}, "agent": {"agent_down_time_seconds": DOWN}})
    built = build_server(settings)
    try:
        yield built
    finally:
        await built.close()


def _beat(host: str, *, start: bool = False, devices: int = 0) -> dict[str, Any]:
    return {"host": host, "agent_type": "Linux bridge agent", "binary": "neutrino-linuxbridge-agent", "topic": "N/A",
            "availability_zone": "nova", "start_flag": start,
            "configurations": {"tunnel_types": ["vxlan"], "devices": devices}}


async def test_alive_agents_heard_together_cost_one_update_and_the_others_their_own(server: Server) -> None:
    agents = server.services["agent"]
    assert agents.batch_window > 0  # as the server composes it
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    agents.clock = lambda: now
    first = await asyncio.gather(*(agents.report_state(_beat(f"h{i}", start=True)) for i in range(6)))
    assert [a["status"] for a in first] == ["new"] * 6

    updates: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE AGENTS"):
            updates.append(statement)

    event.listen(server.db.engine.sync_engine, "before_cursor_execute", count)
    try:
        now += dt.timedelta(seconds=5)
        replies = await asyncio.gather(
            *(agents.report_state(_beat(f"h{i}")) for i in range(4)),  # alive, nothing new
            agents.report_state(_beat("h4", devices=3)),               # reconfigured
            agents.report_state(_beat("h5", start=True)),              # restarted
            agents.report_state(_beat("h6", start=True)),              # new
        )
    finally:
        event.remove(server.db.engine.sync_engine, "before_cursor_execute", count)
    assert [r["status"] for r in replies] == ["alive"] * 6 + ["new"]
    assert len({r["agent_id"] for r in replies}) == 7
    # One UPDATE for the four alive agents together, one each for the reconfigured and restarted.
    assert len(updates) == 3, updates
    listed = await agents.list(RequestContext.admin(), ListQuery())
    moved = {a["host"] for a in listed if a["heartbeat_timestamp"] == now.strftime("%Y-%m-%d %H:%M:%S")}
    assert moved == {f"h{i}" for i in range(7)}

    # h0 is dead by now: heard among alive ones, it is still told it was revived (full path).
    now += dt.timedelta(seconds=DOWN + 1)
    await asyncio.gather(*(agents.report_state(_beat(f"h{i}")) for i in range(1, 4)))
    now += dt.timedelta(seconds=5)
    back = await asyncio.gather(agents.report_state(_beat("h0")), agents.report_state(_beat("h1")))
    assert [b["status"] for b in back] == ["revived", "alive"]
    # One after another, each its own batch: every one is answered (a flush still finishing must
    # not swallow the heartbeat that arrives meanwhile).
    for _ in range(3):
        assert (await agents.report_state(_beat("h2")))["status"] == "alive"
