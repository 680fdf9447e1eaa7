"""The published API document, fuzzed against a real server, and the 500s that fuzzing found.

``/openapi.json`` is loaded from a running ``neutrino up`` and every operation in it is driven by
schemathesis (its example, coverage and fuzzing phases) as the cloud admin and as a project
member. Every answer must be a non-5xx, match the schema the document declares for its status,
carry ``x-openstack-request-id``, and, when it is an error, have the body Neutron gives that status:
``{"NeutronError": {type, message, detail}}``, keystonemiddleware's ``{"error": {code, title,
message}}`` for 401. The embedded identity (``/identity``, Keystone's API, not in the document) is
fuzzed from a small hand-written schema: Keystone's error body for every error, never a 500.

The fuzz gets a server of its own: it creates, updates and deletes at random as admin (shared and
external networks, quota changes), which must not leak into tests that share the session server.
Known objects are offered as path ids next to random ones, so member operations get past 404.

The plain tests at the end pin each 500 the fuzzing found, so they stay fixed without a fuzz run.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err
from schemathesis.pytest.lazy import get_all_tests
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.support.databases import temporary_database
from tests.support.live_server import LiveServer, start_server

pytestmark = pytest.mark.slow

SEED = 20261123
# Requests per role in the fuzzing phase, spread over the operations (between MIN and MAX each).
CASE_BUDGET = 400
MIN_EXAMPLES = 3
MAX_EXAMPLES = 15


# ---- the server, the callers and the objects they may name ------------------------------------


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server of the fuzz's own (see the module docstring for why not the session one)."""
    tmp = tmp_path_factory.mktemp("fuzz")
    with temporary_database("sqlite", str(tmp)) as url:
        server = start_server(tmp / "state", database_url=url)
        try:
            yield server
        finally:
            server.stop()


@dataclass(frozen=True)
class Caller:
    token: str
    project_id: str


def issue_token(server: LiveServer, cloud: str) -> Caller:
    """A project-scoped token for one of the clouds ``neutrino up`` wrote to clouds.yaml."""
    auth = server.cloud(cloud)["auth"]
    body = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": auth["username"], "password": auth["password"],
            "domain": {"name": auth["user_domain_name"]}}}},
        "scope": {"project": {"name": auth["project_name"], "domain": {"name": auth["project_domain_name"]}}},
    }}
    response = httpx.post(server.url + "/identity/v3/auth/tokens", json=body, timeout=10)
    assert response.status_code == 201, response.text
    return Caller(response.headers["X-Subject-Token"], response.json()["token"]["project"]["id"])


@pytest.fixture(scope="module")
def callers(fuzz_server: LiveServer) -> dict[str, Caller]:
    return {role.name: issue_token(fuzz_server, role.cloud) for role in ROLES}


@dataclass(frozen=True)
class KnownIds:
    """Real objects the fuzz may name next to random ids, so operations get past "not found".

    ``stable`` ids (per collection URL) serve reads, updates, tags and actions; ``disposable`` ones
    serve DELETE, so a deletion does not starve the operations after it. ``path_values`` offers
    values for other path parameters by name, ``body_values`` for body fields by name.
    """

    stable: Mapping[str, list[str]]
    disposable: Mapping[str, list[str]]
    path_values: Mapping[str, list[str]]
    body_values: Mapping[str, list[str]]

    def for_path(self, method: str, path: str) -> dict[str, list[str]]:
        offered = {name: values for name, values in self.path_values.items() if f"{{{name}}}" in path}
        deleting = method.upper() == "DELETE" and path.endswith("/{id}")
        for collection, ids in (self.disposable if deleting else self.stable).items():
            if path.startswith(collection + "/{id}"):
                offered["id"] = ids
        return offered


def offering(value: Any, known: Mapping[str, list[str]]) -> st.SearchStrategy:
    """``value`` as generated, or with any of its fields named in ``known`` set to a known value."""
    if isinstance(value, dict):
        return st.fixed_dictionaries({
            key: st.sampled_from([item, *known[key]]) if key in known and isinstance(item, str)
            else offering(item, known) for key, item in value.items()})
    if isinstance(value, list):
        return st.tuples(*(offering(item, known) for item in value)).map(list)
    return st.just(value)


class Api:
    """Just enough of a client to set up the objects the fuzz can name."""

    def __init__(self, server: LiveServer, caller: Caller) -> None:
        self.http = httpx.Client(base_url=server.url + "/v2.0", headers={"X-Auth-Token": caller.token}, timeout=10)

    def create(self, collection: str, key: str, **attrs: Any) -> str:
        response = self.http.post(f"/{collection}", json={key: attrs})
        assert response.status_code == 201, response.text
        return str(response.json()[key]["id"])

    def close(self) -> None:
        self.http.close()


