"""The dashboard's server side over plain HTTP, on a live server: the session cookie, CSRF refusals,
the Content-Security-Policy, the proxy's reach, and the live stream telling a viewer only of what
that viewer may see (never another project's objects, not even their ids).
"""

from __future__ import annotations

import json
import queue
import signal
import threading
import uuid

import httpx
import pytest

from tests.support.live_server import LiveServer, start_server
from tests.support.tenants import IdentityAdmin


class Browserish:
    """An HTTP client that keeps cookies and sends the CSRF header the page's scripts send."""

    def __init__(self, server: LiveServer) -> None:
        self.http = httpx.Client(base_url=server.url, timeout=30)
        page = self.http.get("/dashboard/")
        assert page.status_code == 200
        self.csrf = self.http.cookies["neutrino_dashboard_csrf"]

    def login(self, username: str, password: str, project: str) -> httpx.Response:
        return self.http.post("/dashboard/session", json={"username": username, "password": password,
                                                          "project": project}, headers={"x-csrf-token": self.csrf})

    def post(self, path: str, body: dict) -> httpx.Response:
        return self.http.post("/dashboard/api/" + path, json=body, headers={"x-csrf-token": self.csrf})

    def close(self) -> None:
        self.http.close()



def test_login_sets_an_httponly_strict_cookie_and_the_page_never_sees_the_token(live_server: LiveServer,
                                                                                live_identity: IdentityAdmin) -> None:
    user = live_identity.persona("member", prefix="dash")
    client = Browserish(live_server)
    try:
        page = client.http.get("/dashboard/")
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert client.http.get("/dashboard/session").json() == {"logged_in": False}

        refused = client.http.post("/dashboard/session", json={"username": user.username, "password": user.password,
                                                               "project": user.project_name})
        assert refused.status_code == 403, "a login without the CSRF token is refused"
        bad = client.login(user.username, "wrong", user.project_name)
        assert bad.status_code == 401 and "set-cookie" not in bad.headers

        done = client.login(user.username, user.password, user.project_name)
        assert done.status_code == 200
        body = done.json()
        assert body["project"]["id"] == user.project_id and body["is_admin"] is False
        assert user.token not in done.text and "token" not in body
        cookie = done.headers["set-cookie"]
        assert cookie.startswith("neutrino_dashboard_token=")
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/dashboard" in cookie

        # The proxy: the API's own answers, with the session's token.
        made = client.post("v2.0/networks", {"network": {"name": "dash-net"}})
        assert made.status_code == 201 and made.json()["network"]["project_id"] == user.project_id
        wrong_origin = client.http.post("/dashboard/api/v2.0/networks", json={"network": {"name": "x"}},
                                        headers={"x-csrf-token": client.csrf, "origin": "http://attacker.example"})
        assert wrong_origin.status_code == 403
        no_header = client.http.post("/dashboard/api/v2.0/networks", json={"network": {"name": "x"}})
        assert no_header.status_code == 403
        assert client.http.get("/dashboard/api/identity/v3/auth/tokens").status_code == 404
        assert client.http.get("/dashboard/api/healthz").status_code == 404, "only the API is proxied"
        # A member is refused the admin's views by the API itself.
        assert client.http.get("/dashboard/api/identity/v3/projects").status_code == 403
        assert client.http.get(f"/dashboard/api/v2.0/quotas/{live_identity.admin.project_id}/details").status_code in (403, 404)

        out = client.http.delete("/dashboard/session", headers={"x-csrf-token": client.csrf})
        assert out.status_code == 200 and "Max-Age=0" in out.headers["set-cookie"]
        assert client.http.get("/dashboard/api/v2.0/networks").status_code == 401
        assert httpx.get(live_server.url + "/v2.0/networks", headers={"x-auth-token": user.token}).status_code == 200
    finally:
        client.close()


