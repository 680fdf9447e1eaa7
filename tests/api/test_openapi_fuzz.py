"""The published API document, fuzzed against a real server, and the 500s that fuzzing found.

``/openapi.json`` is loaded from a running ``neutrino up`` and every operation in it is driven by
schemathesis (its example, coverage and fuzzing phases) as the cloud admin and as a project
member. Every answer must be a non-5xx, match the schema the document declares for its status,
carry ``x-openstack-request-id``, and, when it is an error, have the body Neutron gives that status:
``{"NeutronError": {type, message, detail}}``; keystonemiddleware's ``{"error": {code, title,
message}}`` for 401; Neutron's ``{"NotImplementedError": {...}}`` quirk for 501. The embedded
identity (``/identity``, Keystone's API, so not in the document) is fuzzed from a small hand-written
schema: Keystone's error body for every error, never a 500.

The fuzz gets a server of its own: as admin it creates, updates and deletes at random (shared and
external networks, quota changes), which must not leak into the tests sharing the session server.
Before the fuzz starts the server holds every resource type (:func:`populate`): dual-stack networks,
a shared and an external network, RBAC policies between the projects, routers with gateways and
interfaces, floating IPs and port forwardings, security groups and rules, address groups, QoS
policies and rules, subnet pools and address scopes. Those objects are offered as ids next to
random ones, so operations get past "not found" and work on a realistic state.

Runs are deterministic (fixed seed) and bounded (about :data:`CASE_BUDGET` requests per role).
``NEUTRINO_FUZZ_CASES=5000`` digs deeper and ``NEUTRINO_FUZZ_BACKEND=postgresql`` (or ``mysql``)
fuzzes over a real database server, on demand.

The plain tests at the end pin each 500 that fuzzing found, on every backend, without a fuzz run.
"""

from __future__ import annotations

import copy
import os
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import hypothesis
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

