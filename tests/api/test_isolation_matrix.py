"""Project isolation, generated from the resource definitions: B can do nothing to A's objects.

For every resource type the server defines (``src/neutrino/resources/``, as the enabled plugins
register them) that a project owns, project A makes one object, and a member of project B tries
every member operation on it: show, update, delete, each member action, each sub-collection, and
using it by id in B's own objects (every attribute of every creatable resource that names an object
of that type). Neutron answers 404 to all of these (it pretends an object B may not see does not
exist); afterwards A's object is exactly as it was.

Nothing here is written per resource except how to fill a required attribute (``VALUES``) and which
attributes name which resource (``REFERENCES``): a new resource definition is in the matrix as soon
as it is registered, and a definition with a required attribute nobody knows how to fill fails
``test_every_owned_resource_is_in_the_matrix`` with its name.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from neutrino.config import Settings
from neutrino.resources.definition import Resource
from neutrino.server.plugins import load_service_plugins
from neutrino.server.plugins.core import CorePlugin
from tests.support.live_server import LiveServer
from tests.support.neutron_http import api, created, ok
from tests.support.tenants import IdentityAdmin, Persona

pytestmark = pytest.mark.xdist_group("isolation-matrix")


def registered_resources() -> list[Resource]:
    resources = list(CorePlugin().resources())
    for plugin in load_service_plugins(Settings().server.service_plugins):
        resources.extend(plugin.resources())
    return resources


RESOURCES = {r.name: r for r in registered_resources()}


# Owned resources nobody creates directly: their ids are another resource's (an availability row
# per network). Their objects in the matrix are that resource's.
ID_OF: dict[str, str] = {"network_ip_availability": "network"}


def owned(resource: Resource) -> bool:
    """Objects a project owns and can name by id: the matrix's rows (children through their parent).
    Sub-collections keyed by another resource's id (a local IP's port associations, keyed by the
    port) are not rows: their isolation is their parent's (tests/api/test_logs_local_ips_ndp_proxies.py)."""
    if resource.attribute("id") is None:
        return False
    if resource.parent is not None:
        return resource.allow_create and owned(RESOURCES[resource.parent.resource])
    return resource.project_owned and resource.allow_show and not resource.member_is_project


# Sub-collections whose members are named by another attribute than an id of their own.
MEMBER_KEY: dict[str, str] = {"port_association": "fixed_port_id"}

# Which resource an attribute's value names (a list attribute names one per item).
REFERENCES: dict[str, str] = {
    "network_id": "network", "subnet_id": "subnet", "port_id": "port", "internal_port_id": "port",
    "security_group_id": "security_group", "remote_group_id": "security_group", "security_groups": "security_group",
    "remote_address_group_id": "address_group", "qos_policy_id": "policy", "subnetpool_id": "subnetpool",
    "address_scope_id": "address_scope", "object_id": "network", "floating_network_id": "network",
    "router_id": "router", "fixed_port_id": "port",
}
# Attributes whose value is not one of the caller's objects (the shared external network), and
# member-action bodies that name objects (what Neutron looks up with the caller's visibility).
NOT_THE_CALLERS = {"floating_network_id"}
ACTION_REFERENCES: dict[tuple[str, str], tuple[str, ...]] = {
    ("router", "add_router_interface"): ("subnet_id", "port_id"),
    ("router", "remove_router_interface"): ("subnet_id", "port_id"),
}

_numbers = itertools.count(1)


def _octet() -> int:
    return 10 + next(_numbers) % 200