@pytest.fixture(scope="module")
def known_ids(fuzz_server: LiveServer, callers: dict[str, Caller]) -> Iterator[KnownIds]:
    """A member's network with subnets and ports, RBAC policies on it, subnet pools and address
    scopes, and spares of each to delete."""
    member = Api(fuzz_server, callers["member"])
    try:
        nets = [member.create("networks", "network", name=f"fuzz-net-{i}") for i in range(4)]
        subnets = [member.create("subnets", "subnet", network_id=nets[0], ip_version=4, cidr=f"10.77.{i}.0/24")
                   for i in range(4)]
        ports = [member.create("ports", "port", network_id=nets[0], name=f"fuzz-port-{i}") for i in range(4)]
        rbac = [member.create("rbac-policies", "rbac_policy", object_type="network", object_id=nets[0],
                              action="access_as_shared", target_tenant=target)
                for target in (callers["admin"].project_id, "fuzz-project-1", "fuzz-project-2")]
        scopes = [member.create("address-scopes", "address_scope", name=f"fuzz-scope-{i}", ip_version=4)
                  for i in range(3)]
        pools = [member.create("subnetpools", "subnetpool", name=f"fuzz-pool-{i}", prefixes=[f"10.{90 + i}.0.0/16"],
                               default_prefixlen=24) for i in range(3)]
    finally:
        member.close()
    # Quota writes go to a project nobody uses, so the member's own limits stay as they are.
    spare_project = uuid.uuid4().hex
    extensions = httpx.get(fuzz_server.url + "/v2.0/extensions", timeout=10,
                           headers={"X-Auth-Token": callers["member"].token}).json()["extensions"]
    yield KnownIds(
        stable={"/v2.0/networks": nets[:1], "/v2.0/subnets": subnets[:1], "/v2.0/ports": ports[:1],
                "/v2.0/rbac-policies": rbac[:1], "/v2.0/address-scopes": scopes[:1],
                "/v2.0/subnetpools": pools[:1], "/v2.0/quotas": [callers["member"].project_id, spare_project]},
        # The first network still has subnets and ports: deleting it is a 409.
        disposable={"/v2.0/networks": nets, "/v2.0/subnets": subnets[1:], "/v2.0/ports": ports[1:],
                    "/v2.0/rbac-policies": rbac[1:], "/v2.0/address-scopes": scopes[1:],
                    "/v2.0/subnetpools": pools[1:], "/v2.0/quotas": [spare_project]},
        path_values={"alias": [e["alias"] for e in extensions]},
        body_values={"network_id": nets[:2], "subnet_id": subnets[:1], "port_id": ports[:1],
                     "object_id": [nets[0], scopes[0], pools[0]], "address_scope_id": scopes[:1],
                     "subnetpool_id": pools[:1], "target_tenant": [callers["admin"].project_id]},
    )


# ---- checks ------------------------------------------------------------------------------------


def _header(response: Any, name: str) -> str:
    """One header of a schemathesis response (its headers map lower-cased names to lists)."""
    values = response.headers.get(name.lower()) or [""]
    return str(values[0])