SEED = 20261123
# Requests per role in the fuzzing phase, spread over the operations (MIN..MAX examples each).
CASE_BUDGET = int(os.environ.get("NEUTRINO_FUZZ_CASES", "400"))
MIN_EXAMPLES = 3
MAX_EXAMPLES = max(15, CASE_BUDGET // 25)
FUZZ_BACKEND = os.environ.get("NEUTRINO_FUZZ_BACKEND", "sqlite")


# ---- the server and who calls it ---------------------------------------------------------------


CLOUDS = {"admin": "neutrino-admin", "member": "neutrino-demo"}  # callers, by clouds.yaml cloud


@dataclass(frozen=True)
class Run:
    """One fuzz run: who calls, and which schemathesis phase generates the requests."""

    name: str
    caller: str  # a key of CLOUDS
    # "fuzzing" (with the examples phase): every operation. "coverage": boundary values for the
    # creates only, where a new object's whole body is validated; costly, so once, as admin, and
    # a test of its own so that xdist can run it next to the others.
    phase: str


RUNS = (Run("admin", "admin", "fuzzing"), Run("member", "member", "fuzzing"),
        Run("admin-boundaries", "admin", "coverage"))


@dataclass(frozen=True)
class Caller:
    token: str
    project_id: str


def issue_token(server: LiveServer, cloud: str) -> Caller:
    """A project-scoped token for one of the clouds of the server's clouds.yaml."""
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
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server of the fuzz's own (see the module docstring for why not the session one)."""
    tmp = tmp_path_factory.mktemp("fuzz")
    with temporary_database(FUZZ_BACKEND, str(tmp)) as url:
        server = start_server(tmp / "state", database_url=url)
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module")
def callers(fuzz_server: LiveServer) -> dict[str, Caller]:
    return {name: issue_token(fuzz_server, cloud) for name, cloud in CLOUDS.items()}


# ---- objects the fuzz may name -------------------------------------------------------------------


@dataclass(frozen=True)
class KnownIds:
    """Real objects offered next to random values, so operations get past "not found".

    ``stable`` ids (per collection URL) serve reads, updates, tags and actions; ``disposable`` ones
    serve DELETE, so a deletion does not starve the operations after it. ``path_values`` offers
    values for other path parameters by name, ``body_values`` for body fields by name.
    """

    stable: Mapping[str, list[str]]
    disposable: Mapping[str, list[str]]
    path_values: Mapping[str, list[str]]
    body_values: Mapping[str, list[str]]
    parents: Mapping[str, list[str]] = field(default_factory=dict)  # "{parent_id}" values by URL prefix

    def for_path(self, method: str, path: str) -> dict[str, list[str]]:
        offered = {name: values for name, values in self.path_values.items() if f"{{{name}}}" in path}
        for prefix, ids in self.parents.items():
            if path.startswith(prefix):
                offered["parent_id"] = ids
        deleting = method.upper() == "DELETE" and path.endswith("/{id}")
        for collection, ids in (self.disposable if deleting else self.stable).items():
            if path.startswith(collection + "/{id}"):
                offered["id"] = ids
        return offered


def offering(value: Any, known: Mapping[str, list[str]]) -> st.SearchStrategy:
    """``value`` as generated, or with any string field named in ``known`` set to a known value."""
    if isinstance(value, dict):
        return st.fixed_dictionaries({
            key: st.sampled_from([item, *known[key]]) if key in known and isinstance(item, str)
            else offering(item, known) for key, item in value.items()})
    if isinstance(value, list):
        return st.tuples(*(offering(item, known) for item in value)).map(list)
    return st.just(value)


def create(http: httpx.Client, collection: str, key: str, **attrs: Any) -> str:
    response = http.post(f"/{collection}", json={key: attrs})
    assert response.status_code == 201, response.text
    return str(response.json()[key]["id"])


def put(http: httpx.Client, path: str, body: dict[str, Any]) -> None:
    response = http.put(path, json=body)
    assert response.status_code == 200, response.text


@dataclass
class Population:
    """What the fuzz server holds before the fuzz starts: ids by collection URL, three of each (the
    first stays, the others may be deleted), and by the body attribute that names them."""

    ids: dict[str, list[str]] = field(default_factory=dict)
    body_values: dict[str, list[str]] = field(default_factory=dict)

    def add(self, collection: str, *ids: str, names: tuple[str, ...] = ()) -> list[str]:
        self.ids.setdefault(f"/v2.0/{collection}", []).extend(ids)
        for name in names:
            self.body_values.setdefault(name, []).append(ids[0])
        return list(ids)


def populate(admin: httpx.Client, member: httpx.Client, callers: dict[str, Caller]) -> Population:
    """Every resource type, as a cloud would hold them: the member's dual-stack network with ports,
    its router (gateway on the external network, interfaces), floating IPs with and without a port,
    port forwardings, security groups and rules, address groups; the admin's shared dual-stack and
    external networks, QoS policies and rules, RBAC policies between the projects."""
    pop = Population()
    nets = pop.add("networks", *(create(member, "networks", "network", name=f"fuzz-net-{i}") for i in range(4)),
                   names=("network_id",))
    v4 = create(member, "subnets", "subnet", network_id=nets[0], ip_version=4, cidr="10.77.0.0/24")
    v6 = create(member, "subnets", "subnet", network_id=nets[0], ip_version=6, cidr="fd00:77::/64",
                ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    pop.add("subnets", v4, v6, *(create(member, "subnets", "subnet", network_id=nets[1], ip_version=4,
                                        cidr=f"10.78.{i}.0/24") for i in range(2)), names=("subnet_id",))
    ports = pop.add("ports", *(create(member, "ports", "port", network_id=nets[0], name=f"fuzz-port-{i}")
                               for i in range(4)), names=("port_id", "internal_port_id", "device_id"))
    pop.add("rbac-policies", *(create(member, "rbac-policies", "rbac_policy", object_type="network",
                                      object_id=nets[0], action="access_as_shared", target_tenant=target)
                               for target in (callers["admin"].project_id, "fuzz-project-1", "fuzz-project-2")))
    scopes = pop.add("address-scopes", *(create(member, "address-scopes", "address_scope", name=f"fuzz-scope-{i}",
                                                ip_version=4) for i in range(3)), names=("address_scope_id",))
    pools = pop.add("subnetpools", *(create(member, "subnetpools", "subnetpool", name=f"fuzz-pool-{i}",
                                            prefixes=[f"10.{90 + i}.0.0/16"], default_prefixlen=24) for i in range(3)),
                    names=("subnetpool_id",))

    shared = create(admin, "networks", "network", name="fuzz-shared", shared=True)
    create(admin, "subnets", "subnet", network_id=shared, ip_version=4, cidr="10.79.0.0/24")
    create(admin, "subnets", "subnet", network_id=shared, ip_version=6, cidr="fd00:79::/64")
    external = create(admin, "networks", "network", name="fuzz-external", **{"router:external": True})
    create(admin, "subnets", "subnet", network_id=external, ip_version=4, cidr="198.51.100.0/24")
    pop.add("networks", shared, external)
    pop.body_values["floating_network_id"] = [external]
    pop.add("rbac-policies", create(admin, "rbac-policies", "rbac_policy", object_type="network", object_id=shared,
                                    action="access_as_shared", target_tenant=callers["member"].project_id))

    routers = pop.add("routers", *(create(member, "routers", "router", name=f"fuzz-router-{i}") for i in range(3)),
                      names=("router_id",))
    put(member, f"/routers/{routers[0]}", {"router": {"external_gateway_info": {"network_id": external}}})
    put(member, f"/routers/{routers[0]}/add_router_interface", {"subnet_id": v4})
    fips = pop.add("floatingips", *(create(member, "floatingips", "floatingip", floating_network_id=external)
                                    for _ in range(3)), names=("floatingip_id",))
    put(member, f"/floatingips/{fips[1]}", {"floatingip": {"port_id": ports[1]}})
    internal = member.get(f"/ports/{ports[0]}").json()["port"]["fixed_ips"][0]["ip_address"]
    pop.add("floatingips/{parent_id}/port_forwardings", *(create(
        member, f"floatingips/{fips[0]}/port_forwardings", "port_forwarding", protocol="tcp",
        internal_port_id=ports[0], internal_ip_address=internal, internal_port=80 + i, external_port=8080 + i)
        for i in range(3)))
    pop.body_values["parent_id"] = [fips[0]]

    groups = pop.add("security-groups", *(create(member, "security-groups", "security_group", name=f"fuzz-sg-{i}")
                                          for i in range(3)), names=("security_group_id", "remote_group_id"))
    pop.add("security-group-rules", *(create(member, "security-group-rules", "security_group_rule",
                                             security_group_id=groups[0], direction="ingress", protocol="tcp",
                                             port_range_min=22 + i, port_range_max=22 + i) for i in range(3)))
    pop.add("address-groups", *(create(member, "address-groups", "address_group", name=f"fuzz-ag-{i}",
                                       addresses=[f"10.80.{i}.0/24"]) for i in range(3)),
            names=("remote_address_group_id", "address_group_id"))
    policies = pop.add("qos/policies", *(create(admin, "qos/policies", "policy", name=f"fuzz-qos-{i}", shared=True)
                                         for i in range(3)), names=("qos_policy_id", "policy_id"))
    for kind, attrs in (("bandwidth_limit_rules", {"max_kbps": 1000}), ("dscp_marking_rules", {"dscp_mark": 10}),
                        ("minimum_bandwidth_rules", {"min_kbps": 100})):
        rule = create(admin, f"qos/policies/{policies[0]}/{kind}", kind.removesuffix("s"), **attrs)
        pop.add(f"qos/policies/{{parent_id}}/{kind}", rule)
        pop.add(f"qos/alias_{kind}", rule)
    pop.body_values["object_id"] = [nets[0], scopes[0], pools[0], shared]
    pop.body_values["target_tenant"] = [callers["admin"].project_id, callers["member"].project_id]
    return pop


@pytest.fixture(scope="module")
def known_ids(fuzz_server: LiveServer, callers: dict[str, Caller]) -> KnownIds:
    """The populated server's objects (see :func:`populate`), offered to the fuzz."""
    member, admin = callers["member"], callers["admin"]
    with (httpx.Client(base_url=fuzz_server.url + "/v2.0", headers={"X-Auth-Token": member.token}, timeout=30) as m,
          httpx.Client(base_url=fuzz_server.url + "/v2.0", headers={"X-Auth-Token": admin.token}, timeout=30) as a):
        pop = populate(a, m, callers)
        aliases = [e["alias"] for e in m.get("/extensions").json()["extensions"]]
    # Quota writes go to a project nobody uses, so the member's own limits stay as they are.
    spare_project = uuid.uuid4().hex
    stable = {collection: ids[:1] for collection, ids in pop.ids.items()}
    # The first network still has subnets and ports: deleting it is a 409.
    disposable = {collection: ids[1:] or ids for collection, ids in pop.ids.items()}
    disposable["/v2.0/networks"] = pop.ids["/v2.0/networks"]
    stable["/v2.0/quotas"] = [member.project_id, spare_project]
    disposable["/v2.0/quotas"] = [spare_project]
    parents = {"/v2.0/floatingips/{parent_id}": pop.body_values.pop("parent_id"),
               "/v2.0/qos/policies/{parent_id}": pop.body_values["policy_id"]}
    return KnownIds(stable=stable, disposable=disposable, path_values={"alias": aliases}, parents=parents,
                    body_values=pop.body_values)


# ---- checks (schemathesis check functions: raise AssertionError to fail) ----------------------------


def _header(response: Any, name: str) -> str:
    """One header of a schemathesis response (it maps lower-cased names to lists of values)."""
    values = response.headers.get(name.lower()) or [""]
    return str(values[0])


def _json_body(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        raise AssertionError(f"{response.status_code} body is not JSON: {response.text[:200]!r}") from None


def error_body_has_neutron_shape(ctx: Any, response: Any, case: Any) -> None:
    """Every error body is the one Neutron (keystonemiddleware, for 401) gives that status."""
    if response.status_code < 400:
        return
    body = _json_body(response)
    if response.status_code == 401:
        error = body.get("error") if isinstance(body, dict) else None
        assert isinstance(error, dict) and set(error) == {"code", "title", "message"}, body
        assert error["code"] == 401 and isinstance(error["title"], str) and isinstance(error["message"], str), body
        assert _header(response, "WWW-Authenticate").startswith("Keystone uri="), response.headers
        return
    key = "NotImplementedError" if response.status_code == 501 else "NeutronError"
    assert isinstance(body, dict) and set(body) == {key}, body
    error = body[key]
    assert isinstance(error, dict) and set(error) == {"type", "message", "detail"}, body
    assert all(isinstance(error[k], str) for k in ("type", "message", "detail")), body
    assert error["type"] and error["message"], body


def response_has_request_id(ctx: Any, response: Any, case: Any) -> None:
    assert _header(response, "x-openstack-request-id").startswith("req-"), response.headers


def documented_method_is_served(ctx: Any, response: Any, case: Any) -> None:
    """A 405 is only right for a method the document does not list for that path."""
    if response.status_code == 405:
        assert case.method.upper() != case.operation.method.upper(), "a documented operation answered 405"


def error_body_has_keystone_shape(ctx: Any, response: Any, case: Any) -> None:
    """Keystone's body, whatever went wrong: ``{"error": {"code", "title", "message"}}``."""
    if response.status_code < 400:
        return
    body = _json_body(response)
    error = body.get("error") if isinstance(body, dict) else None
    assert isinstance(body, dict) and set(body) == {"error"} and isinstance(error, dict), body
    assert set(error) == {"code", "title", "message"} and error["code"] == response.status_code, body
    assert isinstance(error["title"], str) and isinstance(error["message"], str) and error["message"], body


NETWORKING_CHECKS = [not_a_server_error, response_schema_conformance, error_body_has_neutron_shape,
                     response_has_request_id, documented_method_is_served]
IDENTITY_CHECKS = [not_a_server_error, response_schema_conformance, error_body_has_keystone_shape]


# ---- the driver ------------------------------------------------------------------------------------


def fuzz_config(base_url: str, token: str, *, operations: int, phase: str = "fuzzing") -> SchemathesisConfig:
    """Deterministic and bounded: a fixed seed, and examples per operation shrinking as the API
    grows, so a run stays near :data:`CASE_BUDGET` requests."""
    no_response_ids = {"extra-data-sources": {"responses": False}}
    fuzzing = phase == "fuzzing"
    return SchemathesisConfig.from_dict({
        "seed": SEED,
        "base-url": base_url,
        "headers": {"X-Auth-Token": token},
        "generation": {"max-examples": min(MAX_EXAMPLES, max(MIN_EXAMPLES, CASE_BUDGET // operations)),
                       "database": "none",
                       # The token comes from the headers above, never from generated values.
                       "with-security-parameters": False},
        # Ids seen in responses (the admin sees the `public` network) are not fed back into
        # writes: only the objects this module made are offered (KnownIds).
        "phases": {"examples": {**no_response_ids, "enabled": fuzzing},
                   "fuzzing": {**no_response_ids, "enabled": fuzzing},
                   "coverage": {**no_response_ids, "enabled": not fuzzing}},
    })


@dataclass
class FuzzReport:
    failures: list[str] = field(default_factory=list)
    statuses: dict[str, set[int]] = field(default_factory=dict)  # operation label -> statuses answered
    phases: set[str] = field(default_factory=set)  # schemathesis phases that sent requests

    def explain(self) -> str:
        return f"{len(self.failures)} operation(s) failed:\n\n" + "\n\n".join(self.failures)


def fuzz(schema: Any, checks: list[Any]) -> FuzzReport:
    """Run every operation through schemathesis' phases and report what failed, one entry per
    operation, each with the request that reproduces it.

    ``get_all_tests`` builds the per-operation Hypothesis tests exactly as schemathesis' pytest
    plugin does. The plugin's own entry point for a schema served by a fixture
    (``schemathesis.pytest.from_fixture``) does not run on pytest 9 (it rewrites
    ``Node._nodeid``), and a fixture's server cannot serve the schema at collection time.
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


# ---- the networking API, from its own document -------------------------------------------------------


@pytest.fixture(scope="module", params=RUNS, ids=[r.name for r in RUNS])
def networking_api(request: pytest.FixtureRequest, fuzz_server: LiveServer, callers: dict[str, Caller],
                   known_ids: KnownIds) -> tuple[Run, Any]:
    run: Run = request.param
    document = httpx.get(fuzz_server.url + "/openapi.json", timeout=10).json()
    operations = sum(len(methods) for methods in document["paths"].values())
    schema = schemathesis.openapi.from_dict(document, config=fuzz_config(
        fuzz_server.url, callers[run.caller].token, operations=operations, phase=run.phase))
    if run.phase == "coverage":
        schema = schema.include(method="POST", path_regex=r"^[^{]+$")  # creates

    @schema.hook
    def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> st.SearchStrategy:
        known = known_ids.for_path(context.operation.method, context.operation.path)
        return offering(path_parameters, known)

    @schema.hook
    def flatmap_body(context: Any, body: Any) -> st.SearchStrategy:
        return offering(body, known_ids.body_values)

    return run, schema


@pytest.mark.slow
def test_documented_operations_never_fail_with_500_and_errors_keep_neutrons_shape(
        networking_api: tuple[Run, Any]) -> None:
    run, schema = networking_api
    report = fuzz(schema, NETWORKING_CHECKS)
    assert not report.failures, report.explain()
    # Not vacuous: every operation was reached with a working token, and objects got created.
    only_401 = sorted(label for label, statuses in report.statuses.items() if statuses <= {401})
    assert not only_401, only_401
    assert len(report.statuses) == sum(1 for _ in schema.get_all_operations())
    assert 201 in report.statuses["POST /v2.0/networks"], report.statuses["POST /v2.0/networks"]
    assert run.phase in report.phases, report.phases


# ---- stateful: sequences that follow the document's links ------------------------------------------

# Per collection whose create links to its members: scenarios, and steps per scenario.
STATEFUL_SCENARIOS = int(os.environ.get("NEUTRINO_FUZZ_SCENARIOS", "4"))
STATEFUL_STEPS = 8


def linked_collections(document: Mapping[str, Any]) -> list[str]:
    """Collection paths whose create response links to member operations (from the document, so a
    new resource is in the stateful run as soon as it is published)."""
    found = []
    for path, methods in document["paths"].items():
        created = methods.get("post", {}).get("responses", {}).get("201", {})
        if "{" not in path and created.get("links"):
            found.append(path)
    return sorted(found)


@pytest.mark.slow
@pytest.mark.parametrize("caller", sorted(CLOUDS))
def test_linked_sequences_never_fail_with_500(fuzz_server: LiveServer, callers: dict[str, Caller],
                                              known_ids: KnownIds, caller: str) -> None:
    """Create something, then show, update, tag, act on and delete it through the links of the
    create's response, as admin and as a member, collection by collection (all of them at once
    leaves most creates unvisited in a bounded run). Seeded; schemathesis draws some link choices
    from true randomness, so the sequences are bounded rather than exactly repeatable."""
    document = httpx.get(fuzz_server.url + "/openapi.json", timeout=10).json()
    collections = linked_collections(document)
    assert {"/v2.0/networks", "/v2.0/ports", "/v2.0/routers"} <= set(collections), collections
    report = FuzzReport()
    followed: set[str] = set()
    for collection in collections:
        schema = schemathesis.openapi.from_dict(document, config=fuzz_config(
            fuzz_server.url, callers[caller].token, operations=1)).include(
            path_regex="^" + re.escape(collection) + r"(/\{id\}.*)?$")

        @schema.hook
        def flatmap_body(context: Any, body: Any) -> st.SearchStrategy:
            return offering(body, known_ids.body_values)

        class Sequences(schema.as_state_machine()):  # type: ignore[misc]
            def validate_response(self, response: Any, case: Any, additional_checks: Any = None,
                                  **kwargs: Any) -> None:
                report.statuses.setdefault(case.operation.label, set()).add(response.status_code)
                if "{id}" in case.operation.path and response.status_code < 300:
                    followed.add(case.operation.path.split("/{id}")[0])
                try:
                    case.validate_response(response, checks=NETWORKING_CHECKS)
                except (Exception, FailureGroup) as exc:  # noqa: BLE001 - collected, reported together
                    report.failures.append(f"{case.operation.label}:\n{exc}")

        hypothesis.seed(SEED)(Sequences)
        Sequences.run(settings=hypothesis.settings(
            max_examples=STATEFUL_SCENARIOS, stateful_step_count=STATEFUL_STEPS, database=None, deadline=None,
            phases=[hypothesis.Phase.generate], suppress_health_check=list(hypothesis.HealthCheck)))
    assert not report.failures, report.explain()
    # Not vacuous: objects were made and reached through their links (random bodies often fail
    # validation, so not in every collection of a bounded run).
    # Which collections' random bodies happen to validate varies from run to run (schemathesis
    # draws some choices from true randomness), so the check is over the run, not one collection.
    # A member's bounded run reached only two collections' links once, so the bar is that objects
    # were made and followed at all; every response of every sequence is checked above either way.
    created = sorted(label for label, codes in report.statuses.items() if label.startswith("POST ") and 201 in codes)
    assert created, report.statuses
    assert followed, (sorted(followed), report.statuses)


# ---- the embedded identity, from a hand-written schema -----------------------------------------------

_TEXT = {"type": "string", "maxLength": 300}
_REF = {"type": "object", "properties": {"id": _TEXT, "name": _TEXT, "domain": {
    "type": "object", "properties": {"id": _TEXT, "name": _TEXT}}}}
_KEYSTONE_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["code", "title", "message"], "properties": {
        "code": {"type": "integer"}, "title": {"type": "string"}, "message": {"type": "string"}}}}}


def _keystone_responses(ok: int, *errors: int) -> dict[str, Any]:
    out: dict[str, Any] = {str(ok): {"description": "success"}}
    for status in errors:
        out[str(status)] = {"description": "error", "content": {"application/json": {"schema": _KEYSTONE_ERROR}}}
    return out


def _json_body_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _path_params(*names: str) -> list[dict[str, Any]]:
    return [{"name": n, "in": "path", "required": True, "schema": _TEXT} for n in names]


IDENTITY_DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "Keystone calls OpenStack clients make (a subset)", "version": "3"},
    "components": {"securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}}},
    "security": [{"token": []}],
    "paths": {
        "/v3/auth/tokens": {
            "post": {"security": [], "requestBody": _json_body_schema({
                "type": "object", "properties": {"auth": {"type": "object", "properties": {
                    "identity": {"type": "object", "properties": {
                        "methods": {"type": "array", "items": {"enum": ["password", "token", "totp"]}},
                        "password": {"type": "object", "properties": {"user": {
                            **_REF, "properties": {**_REF["properties"], "password": _TEXT}}}},
                        "token": {"type": "object", "properties": {"id": _TEXT}}}},
                    "scope": {"anyOf": [{"enum": ["unscoped"]}, {"type": "object", "properties": {
                        "project": _REF, "domain": _REF, "system": {"type": "object"}}}]}}}}}),
                "responses": _keystone_responses(201, 400, 401, 404)},
            "get": {"parameters": [{"name": "X-Subject-Token", "in": "header", "required": True, "schema": _TEXT}],
                    "responses": _keystone_responses(200, 400, 401, 404)},
        },
        "/v3/projects": {
            "get": {"parameters": [{"name": "name", "in": "query", "schema": _TEXT},
                                   {"name": "domain_id", "in": "query", "schema": _TEXT}],
                    "responses": _keystone_responses(200, 400, 401, 403)},
            "post": {"requestBody": _json_body_schema({"type": "object", "properties": {"project": {
                "type": "object", "properties": {
                    "name": _TEXT, "domain_id": _TEXT, "description": _TEXT, "enabled": {"type": "boolean"}}}}}),
                "responses": _keystone_responses(201, 400, 401, 403, 404, 409)},
        },
        "/v3/users": {
            "post": {"requestBody": _json_body_schema({"type": "object", "properties": {"user": {
                "type": "object", "properties": {
                    "name": _TEXT, "password": _TEXT, "domain_id": _TEXT, "default_project_id": _TEXT,
                    "enabled": {"type": "boolean"}}}}}),
                "responses": _keystone_responses(201, 400, 401, 403, 404, 409)},
        },
        "/v3/users/{user_id}": {
            "patch": {"parameters": _path_params("user_id"),
                      "requestBody": _json_body_schema({"type": "object", "properties": {"user": {
                          "type": "object", "properties": {"name": _TEXT, "password": _TEXT,
                                                           "enabled": {"type": "boolean"},
                                                           "default_project_id": _TEXT}}}}),
                      "responses": _keystone_responses(200, 400, 401, 403, 404, 409)},
        },
        "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}": {
            "put": {"parameters": _path_params("project_id", "user_id", "role_id"),
                    "responses": _keystone_responses(204, 400, 401, 403, 404)},
        },
    },
}


@pytest.fixture(scope="module")
def identity_api(fuzz_server: LiveServer, callers: dict[str, Caller]) -> Any:
    """The identity calls as the admin, offered real names, ids, passwords and tokens next to
    random ones, so some requests authenticate and scoping and lookups run on real objects."""
    demo = fuzz_server.cloud("neutrino-demo")["auth"]
    document = copy.deepcopy(IDENTITY_DOCUMENT)
    # The examples phase sends one good request; fuzzing varies from there.
    document["paths"]["/v3/auth/tokens"]["post"]["requestBody"]["content"]["application/json"]["example"] = {
        "auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": demo["username"], "password": demo["password"], "domain": {"name": demo["user_domain_name"]}}}},
            "scope": {"project": {"name": demo["project_name"], "domain": {"name": demo["project_domain_name"]}}}}}
    schema = schemathesis.openapi.from_dict(document, config=fuzz_config(
        # Every password check costs a deliberately slow hash: fuzzing only, no boundary sweep.
        fuzz_server.url + "/identity", callers["admin"].token, operations=len(document["paths"])))
    known = {"name": [demo["username"], demo["project_name"], demo["user_domain_name"]],
             "password": [demo["password"]], "id": ["default", callers["member"].project_id],
             "X-Subject-Token": [callers["member"].token], "project_id": [callers["member"].project_id]}

    @schema.hook
    def flatmap_body(context: Any, body: Any) -> st.SearchStrategy:
        return offering(body, known)

    @schema.hook
    def flatmap_headers(context: Any, headers: Any) -> st.SearchStrategy:
        return offering(headers, known)

    @schema.hook
    def flatmap_path_parameters(context: Any, path_parameters: Any) -> st.SearchStrategy:
        return offering(path_parameters, known)

    return schema


@pytest.mark.slow
def test_identity_answers_garbage_with_keystone_errors_never_500(identity_api: Any) -> None:
    report = fuzz(identity_api, IDENTITY_CHECKS)
    assert not report.failures, report.explain()
    tokens = report.statuses["POST /v3/auth/tokens"]
    assert {400, 401} <= tokens and 201 in tokens, tokens  # garbage turned away; a good request served


# ---- the document describes what is served -------------------------------------------------------------


def test_every_documented_operation_is_routed_and_every_route_documented(live_server: LiveServer) -> None:
    """Each (method, path) of /openapi.json, with ids that name nothing and empty bodies, reaches
    its handler (a typed answer, never the router's 404 or a 405); member actions, tags,
    extensions and quota actions are all there."""
    document = httpx.get(live_server.url + "/openapi.json", timeout=10).json()
    paths = document["paths"]
    for expected in ("/v2.0/extensions", "/v2.0/extensions/{alias}", "/v2.0/networks/{id}/tags",
                     "/v2.0/networks/{id}/tags/{tag}", "/v2.0/quotas/{id}/default", "/v2.0/quotas/{id}/details",
                     "/v2.0/subnetpools/{id}/add_prefixes"):
        assert expected in paths, sorted(paths)
    assert set(paths["/v2.0/ports/{id}/tags"]) == {"get", "put", "post", "delete"}
    admin = issue_token(live_server, "neutrino-admin")
    named = {"tag": "t", "alias": "pagination"}  # any other {parameter} gets an id that names nothing
    with httpx.Client(base_url=live_server.url, headers={"X-Auth-Token": admin.token}, timeout=10) as http:
        for path, methods in paths.items():
            url = re.sub(r"\{(\w+)\}", lambda m: named.get(m.group(1), str(uuid.uuid4())), path)
            for method in methods:
                body = {} if method in ("post", "put") else None
                response = http.request(method.upper(), url, json=body)
                assert response.status_code != 405, (method, path, response.text)
                if response.status_code == 404:
                    assert response.json()["NeutronError"]["type"] != "HTTPNotFound", (method, path, response.text)


# ---- regressions: the 500s fuzzing found, pinned on every backend -------------------------------------


@pytest.fixture(scope="module")
def admin_http(any_backend_server: LiveServer) -> Iterator[httpx.Client]:
    caller = issue_token(any_backend_server, "neutrino-admin")
    with httpx.Client(base_url=any_backend_server.url + "/v2.0", headers={"X-Auth-Token": caller.token},
                      timeout=10) as http:
        yield http


def assert_bad_request(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["NeutronError"]
    assert error["type"] == "HTTPBadRequest" and reason in error["message"], error


def test_empty_segments_list_gives_a_tenant_network(admin_http: httpx.Client) -> None:
    # Was a 500 (min() of no segments): Neutron's ML2 reads an empty list as "nothing requested".
    response = admin_http.post("/networks", json={"network": {"name": f"segs-{uuid.uuid4().hex[:8]}",
                                                               "segments": []}})
    assert response.status_code == 201, response.text
    net = response.json()["network"]
    try:
        assert net["provider:network_type"] and net["mtu"] > 0, net
    finally:
        admin_http.delete(f"/networks/{net['id']}")


def test_limit_beyond_any_database_integer_is_just_a_large_page(admin_http: httpx.Client) -> None:
    # Was a 500: the limit went to SQL as is and overflowed the driver's integer.
    response = admin_http.get("/networks", params={"limit": str(10 ** 30)})
    assert response.status_code == 200, response.text
    assert "networks" in response.json() and "networks_links" in response.json()


@pytest.mark.parametrize(("method", "url", "body"), [
    ("GET", "/networks?mtu=" + str(10 ** 30), None),
    ("GET", "/networks?revision_number=" + str(2 ** 40), None),
    ("POST", "/networks", {"network": {"provider:segmentation_id": 2 ** 40, "provider:network_type": "vxlan"}}),
    ("POST", "/subnetpools", {"subnetpool": {"name": "p", "prefixes": ["10.250.0.0/16"], "default_quota": 2 ** 40}}),
], ids=["filter", "huge-filter", "provider-body", "pool-quota"])
def test_integers_beyond_32_bits_are_invalid_input(admin_http: httpx.Client, method: str, url: str,
                                                   body: Any) -> None:
    # Were 500s: SQLite's driver overflows past 64 bits, PostgreSQL's and MySQL's columns past 32.
    assert_bad_request(admin_http.request(method, url, json=body), "is too large - must be no larger than")


@pytest.mark.parametrize(("method", "url", "body"), [
    ("POST", "/networks", {"network": {"description": "a\x00b"}}),
    ("GET", "/networks?description=%00", None),
    ("GET", "/networks/net%00work", None),
    ("GET", "/networks?limit=1&marker=%00", None),
    ("GET", "/networks?tags=a%00b", None),
    ("GET", "/quotas/project%00", None),
    ("PUT", "/networks/" + str(uuid.uuid4()) + "/tags/a%00b", None),
], ids=["body", "filter", "member-id", "marker", "tag-filter", "quota-id", "tag-write"])
def test_nul_characters_are_invalid_input_on_every_backend(admin_http: httpx.Client, method: str, url: str,
                                                           body: Any) -> None:
    # Were 500s on PostgreSQL, whose text cannot hold NUL (SQLite and MySQL stored it).
    assert_bad_request(admin_http.request(method, url, json=body), "NUL character")


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"auth": null}', b'{"auth": {"identity": {"methods": []}}}',
                                  b'{"auth": {"identity": {"methods": ["totp"]}}}',
                                  b'{"auth": {"identity": {"methods": ["password"], "password": {"user": 7}}}}',
                                  b'{"auth": {"identity": {"methods": ["token"], "token": {"id": "x"}}}}',
                                  b'{"auth": {"identity": {"methods": ["password"], "password": {"user": {'
                                  b'"name": "admin", "password": "wrong", "domain": {"name": "Default"}}}}}}'])
def test_garbage_token_requests_get_keystone_errors(live_server: LiveServer, body: bytes) -> None:
    response = httpx.post(live_server.url + "/identity/v3/auth/tokens", content=body, timeout=10,
                          headers={"Content-Type": "application/json"})
    assert response.status_code in (400, 401), response.text
    error = response.json()["error"]
    assert set(error) == {"code", "title", "message"} and error["code"] == response.status_code, error


def test_identity_paths_the_mount_cannot_match_still_get_keystone_errors(live_server: LiveServer) -> None:
    # Was a NeutronError body: a newline in an id defeats the /identity mount's pattern, so the
    # request fell through to the networking API's 404.
    response = httpx.get(live_server.url + "/identity/v3/projects/a%0Ab", timeout=10)
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == 404, response.text
