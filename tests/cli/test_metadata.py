"""Metadata end to end: instances made with ``neutrino instance create`` fetch their own metadata over
real HTTP from inside, on a network without a router (through the ``qdhcp-`` namespace) and behind
a router (through ``qrouter-``), in the OpenStack and EC2 formats, over IPv4 and IPv6; forged identity
headers change nothing. The server is the DHCP tests' ``neutrino up`` (its agent runs l2, l3, dhcp, metadata and firewall).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_dhcp_agent import Cloud, _network, running_cloud, wait_for

pytestmark = [pytest.mark.kernel, pytest.mark.slow]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """The DHCP tests' cloud with the firewall role on: metadata works through security groups, and
    anti-spoofing is what makes identifying a caller by its source address sound."""
    with running_cloud(tmp_path_factory, firewall=True) as made:
        yield made

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMetadataTestKeyOnly neutrino-test"


V4 = "http://169.254.169.254"
# fe80::a9fe:a9fe on the instance's link (curl takes the zone percent-encoded, RFC 6874).
V6 = "http://[fe80::a9fe:a9fe%25eth0]"


def _curl(cloud: Cloud, name: str, path: str, *headers: str, base: str = V4) -> str:
    args = [a for h in headers for a in ("-H", h)]
    done = cloud.neutrino("instance", "exec", "--state-dir", str(cloud.state), name, "--", "curl", "-sf",
                          "--max-time", "10", *args, f"{base}{path}", check=False)
    assert done.returncode == 0, f"{path}: {done.returncode} {done.stdout} {done.stderr}"
    return done.stdout


def _in(cloud: Cloud, name: str, *command: str) -> None:
    cloud.neutrino("instance", "exec", "--state-dir", str(cloud.state), name, "--", *command)


def _curl_from(cloud: Cloud, name: str, source: str, path: str) -> tuple[int, str]:
    """(curl's exit status, the HTTP status it printed) for a request sent from ``source``."""
    done = cloud.neutrino("instance", "exec", "--state-dir", str(cloud.state), name, "--", "curl", "-s",
                          "--max-time", "5", "--interface", source, "-o", "/dev/null", "-w", "%{http_code}",
                          f"{V4}{path}", check=False)
    return done.returncode, done.stdout


def _boot(cloud: Cloud, tmp_path: Path, label: str, network_id: str, *extra: str) -> dict[str, Any]:
    key, data = tmp_path / f"{label}.pub", tmp_path / f"{label}.data"
    key.write_text(KEY + "\n")
    data.write_text(f"#cloud-config\nhostname: {label}\n")
    name = f"{label}-{cloud.suffix}"
    cloud.instance(name, network_id, "--key-file", str(key), "--user-data", str(data), *extra)
    return {"name": name, **cloud.record(name)}


def _check_both_formats(cloud: Cloud, vm: dict[str, Any]) -> None:
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


def _try_json(cloud: Cloud, name: str, path: str, base: str = V4) -> Any:
    done = cloud.neutrino("instance", "exec", "--state-dir", str(cloud.state), name, "--", "curl", "-sf",
                          "--max-time", "5", f"{base}{path}", check=False)
    return json.loads(done.stdout) if done.returncode == 0 else None


def test_instances_fetch_their_own_metadata_and_forged_headers_change_nothing(
        cloud: Cloud, tmp_path: Path) -> None:
    isolated, _ = _network(cloud, "md-iso", "10.85.0.0/24")
    one = _boot(cloud, tmp_path, "md-one", isolated.id)
    two = _boot(cloud, tmp_path, "md-two", isolated.id)
    _check_both_formats(cloud, one)
    # The proxy replaces whatever identity the caller claims.
    forged = _curl(cloud, one["name"], "/latest/meta-data/instance-id", f"X-Instance-ID: {two['instance_id']}",
                   "X-Instance-ID-Signature: 00", f"X-Forwarded-For: {cloud.demo.network.get_port(two['port_id']).fixed_ips[0]['ip_address']}")
    assert forged == one["instance_id"]

    # IPv6, as Neutron serves it: fe80::a9fe:a9fe on the DHCP port, the caller known by its link-local address
    # (waited for: the instance's own fe80:: address is usable once duplicate address detection is done).
    meta = wait_for(lambda: _try_json(cloud, one["name"], "/openstack/latest/meta_data.json", V6), 60,
                    "metadata over IPv6")
    assert meta["uuid"] == one["instance_id"]
    assert _curl(cloud, two["name"], "/latest/meta-data/instance-id", base=V6) == two["instance_id"]

    # Behind a router: the same, through the router's namespace.
    routed, subnet = _network(cloud, "md-rtr", "10.86.0.0/24")
    router = cloud.demo.network.create_router(name=f"md-router-{cloud.suffix}")
    cloud.demo.network.add_interface_to_router(router, subnet_id=subnet.id)
    three = _boot(cloud, tmp_path, "md-three", routed.id)
    _check_both_formats(cloud, three)
    # And over IPv6: fe80::a9fe:a9fe on the router's qr- device, redirected to the router's proxy,
    # the caller known by its link-local address there too.
    meta = wait_for(lambda: _try_json(cloud, three["name"], "/openstack/latest/meta_data.json", V6), 60,
                    "metadata over IPv6 through the router")
    assert meta["uuid"] == three["instance_id"]
    assert _curl(cloud, three["name"], "/latest/meta-data/public-keys/0/openssh-key", base=V6) == KEY


def test_a_spoofed_or_unknown_source_gets_no_other_instances_metadata(cloud: Cloud, tmp_path: Path) -> None:
    """The proxy knows a caller by its source address alone (as Neutron's), so this rests on the firewall
    role's anti-spoofing: with port security on, a packet from another port's address, or from one the
    network never gave out, is dropped before it reaches the proxy; a source the proxy does not know
    (an instance without port security on an address nobody holds) gets 404 and nothing else."""
    network, _ = _network(cloud, "md-spoof", "10.87.0.0/24")
    victim = _boot(cloud, tmp_path, "md-victim", network.id)
    thief = _boot(cloud, tmp_path, "md-thief", network.id)
    stranger = _boot(cloud, tmp_path, "md-stranger", network.id, "--no-port-security")
    for vm in (victim, thief, stranger):
        wait_for(lambda vm=vm: _try_json(cloud, vm["name"], "/openstack/latest/meta_data.json"), 60, "metadata")
    victim_ip = cloud.demo.network.get_port(victim["port_id"]).fixed_ips[0]["ip_address"]
    # Its own address still answers, so what follows fails for the spoofing alone.
    assert _curl(cloud, thief["name"], "/latest/meta-data/instance-id") == thief["instance_id"]

    # The victim's address, and one nobody holds: the firewall drops them (curl gets no answer at all).
    for source in (victim_ip, "10.87.0.250"):
        _in(cloud, thief["name"], "ip", "address", "add", f"{source}/24", "dev", "eth0")
        code, status = _curl_from(cloud, thief["name"], source, "/latest/meta-data/instance-id")
        assert code != 0 and status == "000", (source, code, status)
        _in(cloud, thief["name"], "ip", "address", "del", f"{source}/24", "dev", "eth0")

    # Nothing filters the stranger: its request reaches the proxy, which knows no port with that address.
    _in(cloud, stranger["name"], "ip", "address", "add", "10.87.0.251/24", "dev", "eth0")
    assert _curl_from(cloud, stranger["name"], "10.87.0.251", "/latest/meta-data/instance-id") == (0, "404")
    assert _curl_from(cloud, stranger["name"], "10.87.0.251", "/openstack/latest/meta_data.json") == (0, "404")