def _json_body(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        raise AssertionError(f"{response.status_code} body is not JSON: {response.text[:200]!r}") from None


def error_body_has_neutron_shape(ctx: Any, response: Any, case: Any) -> None:
    """Every error body is the one Neutron (or keystonemiddleware, for 401) gives that status."""
    if response.status_code < 400:
        return
    body = _json_body(response)
    if response.status_code == 401:
        error = body.get("error") if isinstance(body, dict) else None
        assert isinstance(error, dict) and set(error) == {"code", "title", "message"}, body
        assert error["code"] == 401 and isinstance(error["title"], str) and isinstance(error["message"], str), body
        assert _header(response, "WWW-Authenticate").startswith("Keystone uri="), response.headers
        return
    key = "NotImplementedError" if response.status_code == 501 else "NeutronError"  # Neutron's quirk
    assert isinstance(body, dict) and set(body) == {key}, body
    error = body[key]
    assert isinstance(error, dict) and set(error) == {"type", "message", "detail"}, body
    assert all(isinstance(error[k], str) for k in ("type", "message", "detail")), body
    assert error["type"] and error["message"], body


def response_has_request_id(ctx: Any, response: Any, case: Any) -> None:
    assert _header(response, "x-openstack-request-id").startswith("req-"), response.headers


NETWORKING_CHECKS = [not_a_server_error, response_schema_conformance, error_body_has_neutron_shape,
                     response_has_request_id]


# ---- the networking API, from its own document -------------------------------------------------


def fuzz_config(base_url: str, token: str, *, operations: int, coverage: bool) -> SchemathesisConfig:
    """Deterministic, bounded: a fixed seed, and examples per operation shrinking as the API grows
    so a run stays near :data:`CASE_BUDGET` requests."""
    no_response_ids = {"extra-data-sources": {"responses": False}}
    return SchemathesisConfig.from_dict({
        "seed": SEED,
        "base-url": base_url,
        "headers": {"X-Auth-Token": token},
        "generation": {"max-examples": min(MAX_EXAMPLES, max(MIN_EXAMPLES, CASE_BUDGET // operations)),
                       "database": "none",
                       # The token comes from the headers above, never from generated values.
                       "with-security-parameters": False},
        # Ids seen in responses (the admin sees the `public` network) are not fed back into
        # writes: only the objects this module made are offered (see KnownIds).
        "phases": {"examples": no_response_ids, "fuzzing": no_response_ids,
                   "coverage": {**no_response_ids, "enabled": coverage}},
        # Boundary values are worth their cost where there is a resource body to validate (the
        # tags sub-resource is one generic body, fuzzed like everything else).
        "operations": [{"include-method-regex": "^(GET|DELETE)$", "phases": {"coverage": {"enabled": False}}},
                       {"include-path-regex": "/tags", "phases": {"coverage": {"enabled": False}}}],
    })


@dataclass(frozen=True)
class Role:
    name: str
    cloud: str
    coverage: bool  # run schemathesis' boundary-value phase too (once is enough: as admin)


ROLES = (Role("admin", "neutrino-admin", coverage=True), Role("member", "neutrino-demo", coverage=False))


@pytest.fixture(scope="module", params=ROLES, ids=[r.name for r in ROLES])
def networking_api(request: pytest.FixtureRequest, fuzz_server: LiveServer, callers: dict[str, Caller],
                   known_ids: KnownIds) -> Any:
    role: Role = request.param
    document = httpx.get(fuzz_server.url + "/openapi.json", timeout=10).json()
    operations = sum(1 for methods in document["paths"].values() for _ in methods)
    schema = schemathesis.openapi.from_dict(document, config=fuzz_config(
        fuzz_server.url, callers[role.name].token, operations=operations, coverage=role.coverage))

    @schema.hook
    def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> st.SearchStrategy:
        known = known_ids.for_path(context.operation.method, context.operation.path)
        if not known or not path_parameters:
            return st.just(path_parameters)
        return st.fixed_dictionaries({name: st.sampled_from([value, *known[name]]) if name in known
                                      else st.just(value) for name, value in path_parameters.items()})

    @schema.hook
    def flatmap_body(context: Any, body: Any) -> st.SearchStrategy:
        return offering(body, known_ids.body_values)

    return schema


@dataclass
class FuzzReport:
    failures: list[str] = field(default_factory=list)
    # operation label -> status codes answered, and the phases that produced requests for it
    statuses: dict[str, set[int]] = field(default_factory=dict)
    phases: set[str] = field(default_factory=set)


def fuzz(schema: Any, checks: list[Any]) -> FuzzReport:
    """Run every operation through schemathesis' phases (examples, coverage, fuzzing) and report
    what failed, one entry per operation, with the request to reproduce it.

    ``get_all_tests`` builds the per-operation Hypothesis tests exactly as schemathesis' pytest
    plugin does; the plugin's own fixture-driven entry point (``schemathesis.pytest.from_fixture``)
    cannot run on pytest 9 (it rewrites ``Node._nodeid``), and a schema served by a fixture's
    server cannot be loaded at collection time.
    """
    report = FuzzReport()

    def call_and_check(case: Any) -> None:
        response = case.call(timeout=30)
        report.statuses.setdefault(case.operation.label, set()).add(response.status_code)
        if case.meta is not None:
            report.phases.add(case.meta.phase.name.value)
        case.validate_response(response, checks=checks)

    for result in get_all_tests(schema=schema, test_func=call_and_check, settings=None, given_kwargs=None):
        if isinstance(result, Err):
            report.failures.append(f"schema error: {result.err()}")
            continue
        operation, test = result.ok()
        try:
            test()
        except (Exception, FailureGroup) as exc:  # noqa: BLE001 - every operation runs; all are reported
            report.failures.append(f"{operation.label}:\n{exc}")
    return report


def test_documented_operations_never_fail_with_500_and_errors_keep_neutrons_shape(networking_api: Any) -> None:
    report = fuzz(networking_api, NETWORKING_CHECKS)
    assert not report.failures, f"{len(report.failures)} operation(s) failed:\n\n" + "\n\n".join(report.failures)
    import pprint; pprint.pprint(sorted((k, sorted(v)) for k, v in report.statuses.items())); print(report.phases)
