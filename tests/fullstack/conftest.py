"""Fixtures of the fullstack suite: one deployment (server, two hosts) per session, a scenario per test.

The deployment needs root (namespaces), PostgreSQL and RabbitMQ on this machine; without them the
tests are skipped with the reason (a skip is never a pass). Run the directory on one xdist worker
(``--dist loadgroup``: every test here is in the ``fullstack`` group) so one deployment serves all.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.fullstack.broker import broker_available
from tests.fullstack.deployment import Deployment, running_deployment
from tests.fullstack.scenario import Scenario


def why_fullstack_cannot_run() -> str | None:
    if os.geteuid() != 0:
        return "fullstack tests need root (namespaces, devices)"
    for tool in ("ip", "bridge", "ping", "psql"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    reason = broker_available()
    if reason:
        return reason
    probe = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qtAc", "select 1"],
                           capture_output=True, text=True, timeout=20, check=False)
    if probe.returncode != 0:
        return f"PostgreSQL is not reachable: {probe.stderr.strip()}"
    return None


@pytest.fixture(scope="session")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    reason = why_fullstack_cannot_run()
    if reason:
        pytest.skip(reason)
    with running_deployment(tmp_path_factory.mktemp("fullstack")) as running:
        yield running


@pytest.fixture
def scenario(deployment: Deployment) -> Iterator[Scenario]:
    made = Scenario(deployment)
    try:
        yield made
    finally:
        made.close()
