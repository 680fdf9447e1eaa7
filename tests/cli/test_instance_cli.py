"""``neutrino instance`` end to end against a real ``neutrino up``: the port Nova would make, the VIF
os-vif would plug, a command run inside, and a delete that leaves nothing behind.

The server has no L2 agent yet, so the port stays DOWN and its binding may fail; what is checked is
what the instance simulator itself is responsible for. Each test binds to a host name of its own
(so its kernel objects carry a mark no other run uses) and removes what it made even on failure.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openstack
import pytest

from neutrino.cli import instance as instance_cli
from neutrino.contract.names import tap_name
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.kernel


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=20)


def namespace_exists(name: str) -> bool:
    return name in ip("netns", "list").stdout.split()


def link_exists(name: str) -> bool:
    return ip("link", "show", "dev", name, check=False).returncode == 0


@dataclass
class Setting:
    server: LiveServer
    state_dir: Path
    suffix: str
    network_id: str
    subnet_id: str
    admin: openstack.connection.Connection

    @property
    def host(self) -> str:
        return f"test-{self.suffix}"

    def cli(self, action: str, *argv: str, cloud: str | None = "neutrino-demo") -> int:
        parser = argparse.ArgumentParser(prog="neutrino")
        instance_cli.register(parser.add_subparsers(dest="command", required=True))
        options = ["--state-dir", str(self.state_dir), *(["--os-cloud", cloud] if cloud else [])]
        args = parser.parse_args(["instance", action, *options, *argv])
        return int(args.func(args))


@pytest.fixture
def setting(live_server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setting]:
    if os.geteuid() != 0:
        pytest.skip("instances need root (namespaces, devices)")
    for key in [k for k in os.environ if k.startswith("OS_")]:
        monkeypatch.delenv(key)
    monkeypatch.delenv("NEUTRINO_COMPUTE_CLOUD", raising=False)
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(live_server.clouds_yaml))
    suffix = secrets.token_hex(3)
    demo = openstack.connect(cloud="neutrino-demo")
    admin = openstack.connect(cloud="neutrino-admin")
    network = demo.network.create_network(name=f"inst-net-{suffix}")
    subnet = demo.network.create_subnet(network_id=network.id, cidr="10.61.0.0/24", ip_version=4,
                                        name=f"inst-sub-{suffix}")
    state = Setting(live_server, tmp_path / "state", suffix, network.id, subnet.id, admin)
    try:
        yield state
    finally:
        # Whatever the test left: its instances' kernel objects (by their unique mark), then ports.
        for port in admin.network.ports(network_id=network.id):
            ip("link", "del", tap_name(port.id), check=False)
            admin.network.delete_port(port.id, ignore_missing=True)
        records = state.state_dir / "instances"
        for record in records.glob("*.json") if records.is_dir() else ():
            namespace = json.loads(record.read_text())["namespace"]
            for pid in ip("netns", "pids", namespace, check=False).stdout.split():
                subprocess.run(["kill", "-9", pid], check=False)
            ip("netns", "delete", namespace, check=False)
        admin.network.delete_network(network.id, ignore_missing=True)
        demo.close()
        admin.close()


def test_instance_lifecycle_acts_as_nova_and_delete_leaves_nothing(
    setting: Setting, capfd: pytest.CaptureFixture[str]
) -> None:
    name = f"vm-{setting.suffix}"

    assert setting.cli("create", name, "--network", f"inst-net-{setting.suffix}", "--host", setting.host,
                       "--fixed-ip", "10.61.0.42", "--static") == 0, capfd.readouterr().err

    record = json.loads((setting.state_dir / "instances" / f"{name}.json").read_text())
    port = setting.admin.network.get_port(record["port_id"])
    assert port.device_owner == "compute:nova" and port.device_id == record["instance_id"]
    assert port.name == name and port.binding_host_id == setting.host
    assert port.network_id == setting.network_id
    assert [ip["ip_address"] for ip in port.fixed_ips] == ["10.61.0.42"]
    tap = tap_name(port.id)
    namespace = record["namespace"]
    assert namespace_exists(namespace) and link_exists(tap)
    assert f"alias neutrino:{setting.host}" in ip("link", "show", "dev", tap).stdout
    capfd.readouterr()

    assert setting.cli("exec", name, "--", "ip", "-o", "addr") == 0
    inside = capfd.readouterr().out
    assert "eth0" in inside and "inet 10.61.0.42/24" in inside

    assert setting.cli("exec", name, "--", "sh", "-c", "exit 3") == 3
    assert setting.cli("list", "--format", "json") == 0
    listed = json.loads(capfd.readouterr().out)
    assert [(i["name"], i["port_id"], i["plugged"], i["addresses"]) for i in listed] == [
        (name, port.id, True, ["10.61.0.42"])]

    # No cloud named: delete acts as the project the instance was created in, as recorded.
    assert setting.cli("delete", name, cloud=None) == 0

    assert setting.admin.network.find_port(port.id) is None
    assert not link_exists(tap) and not namespace_exists(namespace)
    assert not (setting.state_dir / "instances" / f"{name}.json").exists()


def test_failed_create_leaves_no_port_record_or_kernel_object(
    setting: Setting, capfd: pytest.CaptureFixture[str]
) -> None:
    name = f"bad-{setting.suffix}"

    # The address is outside the subnet: the port create fails after the name was claimed.
    status = setting.cli("create", name, "--network", setting.network_id, "--host", setting.host,
                         "--fixed-ip", "192.0.2.7")

    assert status == 1
    assert "creating the port" in capfd.readouterr().err
    assert list(setting.admin.network.ports(network_id=setting.network_id)) == []
    assert not (setting.state_dir / "instances" / f"{name}.json").exists()
    assert not namespace_exists(f"nqi-{name}")
    assert setting.cli("delete", name) == 1  # nothing left to delete
