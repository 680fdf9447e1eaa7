"""binding-extended on a live server: the compute service (the ``service`` role, as Nova) binds a port
to a second host with openstacksdk while it stays active on the first, activates it, and deletes the
old binding; admins may read bindings only; the errors of the port bindings API; other projects'
ports' bindings not found.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openstack
import pytest

from tests.api.test_isolation_policy import sdk
from tests.support.live_server import LiveServer
from tests.support.neutron_http import created, neutron_error, ok
from tests.support.project_network import projects_with_network, service_persona


@dataclass
class World:
    a: httpx.Client
    b: httpx.Client
    adm: httpx.Client
    svc: httpx.Client
    network_id: str
    clouds: Path
    host: str


@pytest.fixture(scope="module")
def world(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with projects_with_network(live_server, tmp_path_factory.mktemp("pbx") / "clouds.yaml", "pbx") as w, \
            service_persona(live_server, w.clouds, "pbx") as svc:
        yield World(w.a, w.b, w.adm, svc, w.network_id, w.clouds, live_server.agent_host)


def test_the_extension_is_listed(world: World) -> None:
    assert "binding-extended" in {e["alias"] for e in ok(world.a.get("/extensions"), "extensions")}


def test_live_migration_of_a_port_binding(world: World) -> None:
    port = created(world.a.post("/ports", json={"port": {"network_id": world.network_id}}), "port")
    ok(world.svc.put(f"/ports/{port['id']}", json={"port": {"binding:host_id": world.host}}))
    conn: openstack.connection.Connection = sdk(world.clouds, "pbx-service")
    try:
        # The destination host is this server's agent too (the only one that can bind): first the
        # port moves off to a host name nothing serves, then back through an inactive binding.
        listed = list(conn.network.port_bindings(port["id"]))
        assert [(b.host, b.status, b.vif_type) for b in listed] == [(world.host, "ACTIVE", "bridge")]
        neutron_error(world.svc.post(f"/ports/{port['id']}/bindings", json={"binding": {"host": world.host}}),
                      409, "PortBindingAlreadyExists")
        # A host no agent serves cannot take an inactive binding: the drivers refuse it, with Neutron's
        # type and their reason, as a conflict (Neutron answers 500).
        msg = neutron_error(world.svc.post(f"/ports/{port['id']}/bindings", json={"binding": {"host": "nowhere"}}),
                            409, "PortBindingError")
        assert msg == (f"Binding for port {port['id']} on host nowhere could not be created or updated: "
                       "linuxbridge: no alive Linux bridge agent on the host.")
        assert [b["host"] for b in ok(world.svc.get(f"/ports/{port['id']}/bindings"), "bindings")] == [world.host]
        # Nor one with a VNIC type the Linux bridge driver does not bind.
        msg = neutron_error(world.svc.post(f"/ports/{port['id']}/bindings", json={"binding": {
            "host": world.host + "-x", "vnic_type": "macvtap"}}), 409, "PortBindingError")
        assert "vnic_type macvtap is not supported" in msg
        # Move the active binding away, then bind the agent's host as the inactive destination.
        ok(world.svc.put(f"/ports/{port['id']}", json={"port": {"binding:host_id": "source-host"}}))
        made = conn.network.create_port_binding(port["id"], host=world.host, profile={"migrating_to": "x"})
        assert (made.host, made.status, made.vif_type, made.profile) == \
            (world.host, "INACTIVE", "bridge", {"migrating_to": "x"})
        by_host = {b.host: b.status for b in conn.network.port_bindings(port["id"])}
        assert by_host == {"source-host": "ACTIVE", world.host: "INACTIVE"}
        activated = ok(world.svc.put(f"/ports/{port['id']}/bindings/{world.host}/activate"))
        assert (activated["host"], activated["status"], activated["vif_type"]) == (world.host, "ACTIVE", "bridge")
        shown = ok(world.adm.get(f"/ports/{port['id']}"), "port")
        assert (shown["binding:host_id"], shown["binding:vif_type"], shown["binding:profile"]) == \
            (world.host, "bridge", {"migrating_to": "x"})
        by_host = {b.host: b.status for b in conn.network.port_bindings(port["id"])}
        assert by_host == {"source-host": "INACTIVE", world.host: "ACTIVE"}
        neutron_error(world.svc.put(f"/ports/{port['id']}/bindings/{world.host}/activate"), 409,
                      "PortBindingAlreadyActive")
        neutron_error(world.svc.put(f"/ports/{port['id']}/bindings/elsewhere/activate"), 404,
                      "PortBindingNotFound")
        conn.network.delete_port_binding(port["id"], "source-host")
        assert [b.host for b in conn.network.port_bindings(port["id"])] == [world.host]
        neutron_error(world.svc.delete(f"/ports/{port['id']}/bindings/source-host"), 404, "PortBindingNotFound")
        # The admin reads bindings but does not make them; the port's owner neither; nor others.
        assert ok(world.adm.get(f"/ports/{port['id']}/bindings"), "bindings")[0]["host"] == world.host
        neutron_error(world.adm.post(f"/ports/{port['id']}/bindings", json={"binding": {"host": "h2"}}), 403,
                      "PolicyNotAuthorized")
        assert ok(world.a.get(f"/ports/{port['id']}/bindings"), "bindings") == []
        neutron_error(world.b.get(f"/ports/{port['id']}/bindings/{world.host}"), 404, "PortNotFound")
        neutron_error(world.b.get(f"/ports/{port['id']}/bindings"), 404, "PortNotFound")
    finally:
        conn.close()
        world.svc.put(f"/ports/{port['id']}", json={"port": {"binding:host_id": ""}})
        world.a.delete(f"/ports/{port['id']}")
