"""Metadata end to end: instances made with ``neutrino instance create`` fetch their own metadata over
real HTTP from inside, on a network without a router (through the ``qdhcp-`` namespace) and behind
a router (through ``qrouter-``), in the OpenStack and EC2 formats; forged identity headers change
nothing. The server is the DHCP tests' ``neutrino up`` (its agent runs l2, l3, dhcp and metadata).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_dhcp_agent import Cloud, _network, cloud, wait_for  # noqa: F401 - the fixture

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMetadataTestKeyOnly neutrino-test"


def _curl(cloud: Cloud, name: str, path: str, *headers: str) -> str:  # noqa: F811
    args = [a for h in headers for a in ("-H", h)]
    done = cloud.neutrino("instance", "exec", "--state-dir", str(cloud.state), name, "--", "curl", "-sf",
                          "--max-time", "10", *args, f"http://169.254.169.254{path}", check=False)
    assert done.returncode == 0, f"{path}: {done.returncode} {done.stdout} {done.stderr}"
    return done.stdout


def _boot(cloud: Cloud, tmp_path: Path, label: str, network_id: str) -> dict[str, Any]:  # noqa: F811
    key, data = tmp_path / f"{label}.pub", tmp_path / f"{label}.data"
    key.write_text(KEY + "\n")
    data.write_text(f"#cloud-config\nhostname: {label}\n")
    name = f"{label}-{cloud.suffix}"
    cloud.instance(name, network_id, "--key-file", str(key), "--user-data", str(data))
    return {"name": name, **cloud.record(name)}


def _check_both_formats(cloud: Cloud, vm: dict[str, Any]) -> None:  # noqa: F811
    name = vm["name"]
    meta = wait_for(lambda: _try_json(cloud, name, "/openstack/latest/meta_data.json"), 60, "metadata")
    assert meta["uuid"] == vm["instance_id"] and meta["name"] == name
    assert meta["public_keys"] == {"key": KEY}
    network = json.loads(_curl(cloud, name, "/openstack/latest/network_data.json"))
    port = cloud.demo.network.get_port(vm["port_id"])
    assert network["links"][0]["ethernet_mac_address"] == port.mac_address
    assert network["networks"][0]["ip_address"] == port.fixed_ips[0]["ip_address"]
    assert _curl(cloud, name, "/openstack/latest/user_data").startswith("#cloud-config")
    assert _curl(cloud, name, "/latest/meta-data/instance-id") == vm["instance_id"]
    assert _curl(cloud, name, "/latest/meta-data/local-ipv4") == port.fixed_ips[0]["ip_address"]
    assert _curl(cloud, name, "/latest/meta-data/public-keys/0/openssh-key") == KEY
    assert _curl(cloud, name, "/latest/user-data").startswith("#cloud-config")


def _try_json(cloud: Cloud, name: str, path: str) -> Any:  # noqa: F811
    done = cloud.neutrino("instance", "exec", "--state-dir", str(cloud.state), name, "--", "curl", "-sf",
                          "--max-time", "5", f"http://169.254.169.254{path}", check=False)
    return json.loads(done.stdout) if done.returncode == 0 else None


def test_instances_fetch_their_own_metadata_and_forged_headers_change_nothing(
        cloud: Cloud, tmp_path: Path) -> None:  # noqa: F811
    isolated, _ = _network(cloud, "md-iso", "10.85.0.0/24")
    one = _boot(cloud, tmp_path, "md-one", isolated.id)
    two = _boot(cloud, tmp_path, "md-two", isolated.id)
    _check_both_formats(cloud, one)
    # The proxy replaces whatever identity the caller claims.
    forged = _curl(cloud, one["name"], "/latest/meta-data/instance-id", f"X-Instance-ID: {two['instance_id']}",
                   "X-Instance-ID-Signature: 00", f"X-Forwarded-For: {cloud.demo.network.get_port(two['port_id']).fixed_ips[0]['ip_address']}")
    assert forged == one["instance_id"]

    # Behind a router: the same, through the router's namespace.
    routed, subnet = _network(cloud, "md-rtr", "10.86.0.0/24")
    router = cloud.demo.network.create_router(name=f"md-router-{cloud.suffix}")
    cloud.demo.network.add_interface_to_router(router, subnet_id=subnet.id)
    three = _boot(cloud, tmp_path, "md-three", routed.id)
    _check_both_formats(cloud, three)
