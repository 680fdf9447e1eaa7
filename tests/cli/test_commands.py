"""The stable commands behave as documented: up keeps state across runs, server refuses an old
schema until `db upgrade` ran, identity commands manage the embedded identity."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import yaml

from tests.support.live_server import free_port, start_server

NEUTRINO = [sys.executable, "-m", "neutrino.cli.main"]


def _token(server_url: str, cloud: dict) -> str:
    auth = cloud["auth"]
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": auth["username"], "password": auth["password"], "domain": {"name": "Default"}}}},
        "scope": {"project": {"name": auth["project_name"], "domain": {"name": "Default"}}}}}
    resp = httpx.post(server_url + "/identity/v3/auth/tokens", json=body, timeout=10)
    assert resp.status_code == 201, resp.text
    return resp.headers["X-Subject-Token"]


def test_up_twice_on_one_state_dir_keeps_credentials_and_resources(tmp_path: Path) -> None:
    state = tmp_path / "state"
    server = start_server(state)
    try:
        demo = server.cloud("neutrino-demo")
        token = _token(server.url, demo)
        resp = httpx.post(server.url + "/v2.0/networks", json={"network": {"name": "kept"}},
                          headers={"X-Auth-Token": token}, timeout=10)
        assert resp.status_code == 201
        net_id = resp.json()["network"]["id"]
    finally:
        server.stop()
    assert server.process.returncode == 0, server.log_tail()  # SIGTERM is a clean stop
    first_clouds = yaml.safe_load((state / "clouds.yaml").read_text())
    assert oct((state / "clouds.yaml").stat().st_mode & 0o777) == "0o600"

    again = start_server(state)
    try:
        again_clouds = yaml.safe_load((state / "clouds.yaml").read_text())
        for name, cloud in first_clouds["clouds"].items():
            assert again_clouds["clouds"][name]["auth"]["password"] == cloud["auth"]["password"]
        token = _token(again.url, again.cloud("neutrino-demo"))
        resp = httpx.get(f"{again.url}/v2.0/networks/{net_id}", headers={"X-Auth-Token": token}, timeout=10)
        assert resp.status_code == 200 and resp.json()["network"]["name"] == "kept"
    finally:
        again.stop()


def test_server_refuses_an_unmigrated_database_until_db_upgrade(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "neutrino.toml"
    config.write_text(f'[server]\nport = {port}\nstate_dir = "{tmp_path}"\n')
    refused = subprocess.run([*NEUTRINO, "server", "--config", str(config)], capture_output=True, text=True,
                             timeout=60)
    assert refused.returncode != 0
    assert "neutrino db upgrade" in refused.stderr

    upgraded = subprocess.run([*NEUTRINO, "db", "upgrade", "--config", str(config)], capture_output=True,
                              text=True, timeout=60)
    assert upgraded.returncode == 0, upgraded.stderr
    proc = subprocess.Popen([*NEUTRINO, "server", "--config", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise AssertionError("server exited")
            import time
            time.sleep(0.1)
        versions = httpx.get(f"http://127.0.0.1:{port}/", timeout=5).json()
        assert versions["versions"][0]["id"] == "v2.0"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)


def test_identity_commands_create_project_user_and_role(tmp_path: Path) -> None:
    env = dict(os.environ, NEUTRINO_STATE_DIR=str(tmp_path))
    subprocess.run([*NEUTRINO, "db", "upgrade"], check=True, env=env, capture_output=True, timeout=60)

    def run(*args: str) -> str:
        out = subprocess.run([*NEUTRINO, "identity", *args], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout

    run("project", "create", "blue")
    run("user", "create", "alice", "--password", "s3cret-pw", "--project", "blue", "--role", "reader")
    assert "blue" in run("project", "list")
    assert "alice" in run("user", "list")
    listing = run("role", "assignment", "list")
    assert "alice" in listing and "reader" in listing
    assert "s3cret-pw" not in listing
