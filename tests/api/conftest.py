"""Fixtures the API test modules share: the admin of the session's SQLite live server, over raw HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.live_server import LiveServer
from tests.support.neutron_http import api
from tests.support.tenants import Persona, cloud_persona


@pytest.fixture(scope="module")
def admin(live_server: LiveServer) -> Persona:
    return cloud_persona(live_server, "neutrino-admin")


@pytest.fixture(scope="module")
def adm(live_server: LiveServer, admin: Persona) -> Iterator[httpx.Client]:
    with api(live_server, admin) as client:
        yield client
