"""The dashboard's pure rules: who hears of which change, which requests may act, what a cookie says."""

from __future__ import annotations

import asyncio

from neutrino.api.dashboard.events import EventHub, KnownIds, coalesce, ids_in_body, message
from neutrino.api.dashboard.session import CSRF_COOKIE, check_csrf, cookie
from neutrino.services.events import ChangeEvent

ORIGIN = "http://127.0.0.1:9696"


def test_a_readable_object_is_told_and_remembered() -> None:
    known: set[str] = set()
    told = message("port", "p1", "create", 200, {"id": "p1"}, known)
    assert told == {"resource": "port", "id": "p1", "op": "create", "object": {"id": "p1"}}
    assert "p1" in known
    assert message("port", "p1", "update", 200, {"id": "p1", "name": "x"}, known)["op"] == "update"


def test_an_unreadable_object_is_never_mentioned_unless_the_viewer_was_shown_it() -> None:
    known: set[str] = set()
    assert message("network", "theirs", "create", 404, None, known) is None
    assert message("network", "theirs", "delete", 404, None, known) is None
    assert known == set()
    known.add("mine")
    assert message("network", "mine", "delete", 404, None, known) == {"resource": "network", "id": "mine",
                                                                      "op": "delete"}
    assert "mine" not in known, "told once"
    assert message("network", "mine", "delete", 404, None, known) is None


def test_one_commit_tells_each_object_once_with_its_last_operation() -> None:
    events = [ChangeEvent("port", "a", "create"), ChangeEvent("network", "n", "update"),
              ChangeEvent("port", "a", "update"), ChangeEvent("rbac_policy", "r", "create")]
    assert coalesce(events) == [("port", "a", "update"), ("network", "n", "update")]


def test_ids_come_from_list_and_show_bodies_of_known_collections_only() -> None:
    assert ids_in_body({"ports": [{"id": "a"}, {"id": "b"}], "ports_links": [{"href": "x"}]}) == ["a", "b"]
    assert ids_in_body({"network": {"id": "n"}}) == ["n"]
    assert ids_in_body({"quota": {"id": "q"}}) == []
    assert ids_in_body(["not", "a", "body"]) == []


def test_known_ids_are_bounded_per_session_and_in_sessions() -> None:
    known = KnownIds(max_sessions=2, max_ids=3)
    known.add("s1", ["a", "b", "c", "d"])
    assert known.of("s1") == {"a", "b", "c"}
    known.add("s2", ["x"])
    known.add("s3", ["y"])
    assert known.of("s1") == set(), "the least recently used session was dropped"


def test_writes_need_the_same_origin_and_the_double_submitted_token() -> None:
    cookies = {CSRF_COOKIE: "t0ken"}
    assert check_csrf("GET", {}, {}, ORIGIN).ok
    assert check_csrf("POST", {"x-csrf-token": "t0ken", "origin": ORIGIN}, cookies, ORIGIN).ok
    assert check_csrf("DELETE", {"x-csrf-token": "t0ken"}, cookies, ORIGIN).ok
    assert not check_csrf("POST", {"x-csrf-token": "t0ken", "origin": "http://evil.example"}, cookies, ORIGIN).ok
    assert not check_csrf("POST", {"x-csrf-token": "t0ken", "sec-fetch-site": "cross-site"}, cookies, ORIGIN).ok
    assert not check_csrf("POST", {"x-csrf-token": "other"}, cookies, ORIGIN).ok
    assert not check_csrf("PUT", {}, cookies, ORIGIN).ok
    assert not check_csrf("POST", {"x-csrf-token": ""}, {CSRF_COOKIE: ""}, ORIGIN).ok


def test_the_token_cookie_is_httponly_strict_and_scoped_to_the_dashboard() -> None:
    value = cookie("neutrino_dashboard_token", "abc", http_only=True, secure=True, max_age=60)
    assert value == "neutrino_dashboard_token=abc; Path=/dashboard; SameSite=Strict; Max-Age=60; HttpOnly; Secure"


async def test_a_stream_hears_committed_batches_through_the_viewers_reads() -> None:
    hub = EventHub()
    readable = {"mine": {"id": "mine"}}

    reads: list[tuple[str, list[str]]] = []

    async def fetch(resource: str, ids) -> tuple[int, dict]:
        reads.append((resource, list(ids)))
        return 200, {i: readable[i] for i in ids if i in readable}

    stream = hub.stream(fetch, set(), keepalive=60)
    assert "event: ready" in await anext(stream)
    assert hub.streams == 1
    await hub([ChangeEvent("network", "theirs", "create"), ChangeEvent("network", "mine", "create")])
    chunk = await asyncio.wait_for(anext(stream), 10)
    assert chunk.startswith("event: changes") and '"mine"' in chunk and "theirs" not in chunk
    assert reads == [("network", ["theirs", "mine"])], "one read per resource and batch"
    await stream.aclose()
    assert hub.streams == 0