# How to fill a required (or needed) attribute when making an object: name -> f(world, owner).
VALUES: dict[str, Callable[[World, str], Any]] = {
    "ip_version": lambda w, o: 4,
    "name": lambda w, o: f"matrix-{uuid.uuid4().hex[:8]}",
    "prefixes": lambda w, o: [f"10.{w.second_octet}.{_octet()}.0/24"],
    "cidr": lambda w, o: f"10.{w.second_octet}.{_octet()}.0/24",
    "object_type": lambda w, o: "network",
    "action": lambda w, o: "access_as_shared",
    "target_tenant": lambda w, o: uuid.uuid4().hex,  # a project that is neither A nor B
    "direction": lambda w, o: "ingress",
    "protocol": lambda w, o: "tcp",
    "internal_ip_address": lambda w, o: w.get(RESOURCES["port"], o)["fixed_ips"][0]["ip_address"],
    "internal_port": lambda w, o: 8000 + next(_numbers),
    "external_port": lambda w, o: 8000 + next(_numbers),
    "max_kbps": lambda w, o: 1000,
    "min_kbps": lambda w, o: 1000,
    "dscp_mark": lambda w, o: 10,
    "max_kpps": lambda w, o: 1000,
    "min_kpps": lambda w, o: 1000,
    "floating_network_id": lambda w, o: w.external["id"],
    # A router's conntrack helper: ftp over tcp is on every allowed list, on a port of its own.
    "helper": lambda w, o: "ftp",
    "port": lambda w, o: 2100 + next(_numbers),
    # A network segment range (the admin's, made for the project): VNIs far from any other range,
    # the maximum drawn after the minimum so successive ranges never overlap.
    # A port binding's host (only the compute service binds; others are refused before any lookup).
    "host": lambda w, o: f"matrix-host-{next(_numbers)}",
    "network_type": lambda w, o: "vxlan",
    "minimum": lambda w, o: 1_000_000 + 1000 * next(_numbers),
    "maximum": lambda w, o: 1_000_000 + 1000 * next(_numbers) + 999,
    "resource_type": lambda w, o: "security_group",
}
# Beyond the required attributes: what makes an object useful to the rest of the matrix.
EXTRA: dict[str, tuple[str, ...]] = {
    "subnet": ("cidr",),
    "port_forwarding": ("internal_port", "external_port"),
    "local_ip": ("network_id",),
}
# Objects that must exist first although no attribute names them (a port gets an address only on
# a network that already has a subnet).
FIRST: dict[str, tuple[str, ...]] = {"port": ("subnet",), "local_ip": ("subnet",)}
# What the server refuses a member (admin-only creates): the admin makes those for the project.
SKIP_ATTRIBUTES = {"project_id", "tenant_id"}


