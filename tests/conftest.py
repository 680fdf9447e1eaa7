"""Shared fixtures: live servers started the way users start them, one per database backend."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.databases import temporary_database
from tests.support.live_server import LiveServer, start_server
from tests.support.neutron_http import api
from tests.support.tenants import IdentityAdmin, cloud_persona

# What a test may need from the machine; a skip of such a test fails the run unless this variable
# names the need ("kernel,rabbitmq,postgres,mysql", or "all" for any skip at all).
ALLOW_SKIPS_VARIABLE = "NEUTRINO_TEST_ALLOW_SKIPS"
NEEDS = ("kernel", "rabbitmq", "postgres", "mysql")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Kernel tests need root; without it they would fail for the wrong reason.
    if os.geteuid() != 0:
        for item in items:
            if item.get_closest_marker("kernel"):
                item.add_marker(pytest.mark.skip(reason="kernel tests need root"))


def allowed_skips() -> set[str]:
    named = {word.strip() for word in os.environ.get(ALLOW_SKIPS_VARIABLE, "").split(",") if word.strip()}
    return set(NEEDS) | {"all"} if "all" in named else named


def unallowed_skip(report: pytest.TestReport, allowed: set[str]) -> bool:
    """A skip that must fail the run: a test that needs something this machine lacks is coverage lost.

    A skipped test is excused only when every need it is marked with is allowed; a skip of a test
    marked with no need is excused only by "all" (so whatever can skip gets marked with its need).
    """
    if not report.skipped or hasattr(report, "wasxfail"):
        return False
    needs = {name for name in NEEDS if name in report.keywords}
    if not needs:
        return "all" not in allowed
    return not needs <= allowed


class SkipsFailTheRun:
    """Counts the skips no opt-out excuses (on the controller, xdist workers' reports included)."""

    def __init__(self) -> None:
        self.unallowed: list[str] = []

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if unallowed_skip(report, allowed_skips()):
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            self.unallowed.append(f"{report.nodeid}: {reason}")

    @pytest.hookimpl
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        # A whole module skipped while collected (``pytest.importorskip`` of a missing test
        # dependency): no test of it is marked with a need, so only "all" excuses it.
        if report.skipped and "all" not in allowed_skips():
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            self.unallowed.append(f"{report.nodeid}: {reason}")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.unallowed and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.unallowed:
            terminalreporter.section("skips that fail the run", sep="=", red=True, bold=True)
            for line in self.unallowed:
                terminalreporter.line(line)
            terminalreporter.line(f"{len(self.unallowed)} test(s) skipped for lack of root, RabbitMQ, PostgreSQL "
                                  f"or MariaDB (or unmarked); {ALLOW_SKIPS_VARIABLE}=kernel,rabbitmq,postgres,mysql "
                                  f"(or all) accepts them")


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist) decides the exit status
        config.pluginmanager.register(SkipsFailTheRun(), "neutrino-skips-fail-the-run")


def _lift_admin_rbac_quota(server: LiveServer) -> None:
    """Every test module shares this server's one admin project, and RBAC entries the admin makes
    for other projects' objects count against it (Neutron's default quota is 10): unlimited here, so
    the suite's order cannot decide whether a sharing test gets OverQuota."""
    admin = cloud_persona(server, "neutrino-admin")
    with api(server, admin) as adm:
        adm.put(f"/quotas/{admin.project_id}", json={"quota": {"rbac_policy": -1}}).raise_for_status()


def _live(backend: str, tmp: Path) -> Iterator[LiveServer]:
    with temporary_database(backend, str(tmp)) as url:
        server = start_server(tmp / "state", database_url=url)
        try:
            _lift_admin_rbac_quota(server)
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One all-in-one server on SQLite for the whole session (tests use unique names)."""
    yield from _live("sqlite", tmp_path_factory.mktemp("live-sqlite"))


@pytest.fixture(scope="session", params=[
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
    pytest.param("mysql", marks=pytest.mark.mysql),
])
def any_backend_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The same API tests against SQLite, PostgreSQL and MariaDB."""
    yield from _live(request.param, tmp_path_factory.mktemp(f"live-{request.param}"))


@pytest.fixture
def live_identity(live_server: LiveServer) -> Iterator[IdentityAdmin]:
    """The session server's identity, as its admin: new projects and users per test."""
    admin = IdentityAdmin(live_server)
    try:
        yield admin
    finally:
        admin.close()
