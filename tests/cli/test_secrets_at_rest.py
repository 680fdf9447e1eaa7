"""Secrets at rest: the SQLite database (signing keys, password hashes) and clouds.yaml (passwords)
are mode 0600 whatever the umask, and the signing key rotates with two keys valid meanwhile."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from tests.support.live_server import LiveServer, start_server
from tests.support.tenants import password_auth

NEUTRINO = [sys.executable, "-m", "neutrino.cli.main"]


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that would leave new files world-readable (inherited by the server process)."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _neutrino(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NEUTRINO_STATE_DIR=str(state))
    return subprocess.run([*NEUTRINO, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def _token(server: LiveServer) -> str:
    auth = server.cloud("neutrino-demo")["auth"]
    token, _ = password_auth(server, auth["username"], auth["password"], auth["project_name"])
    return token


def _works(server: LiveServer, token: str) -> int:
    return httpx.get(server.url + "/v2.0/networks", headers={"X-Auth-Token": token}, timeout=30).status_code


def test_secret_files_are_private_whatever_the_umask(tmp_path: Path, open_umask: None) -> None:
    state = tmp_path / "state"
    server = start_server(state)
    try:
        _token(server)  # a token issued: the signing key now exists in the database
        secret_files = [state / "neutrino.sqlite", state / "clouds.yaml"]
        secret_files += [p for p in state.iterdir() if p.name.startswith("neutrino.sqlite-")]  # journal, WAL
        for path in secret_files:
            assert _mode(path) == 0o600, f"{path.name} is {oct(_mode(path))}"
    finally:
        server.stop()
    # A database file left readable by someone else is narrowed by the next command that opens it.
    os.chmod(state / "neutrino.sqlite", 0o644)
    result = _neutrino(state, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert _mode(state / "neutrino.sqlite") == 0o600


def test_signing_key_rotation_keeps_old_tokens_valid_until_retired(tmp_path: Path) -> None:
    state = tmp_path / "state"
    server = start_server(state)
    try:
        before = _token(server)
    finally:
        server.stop()
    result = _neutrino(state, "identity", "key", "rotate")
    assert result.returncode == 0, result.stderr
    assert "secret" not in result.stdout.lower()
    # A running server picks the new key up within its key cache time; a new process at once.
    server = start_server(state)
    try:
        after = _token(server)
        assert jwt.get_unverified_header(after)["kid"] != jwt.get_unverified_header(before)["kid"]
        assert (_works(server, before), _works(server, after)) == (200, 200)  # two valid keys

        listed = _neutrino(state, "identity", "key", "list")
        rows = [line.split() for line in listed.stdout.splitlines()[1:]]
        assert len(rows) == 2 and [r[2] for r in rows] == ["yes", "yes"]
        assert rows[0][0] == jwt.get_unverified_header(after)["kid"] and rows[0][3] == "yes"
    finally:
        server.stop()
    # Retiring every key but a fresh one (an emergency rotation) ends the tokens they signed.
    result = _neutrino(state, "identity", "key", "rotate", "--retire-after", "0")
    assert result.returncode == 0, result.stderr
    again = start_server(state)
    try:
        assert _works(again, before) == 401 and _works(again, after) == 401
        assert _works(again, _token(again)) == 200
    finally:
        again.stop()