@dataclass
class World:
    adm: httpx.Client
    clients: dict[str, httpx.Client]
    projects: dict[str, str]
    external: dict[str, Any]
    second_octet: int
    made: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # owner -> resource -> object
    parents: dict[tuple[str, str], str] = field(default_factory=dict)  # (owner, child resource) -> parent id
    router_ready: set[str] = field(default_factory=set)

    def collection_url(self, resource: Resource, owner: str) -> str:
        if resource.parent is None:
            return f"/{resource.path}"
        parent = self.get(RESOURCES[resource.parent.resource], owner)
        return f"/{RESOURCES[resource.parent.resource].path}/{parent['id']}/{resource.path}"

    def member_url(self, resource: Resource, owner: str) -> str:
        return f"{self.collection_url(resource, owner)}/{self.get(resource, owner)['id']}"

    def body(self, resource: Resource, owner: str, *, skip: str = "") -> dict[str, Any]:
        """What ``owner`` sends to create one ``resource``: its own objects fill every reference."""
        body: dict[str, Any] = {}
        wanted = [a.name for a in resource.attributes if a.is_required] + list(EXTRA.get(resource.name, ()))
        for name in wanted:
            if name in SKIP_ATTRIBUTES or name == skip:
                continue
            if name in REFERENCES and name not in NOT_THE_CALLERS:
                target = self.get(RESOURCES[REFERENCES[name]], owner)["id"]
                body[name] = [target] if name == "security_groups" else target
            elif name in VALUES:
                body[name] = VALUES[name](self, owner)
            else:
                raise AssertionError(f"{resource.name}: no way to fill required attribute {name!r}: add it to VALUES")
        return body

    def get(self, resource: Resource, owner: str) -> dict[str, Any]:
        """``owner``'s object of this type, made (with whatever it needs) the first time it is asked for."""
        mine = self.made.setdefault(owner, {})
        if resource.name in ID_OF:
            return self.get(RESOURCES[ID_OF[resource.name]], owner)
        if resource.name not in mine:
            for needed in FIRST.get(resource.name, ()):
                self.get(RESOURCES[needed], owner)
            if resource.name == "port_forwarding":
                self._connect_router(owner)
            body = self._ndp_proxy_body(owner) if resource.name == "ndp_proxy" else self.body(resource, owner)
            mine[resource.name] = self._create(resource, owner, body)
        return mine[resource.name]

    def _create(self, resource: Resource, owner: str, body: dict[str, Any]) -> dict[str, Any]:
        url = self.collection_url(resource, owner)
        resp = self.clients[owner].post(url, json={resource.name: body})
        if resp.status_code == 403 and resource.parent is None:  # admin-only create: the admin makes it for them
            resp = self.adm.post(url, json={resource.name: {**body, "project_id": self.projects[owner]}})
        elif resp.status_code == 403:
            resp = self.adm.post(url, json={resource.name: body})
        return created(resp, resource.name)

    def _ndp_proxy_body(self, owner: str) -> dict[str, Any]:
        """An NDP proxy needs a router of its own whose gateway network has a scoped IPv6 subnet,
        with ``enable_ndp_proxy``, and a port on one of its IPv6 subnets in the same scope."""
        if "v6pool" not in self.made.setdefault("admin", {}):
            scope = created(self.adm.post("/address-scopes", json={"address_scope": {
                "name": f"matrix-{uuid.uuid4().hex[:6]}", "ip_version": 6, "shared": True}}), "address_scope")
            self.made["admin"]["v6pool"] = created(self.adm.post("/subnetpools", json={"subnetpool": {
                "name": f"matrix-{uuid.uuid4().hex[:6]}", "prefixes": [f"fd00:{self.second_octet:x}::/48"],
                "default_prefixlen": 64, "address_scope_id": scope["id"], "shared": True}}), "subnetpool")
            created(self.adm.post("/subnets", json={"subnet": {
                "network_id": self.external["id"], "ip_version": 6,
                "subnetpool_id": self.made["admin"]["v6pool"]["id"]}}), "subnet")
        pool, client = self.made["admin"]["v6pool"], self.clients[owner]
        net = created(client.post("/networks", json={"network": {"name": "matrix-ndp"}}), "network")
        sub = created(client.post("/subnets", json={"subnet": {
            "network_id": net["id"], "ip_version": 6, "subnetpool_id": pool["id"], "ipv6_address_mode": "slaac",
            "ipv6_ra_mode": "slaac"}}), "subnet")
        router = created(client.post("/routers", json={"router": {
            "name": "matrix-ndp", "external_gateway_info": {"network_id": self.external["id"]},
            "enable_ndp_proxy": True}}), "router")
        ok(client.put(f"/routers/{router['id']}/add_router_interface", json={"subnet_id": sub["id"]}))
        port = created(client.post("/ports", json={"port": {"network_id": net["id"]}}), "port")
        return {"router_id": router["id"], "port_id": port["id"]}

    def _connect_router(self, owner: str) -> None:
        """Port forwardings need the port's subnet behind a router with a gateway on the FIP's network."""
        if owner in self.router_ready:
            return
        router = self.get(RESOURCES["router"], owner)
        client = self.clients[owner]
        ok(client.put(f"/routers/{router['id']}", json={"router": {
            "external_gateway_info": {"network_id": self.external["id"]}}}))
        ok(client.put(f"/routers/{router['id']}/add_router_interface",
                      json={"subnet_id": self.get(RESOURCES["subnet"], owner)["id"]}))
        self.get(RESOURCES["port"], owner)
        self.router_ready.add(owner)


# Owned resources only the compute service makes (no member nor admin may create one), so the
# matrix cannot: their isolation is tested beside them, with the service persona.
SERVICE_MADE: dict[str, str] = {"binding": "tests/api/test_port_bindings.py"}


def owned_resources() -> list[Resource]:
    return [r for r in RESOURCES.values() if owned(r) and r.name not in SERVICE_MADE]


