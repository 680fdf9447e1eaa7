"""``neutrino server`` refuses worker processes where they would not share state, and says why."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def _server(tmp_path: Path, config: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "neutrino.toml"
    path.write_text(config)
    return subprocess.run([sys.executable, "-m", "neutrino.cli.main", "server", "--config", str(path),
                           "--state-dir", str(tmp_path / "state")], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("config", [
    "[server]\napi_workers = 2\n",
    "[server]\napi_workers = 1\nrpc_workers = 1\n",
    '[database]\nurl = "postgresql+asyncpg://postgres@127.0.0.1:5432/none"\n[server]\napi_workers = 2\n',
])
def test_workers_without_a_shared_database_and_a_real_bus_are_refused(tmp_path: Path, config: str) -> None:
    done = _server(tmp_path, config)
    assert done.returncode == 2, done.stderr
    assert "PostgreSQL or MySQL" in done.stderr and "amqp://" in done.stderr


def test_zero_api_workers_is_refused(tmp_path: Path) -> None:
    done = _server(tmp_path, "[server]\napi_workers = 0\n")
    assert done.returncode == 2 and "api_workers must be at least 1" in done.stderr


def test_up_runs_one_process(tmp_path: Path) -> None:
    path = tmp_path / "neutrino.toml"
    path.write_text("[server]\napi_workers = 3\n")
    done = subprocess.run([sys.executable, "-m", "neutrino.cli.main", "up", "--config", str(path),
                           "--state-dir", str(tmp_path / "state"), "--port", "1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "neutrino up runs one process" in done.stderr
