"""``neutrino cleanup`` removes what Neutrino made and nothing else.

The choice is checked as a pure plan first (every owner, one host, foreign taps), then against the
kernel: owned namespaces, devices, nftables tables and processes of one test host go, while a tap
another program made (with a Neutrino-like name), another host's device and an unmarked table stay.
Everything a test makes lives in namespaces unique to it, and ``--host`` is the test's own owner, so
parallel runs on the machine are never touched.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import uuid
from pathlib import Path

import pytest
from kernel_scratch import Scratch, ip

from neutrino.cli import cleanup as cleanup_cli
from neutrino.cli.cleanup import (
    CleanupPlan,
    DeviceFacts,
    FoundProcess,
    KernelInventory,
    NamespaceFacts,
    QdiscFacts,
    TableFacts,
    plan_cleanup,
)
from neutrino.contract.names import bridge_name, tap_name
from neutrino.dataplane.netlink import NetlinkDriver
from neutrino.dataplane.ownership import OwnerTag
from neutrino.dataplane.processes import NamespaceIdentity, ProcessFacts

TAP_A = tap_name("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
TAP_B = tap_name("1a2b3c4d-5e6f-7081-92a3-b4c5d6e7f809")

INVENTORY = KernelInventory(
    namespaces=(
        NamespaceFacts("nqi-vm1", "neutrino:a"),
        NamespaceFacts("qdhcp-x", "neutrino:b"),
        NamespaceFacts("someone-elses", None),
    ),
    devices=(
        DeviceFacts(None, TAP_A, "veth", "neutrino:a"),
        DeviceFacts(None, TAP_B, "tun", None),  # another program's tap with a Neutrino-like name
        DeviceFacts(None, "tap0", "tun", "neutrino:a"),  # not Neutrino's tap naming: never ours
        DeviceFacts(None, "brq0f1e2d3c-4b", "bridge", "neutrino:b"),
        DeviceFacts("someone-elses", "vxlan-7", "vxlan", "neutrino:a"),
        DeviceFacts("nqi-vm1", "eth0", "veth", "neutrino:a"),  # goes with its namespace
        DeviceFacts(None, "lo", None, "neutrino:a"),
    ),
    tables=(
        TableFacts(None, "inet", "neutrino-l2", "neutrino:a"),
        TableFacts(None, "inet", "neutrino-l3", None),
        TableFacts(None, "inet", "firewalld", "neutrino:a"),
        TableFacts("qdhcp-x", "inet", "neutrino-dhcp", "neutrino:b"),
    ),
    processes=(
        FoundProcess(ProcessFacts(10, "dnsmasq", NamespaceIdentity(1, 2)), "qdhcp-x", Path("/s/dhcp/x/pid")),
        FoundProcess(ProcessFacts(11, "sleep", NamespaceIdentity(1, 3)), "nqi-vm1", None),
        FoundProcess(ProcessFacts(12, "dnsmasq", NamespaceIdentity(1, 4)), None, Path("/s/other.pid")),
        FoundProcess(ProcessFacts(13, "bash", NamespaceIdentity(1, 4)), None, Path("/s/odd.pid")),
    ),
)


def test_plan_without_host_takes_every_neutrino_owner_but_no_foreign_object() -> None:
    plan = plan_cleanup(INVENTORY, None)

    assert plan.namespaces == ("nqi-vm1", "qdhcp-x")
    assert {(d.netns, d.name) for d in plan.devices} == {
        (None, TAP_A), (None, "brq0f1e2d3c-4b"), ("someone-elses", "vxlan-7")}
    assert {t.name for t in plan.tables} == {"neutrino-l2", "neutrino-l3"}
    assert {p.process.pid for p in plan.processes} == {10, 11, 12}


def test_plan_with_host_takes_only_that_hosts_objects() -> None:
    plan = plan_cleanup(INVENTORY, "a")

    assert plan.namespaces == ("nqi-vm1",)
    assert {d.name for d in plan.devices} == {TAP_A, "vxlan-7"}
    # Only a table carrying the host's mark; an unmarked neutrino table cannot be attributed.
    assert {t.name for t in plan.tables} == {"neutrino-l2"}
    # Processes are attributed to a host only through the namespace they run in.
    assert {p.process.pid for p in plan.processes} == {11}


def test_plan_of_an_unknown_host_is_empty() -> None:
    assert plan_cleanup(INVENTORY, "c") == CleanupPlan()


def test_plan_takes_the_qos_roles_qdiscs_off_taps_that_stay() -> None:
    # TAP_B stays (not ours); its IFB is host a's; TAP_C has shaping but no IFB of ours; tap0 is no
    # Neutrino tap; TAP_A goes whole (its qdiscs with it).
    tap_c = tap_name("2b3c4d5e-6f70-8192-a3b4-c5d6e7f8091a")
    inventory = KernelInventory(
        devices=(DeviceFacts(None, TAP_A, "veth", "neutrino:a"), DeviceFacts(None, TAP_B, "veth", None),
                 DeviceFacts(None, "ifb" + TAP_B[3:], "ifb", "neutrino:a"), DeviceFacts(None, tap_c, "veth", None)),
        qdiscs=tuple(QdiscFacts(None, tap, kind) for tap in (TAP_A, TAP_B, tap_c, "tap0") for kind in ("root", "ingress")))
    everyone = {(q.device, q.kind) for q in plan_cleanup(inventory, None).qdiscs}
    # An ingress qdisc is the role's only when it redirects to an IFB of ours that goes.
    assert everyone == {(TAP_B, "root"), (TAP_B, "ingress"), (tap_c, "root")}
    # With --host, a root qdisc (no owner mark) is the host's only through the tap's IFB.
    assert {(q.device, q.kind) for q in plan_cleanup(inventory, "a").qdiscs} == {(TAP_B, "root"), (TAP_B, "ingress")}
    assert plan_cleanup(inventory, "b").qdiscs == ()


# ---- the kernel ---------------------------------------------------------------------------------------------


def links(netns: str) -> dict[str, dict]:
    return {link["ifname"]: link for link in json.loads(ip("-n", netns, "-j", "link", "show").stdout)}


def nft_tables(netns: str) -> set[str]:
    out = subprocess.run(["ip", "netns", "exec", netns, "nft", "-j", "list", "tables"],
                         capture_output=True, text=True, check=True).stdout
    return {item["table"]["name"] for item in json.loads(out)["nftables"] if "table" in item}


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="neutrino")
    cleanup_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return int(args.func(args))


async def build_host(driver: NetlinkDriver, scratch: Scratch, host_ns: str) -> tuple[str, str, str]:
    """A simulated host (unmarked namespace) with an owned instance namespace, tap and bridge."""
    instance = scratch.namespace("inst")
    await driver.ensure_namespace(instance)
    owned_tap = tap_name(str(uuid.uuid4()))
    await driver.ensure_veth(owned_tap, "eth0", netns=host_ns, peer_netns=instance)
    bridge = bridge_name(str(uuid.uuid4()))
    await driver.ensure_bridge(bridge, netns=host_ns)
    return instance, owned_tap, bridge


@pytest.mark.kernel
def test_cleanup_of_one_host_removes_its_objects_and_leaves_foreign_ones(
    scratch: Scratch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    owner = OwnerTag(f"test-{scratch.suffix}")
    driver = NetlinkDriver(owner)
    host_ns = scratch.namespace("host")
    ip("netns", "add", host_ns)
    instance, owned_tap, bridge = asyncio.run(build_host(driver, scratch, host_ns))
    foreign_tap = tap_name(str(uuid.uuid4()))  # Neutrino's naming, but another program made it
    ip("-n", host_ns, "tuntap", "add", "dev", foreign_tap, "mode", "tap")
    other_hosts_tap = tap_name(str(uuid.uuid4()))
    ip("-n", host_ns, "tuntap", "add", "dev", other_hosts_tap, "mode", "tap")
    ip("-n", host_ns, "link", "set", "dev", other_hosts_tap, "alias", f"neutrino:other-{scratch.suffix}")
    odd_tap = f"tapx{scratch.suffix}"  # carries our mark but not Neutrino's tap naming
    ip("-n", host_ns, "tuntap", "add", "dev", odd_tap, "mode", "tap")
    ip("-n", host_ns, "link", "set", "dev", odd_tap, "alias", owner.alias)
    nft = ["ip", "netns", "exec", host_ns, "nft"]
    subprocess.run([*nft, "add", "table", "inet", "neutrino-test", f'{{ comment "{owner.alias}" ; }}'], check=True)
    subprocess.run([*nft, "add", "table", "inet", "neutrino-unmarked"], check=True)
    subprocess.run([*nft, "add", "table", "inet", "somebody"], check=True)
    sleeper = subprocess.Popen(["ip", "netns", "exec", instance, "sleep", "300"])
    try:
        assert run_cli("cleanup", "--host", owner.host, "--state-dir", str(tmp_path), "--dry-run") == 0
        assert instance in ip("netns", "list").stdout and owned_tap in links(host_ns)

        status = run_cli("cleanup", "--host", owner.host, "--state-dir", str(tmp_path))

        assert status == 0
        assert sleeper.wait(timeout=10) != 0
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()
    output = capsys.readouterr().out
    assert f"removed namespace {instance}" in output and f"removed device {bridge}" in output
    assert f"removed device {owned_tap}" in output and "removed nftables table inet neutrino-test" in output
    assert f"stopped process {sleeper.pid} (sleep)" in output
    assert instance not in ip("netns", "list").stdout.split()
    left = links(host_ns)
    assert owned_tap not in left and bridge not in left
    assert {foreign_tap, other_hosts_tap, odd_tap} <= set(left)
    assert nft_tables(host_ns) == {"neutrino-unmarked", "somebody"}

    assert run_cli("cleanup", "--host", owner.host, "--state-dir", str(tmp_path)) == 0
    assert "nothing to remove" in capsys.readouterr().out