def _read_events(client: httpx.Client, into: queue.Queue, stop: threading.Event) -> None:
    try:
        _read_stream(client, into, stop)
    except httpx.HTTPError:
        if not stop.is_set():  # closing the client at the end of the test ends the read
            raise


def _read_stream(client: httpx.Client, into: queue.Queue, stop: threading.Event) -> None:
    with client.stream("GET", "/dashboard/events") as stream:
        event = ""
        for line in stream.iter_lines():
            if stop.is_set():
                return
            if line.startswith("event: "):
                event = line[7:]
                if event == "ready":
                    into.put(("ready", None))
            elif line.startswith("data: ") and event == "changes":
                into.put(("changes", json.loads(line[6:])))


def test_the_event_stream_tells_a_viewer_only_of_its_own_project(live_server: LiveServer,
                                                                 live_identity: IdentityAdmin) -> None:
    viewer = live_identity.persona("member", prefix="dashv")
    other = live_identity.persona("member", prefix="dasho")
    client = Browserish(live_server)
    stop = threading.Event()
    received: queue.Queue = queue.Queue()
    try:
        assert client.login(viewer.username, viewer.password, viewer.project_name).status_code == 200
        reader = threading.Thread(target=_read_events, args=(client.http, received, stop), daemon=True)
        reader.start()
        assert received.get(timeout=60)[0] == "ready"

        api = httpx.Client(base_url=live_server.url + "/v2.0", timeout=30)
        secret = api.post("/networks", json={"network": {"name": f"secret-{uuid.uuid4().hex[:6]}"}},
                          headers={"x-auth-token": other.token}).json()["network"]
        mine = api.post("/networks", json={"network": {"name": f"mine-{uuid.uuid4().hex[:6]}"}},
                        headers={"x-auth-token": viewer.token}).json()["network"]
        seen: list[dict] = []

        def until(op: str) -> None:
            while not any(c["id"] == mine["id"] and c["op"] == op for c in seen):
                kind, data = received.get(timeout=60)
                if kind == "changes":
                    seen.extend(data)

        until("create")
        api.delete(f"/networks/{secret['id']}", headers={"x-auth-token": other.token})
        api.delete(f"/networks/{mine['id']}", headers={"x-auth-token": viewer.token})
        until("delete")
        assert [c["op"] for c in seen if c["id"] == mine["id"]] == ["create", "delete"]
        assert next(c for c in seen if c["id"] == mine["id"])["object"]["name"] == mine["name"]
        # A bulk write of more objects than one re-read asks for (100) is told whole.
        net = api.post("/networks", json={"network": {"name": "bulk"}}, headers={"x-auth-token": viewer.token})
        bulk = api.post("/ports", json={"ports": [{"network_id": net.json()["network"]["id"]} for _ in range(120)]},
                        headers={"x-auth-token": viewer.token})
        assert bulk.status_code == 201
        wanted = {p["id"] for p in bulk.json()["ports"]}
        while not wanted <= {c["id"] for c in seen if c["resource"] == "port" and c["op"] == "create"}:
            kind, data = received.get(timeout=60)
            if kind == "changes":
                seen.extend(data)
        text = json.dumps(seen)
        assert secret["id"] not in text and other.project_id not in text, "another project's ids leaked"
        api.close()
    finally:
        stop.set()
        client.close()