@pytest.fixture(scope="module")
def world(live_server: LiveServer, adm: httpx.Client) -> Iterator[World]:
    identity = IdentityAdmin(live_server)
    personas: dict[str, Persona] = {who: identity.persona("member", prefix=f"matrix-{who}") for who in "AB"}
    clients = {who: api(live_server, p) for who, p in personas.items()}
    octet = 100 + uuid.uuid4().int % 100
    external = created(adm.post("/networks", json={"network": {
        "name": f"matrix-ext-{uuid.uuid4().hex[:6]}", "router:external": True}}), "network")
    created(adm.post("/subnets", json={"subnet": {"network_id": external["id"], "ip_version": 4,
                                                  "cidr": f"198.18.{octet}.0/24"}}), "subnet")
    try:
        yield World(adm, clients, {w: p.project_id for w, p in personas.items()}, external, octet)
    finally:
        for client in clients.values():
            client.close()
        for persona in personas.values():
            identity.delete_user(persona.user_id)
        identity.close()


def test_every_owned_resource_is_in_the_matrix() -> None:
    """The matrix covers what the plugins register; each owned resource can be made from VALUES."""
    names = {r.name for r in owned_resources()}
    assert {"network", "subnet", "port", "router", "floatingip", "security_group", "policy",
            "port_forwarding", "bandwidth_limit_rule"} <= names
    for resource in owned_resources():
        assert resource.allow_create or resource.name in ID_OF, f"{resource.name}: whose ids does it use? (ID_OF)"
        for attribute in resource.attributes:
            if attribute.is_required and attribute.name not in SKIP_ATTRIBUTES:
                assert attribute.name in REFERENCES or attribute.name in VALUES, (resource.name, attribute.name)


def assert_not_found(resp: httpx.Response, what: str) -> None:
    assert resp.status_code == 404, f"{what}: {resp.status_code} {resp.text}"
    assert set(resp.json()) == {"NeutronError"}, f"{what}: {resp.text}"


def error_type(resp: httpx.Response) -> tuple[int, str]:
    assert set(resp.json()) == {"NeutronError"}, resp.text
    return resp.status_code, resp.json()["NeutronError"]["type"]


def assert_hidden(theirs: httpx.Response, baseline: httpx.Response, what: str) -> None:
    """B's answer about A's object is a 404, or, where the answer does not depend on whose object it
    is (an admin-only action: 403 on B's own object too; a reference Neutron checks as the service,
    answered alike for an id that never existed), exactly that answer: nothing tells B it exists."""
    assert theirs.status_code < 500, f"{what}: {theirs.status_code} {theirs.text}"
    if theirs.status_code != 404 or baseline.status_code != 404:
        assert error_type(theirs) == error_type(baseline), (
            f"{what}: {theirs.status_code} {theirs.text}, but {baseline.status_code} {baseline.text} otherwise")
    assert_not_found(theirs, what) if baseline.status_code == 404 else None


def updatable_body(resource: Resource, world: World) -> dict[str, Any]:
    for name in ("name", "description"):
        attribute = resource.attribute(name)
        if attribute is not None and attribute.allow_put:
            return {name: "taken-over"}
    for attribute in resource.attributes:
        if attribute.allow_put and attribute.name in VALUES:
            return {attribute.name: VALUES[attribute.name](world, "B")}
    return {}


