"""Networks, subnets and ports through openstacksdk, as a project member, on every backend."""

from __future__ import annotations

import uuid

import openstack
import pytest
from openstack import exceptions as sdk_exc

from tests.support.live_server import LiveServer


def connect(server: LiveServer, cloud: str) -> openstack.connection.Connection:
    import openstack.config

    config = openstack.config.OpenStackConfig(config_files=[str(server.clouds_yaml)])
    return openstack.connection.Connection(config=config.get_one(cloud))


@pytest.fixture
def demo(any_backend_server: LiveServer) -> openstack.connection.Connection:
    conn = connect(any_backend_server, "neutrino-demo")
    yield conn
    conn.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_member_creates_network_subnet_and_port_and_reads_them_back(demo: openstack.connection.Connection) -> None:
    net = demo.network.create_network(name=unique("net"))
    try:
        assert net.status == "ACTIVE" and net.mtu == 1450 and net.project_id == demo.current_project_id
        subnet = demo.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.20.0.0/24",
                                            name=unique("sub"))
        assert subnet.gateway_ip == "10.20.0.1"
        assert subnet.allocation_pools == [{"start": "10.20.0.2", "end": "10.20.0.254"}]
        port = demo.network.create_port(network_id=net.id, name=unique("port"))
        assert port.status == "DOWN"
        assert port.mac_address.startswith("fa:16:3e:")
        [ip] = port.fixed_ips
        assert ip["subnet_id"] == subnet.id and ip["ip_address"].startswith("10.20.0.")
        shown = demo.network.get_port(port.id)
        assert shown.fixed_ips == port.fixed_ips
        # Binding attributes are admin/service-only: hidden from members.
        assert shown.binding_host_id is None
        listed = [p.id for p in demo.network.ports(network_id=net.id)]
        assert listed == [port.id]
        before = port.revision_number
        updated = demo.network.update_port(port.id, name="renamed")
        assert updated.name == "renamed" and updated.revision_number > before
        assert demo.network.get_network(net.id).subnet_ids == [subnet.id]
        demo.network.delete_port(port)
        with pytest.raises(sdk_exc.ResourceNotFound):
            demo.network.get_port(port.id)
        demo.network.delete_subnet(subnet)
    finally:
        demo.network.delete_network(net, ignore_missing=True)


def test_specific_fixed_ip_and_conflict_on_reuse(demo: openstack.connection.Connection) -> None:
    net = demo.network.create_network(name=unique("net"))
    try:
        subnet = demo.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.30.0.0/24")
        port = demo.network.create_port(network_id=net.id, fixed_ips=[{"ip_address": "10.30.0.50"}])
        assert port.fixed_ips == [{"subnet_id": subnet.id, "ip_address": "10.30.0.50"}]
        with pytest.raises(sdk_exc.ConflictException) as err:
            demo.network.create_port(network_id=net.id, fixed_ips=[{"ip_address": "10.30.0.50"}])
        assert "10.30.0.50" in str(err.value)
        with pytest.raises(sdk_exc.ConflictException):
            demo.network.delete_network(net)  # a port is still on it: NetworkInUse
        demo.network.delete_port(port)
    finally:
        for p in demo.network.ports(network_id=net.id):
            demo.network.delete_port(p)
        demo.network.delete_network(net, ignore_missing=True)