def test_a_user_with_two_projects_switches_between_them(live_server: LiveServer,
                                                        live_identity: IdentityAdmin) -> None:
    user = live_identity.persona("member", prefix="dashs")
    second_name, second_id = live_identity.project("dashs2")
    granted = live_identity.http.put(f"/projects/{second_id}/users/{user.user_id}/roles/"
                                     f"{live_identity.role_ids['member']}")
    assert granted.status_code in (200, 204)
    client = Browserish(live_server)
    try:
        first = client.login(user.username, user.password, user.project_name).json()
        assert {p["name"] for p in first["projects"]} == {user.project_name, second_name}
        switched = client.http.put("/dashboard/session", json={"project_id": second_id},
                                   headers={"x-csrf-token": client.csrf})
        assert switched.status_code == 200 and switched.json()["project"]["id"] == second_id
        made = client.post("v2.0/networks", {"network": {"name": "in-second"}}).json()["network"]
        assert made["project_id"] == second_id
        refused = client.http.put("/dashboard/session", json={"project_id": live_identity.admin.project_id},
                                  headers={"x-csrf-token": client.csrf})
        assert refused.status_code == 401, "no role on that project"
        assert client.http.get("/dashboard/session").json()["project"]["id"] == second_id
    finally:
        client.close()


def test_login_against_an_external_keystone(live_server: LiveServer, live_identity: IdentityAdmin,
                                            tmp_path_factory: pytest.TempPathFactory) -> None:
    """A server that validates tokens at an external Keystone logs dashboard users in there too.

    The session server's embedded identity stands in for the external Keystone: the second server
    has no identity of its own in play (its users are not the session server's).
    """
    service = live_server.cloud("neutrino-compute")["auth"]
    config = (f'[identity]\nstrategy = "keystone"\nkeystone_url = "{live_server.url}/identity"\n'
              f'keystone_username = "{service["username"]}"\nkeystone_password = "{service["password"]}"\n'
              f'keystone_project = "{service["project_name"]}"\n')
    server = start_server(tmp_path_factory.mktemp("dash-keystone") / "state", extra_config=config)
    user = live_identity.persona("member", prefix="dashk")
    client = Browserish(server)
    try:
        assert client.login(user.username, "wrong", user.project_name).status_code == 401
        done = client.login(user.username, user.password, user.project_name)
        assert done.status_code == 200, done.text
        assert done.json()["project"]["id"] == user.project_id
        assert {p["id"] for p in done.json()["projects"]} == {user.project_id}
        assert client.http.get("/dashboard/session").json()["user"]["id"] == user.user_id

        made = client.post("v2.0/networks", {"network": {"name": "via-keystone"}})
        assert made.status_code == 201 and made.json()["network"]["project_id"] == user.project_id
        projects = client.http.get("/dashboard/api/identity/v3/auth/projects")
        assert projects.status_code == 200 and [p["id"] for p in projects.json()["projects"]] == [user.project_id]
        assert client.http.delete(f"/dashboard/api/v2.0/networks/{made.json()['network']['id']}",
                                  headers={"x-csrf-token": client.csrf}).status_code == 204

        assert client.http.delete("/dashboard/session", headers={"x-csrf-token": client.csrf}).status_code == 200
        assert client.http.get("/dashboard/session").json() == {"logged_in": False}
    finally:
        client.close()
        server.stop()


def test_open_event_streams_do_not_hold_up_a_shutdown(tmp_path_factory: pytest.TempPathFactory) -> None:
    """SIGTERM ends every open event stream at once; uvicorn never has to give up on one."""
    server = start_server(tmp_path_factory.mktemp("dash-shutdown") / "state")
    demo = server.cloud("neutrino-demo")["auth"]
    client = Browserish(server)
    received: queue.Queue = queue.Queue()
    errors: list[BaseException] = []

    def read() -> None:
        try:
            _read_stream(client.http, received, threading.Event())
            received.put(("ended", None))
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
            received.put(("failed", None))

    try:
        assert client.login(demo["username"], demo["password"], demo["project_name"]).status_code == 200
        threading.Thread(target=read, daemon=True).start()
        assert received.get(timeout=60)[0] == "ready"
        server.process.send_signal(signal.SIGTERM)
        assert received.get(timeout=60)[0] == "ended", errors  # the server closed the stream, cleanly
        assert server.process.wait(timeout=60) == 0
        assert "timeout graceful shutdown exceeded" not in server.log_path.read_text()
    finally:
        client.close()
        server.stop()