@pytest.mark.parametrize("resource", owned_resources(), ids=lambda r: r.name)
def test_another_project_cannot_touch_it(world: World, resource: Resource) -> None:
    b = world.clients["B"]
    world.get(resource, "B")  # B's own, so B's attempts below differ from A's only in whose object it is
    mine = world.get(resource, "A")
    url = world.member_url(resource, "A")
    own_url = world.member_url(resource, "B")
    before = ok(world.adm.get(url), resource.name)

    shown = b.get(url)
    own = b.get(own_url)  # an admin-only view is 403 for B's own object too: then the same for A's
    assert_hidden(shown, own if own.status_code == 403 else shown, f"B shows {url}")
    if own.status_code != 403:
        assert_not_found(shown, f"B shows {url}")
    assert mine["id"] not in {o["id"] for o in ok(b.get(world.collection_url(resource, "A")), resource.collection)
                              if "id" in o} if resource.parent is None else True
    if resource.allow_update:
        assert_not_found(b.put(url, json={resource.name: updatable_body(resource, world)}), f"B updates {url}")
    for action in resource.member_actions:
        tail = f"/{action.name}" + (f"/{uuid.uuid4()}" if action.sub_id else "")
        body = {} if action.method in ("PUT", "POST") else None
        on_own = b.request(action.method, own_url + tail, json=body)
        on_theirs = b.request(action.method, url + tail, json=body)
        assert_hidden(on_theirs, on_own if on_own.status_code == 403 else on_theirs, f"B {action.method} {url}{tail}")
        if on_own.status_code != 403:
            assert_not_found(on_theirs, f"B {action.method} {url}{tail}")
    for child in (r for r in RESOURCES.values() if r.parent is not None and r.parent.resource == resource.name):
        children = f"{url}/{child.path}"
        assert_not_found(b.get(children), f"B lists {children}")
        body = {child.name: world.body(child, "B")}
        on_theirs = b.post(children, json=body)
        on_own = b.post(f"{own_url}/{child.path}", json=body)  # an admin-only create: 403 on B's own too
        if on_own.status_code == 201:
            made = on_own.json()[child.name]
            b.delete(f"{own_url}/{child.path}/{made.get('id') or made[MEMBER_KEY[child.name]]}")
        assert_hidden(on_theirs, on_own if on_own.status_code == 403 else on_theirs, f"B creates in {children}")
        if on_own.status_code != 403:
            assert_not_found(on_theirs, f"B creates in {children}")
    if resource.allow_delete:
        assert_not_found(b.delete(url), f"B deletes {url}")

    after = ok(world.adm.get(url), resource.name)
    assert after == before, f"{url} changed by B's attempts"


def uses_of(resource: Resource) -> list[tuple[Resource, str]]:
    """Every (creatable resource, attribute) naming an object of ``resource``'s type by id."""
    return [(user, attribute.name) for user in owned_resources() for attribute in user.attributes
            if attribute.allow_post and REFERENCES.get(attribute.name) == resource.name
            and attribute.name not in NOT_THE_CALLERS and user.allow_create]


USES = [(target, user, attribute) for target in owned_resources() for user, attribute in uses_of(target)]


@pytest.mark.parametrize(("target", "user", "attribute"), USES,
                         ids=[f"{u.name}.{a}->{t.name}" for t, u, a in USES])
def test_another_projects_object_cannot_be_named_in_ones_own(world: World, target: Resource, user: Resource,
                                                             attribute: str) -> None:
    b = world.clients["B"]
    world.get(user, "B")  # B can make one of its own: the body below is valid but for A's id in it
    theirs = world.get(target, "A")["id"]
    body = world.body(user, "B", skip=attribute)
    body[attribute] = [theirs] if attribute == "security_groups" else theirs
    url = world.collection_url(user, "B")
    before = {o["id"] for o in ok(b.get(url), user.collection)}

    refused = b.post(url, json={user.name: body})
    never_existed = b.post(url, json={user.name: {**body, attribute: [str(uuid.uuid4())] if attribute == "security_groups"
                                                  else str(uuid.uuid4())}})
    assert_hidden(refused, never_existed, f"B creates a {user.name} with {attribute}=A's {target.name}")

    assert {o["id"] for o in ok(b.get(url), user.collection)} == before


ACTION_USES = [(resource, action, attribute) for (resource, action), attributes in ACTION_REFERENCES.items()
               for attribute in attributes]


@pytest.mark.parametrize(("resource", "action", "attribute"), ACTION_USES,
                         ids=[f"{r}.{a}.{attr}" for r, a, attr in ACTION_USES])
def test_another_projects_object_cannot_be_named_in_an_action(world: World, resource: str, action: str,
                                                              attribute: str) -> None:
    b = world.clients["B"]
    url = world.member_url(RESOURCES[resource], "B")
    before = ok(b.get(url), resource)
    theirs = world.get(RESOURCES[REFERENCES[attribute]], "A")["id"]

    assert_not_found(b.put(f"{url}/{action}", json={attribute: theirs}), f"B {action} with A's {attribute}")

    assert ok(b.get(url), resource) == before
