"""Run the official network API test suites (tempest's and neutron-tempest-plugin's) against Neutrino.

This is the measure of "a production Neutron's API": ``tempest.api.network`` and
``neutron_tempest_plugin.api``, unchanged, against a fresh ``neutrino up`` configured the way
neutron-tempest-plugin's own gate configures Neutron for its Open vSwitch job
(``neutron-tempest-plugin-openvswitch`` and its parent ``neutron-tempest-plugin-base`` in the
plugin's ``zuul.d/master_jobs.yaml``): quotas router 100, floatingip 500, security_group 150,
security_group_rule 1000; VLAN range ``foo:1:10``; VNIs 1:1000; ``dns_domain`` as DevStack's DNS
service sets it; and the tempest options that job sets. Results go, per module and with every skip's
reason, into docs/conformance.md (or ``--summary FILE``).

Exit status 0 only when no test failed (skips are reported with their reasons, not hidden).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import interop  # noqa: E402 - the sibling script: server, tempest install and configuration

REPO = interop.REPO
PLUGIN = "neutron-tempest-plugin==3.3.0"
SUITES = r"^(tempest\.api\.network|neutron_tempest_plugin\.api)\."
GATE_JOB = ("neutron-tempest-plugin-openvswitch (parents neutron-tempest-plugin-base-nested-switch, "
            "neutron-tempest-plugin-base), zuul.d/master_jobs.yaml of openstack/neutron-tempest-plugin at "
            "33b9aae4b0a6 (2026-07-09)")

# The job's NETWORK_API_EXTENSIONS (network_api_extensions_common + network_api_extensions_openvswitch):
# a test skipped for an extension outside this list is skipped by the gate too.
GATE_EXTENSIONS = frozenset("""
address-group address-scope agent allowed-address-pairs auto-allocated-topology availability_zone binding
default-subnetpools dns-domain-ports dns-integration dns-integration-domain-keywords empty-string-filtering
expose-port-forwarding-in-fip expose-l3-conntrack-helper ext-gw-mode external-net extra_dhcp_opt extraroute
extraroute-atomic filter-validation fip-port-details flavors floating-ip-port-forwarding
floating-ip-port-forwarding-detail floatingip-pools ip-substring-filtering l3-conntrack-helper l3-ext-ndp-proxy
l3-flavors l3-ha l3-ndp-proxy l3_agent_scheduler metering multi-provider net-mtu net-mtu-writable
network-ip-availability network_availability_zone network-segment-range pagination port-device-profile
port-resource-request port-resource-request-groups port-mac-address-regenerate port-trusted-vif port-security
port-security-groups-filtering project-id provider qos qos-fip quotas quota_details rbac-address-group
rbac-address-scope rbac-policies rbac-security-groups rbac-subnetpool router router_availability_zone
security-group security-groups-default-rules security-groups-normalized-cidr
security-groups-remote-address-group segment service-type sorting standard-attr-description
standard-attr-revisions standard-attr-segment standard-attr-tag standard-attr-timestamp stateful-security-group
subnet_allocation subnet-dns-publish-fixed-ip subnet-service-types subnetpool-prefix-ops
tag-ports-during-bulk-creation trunk trunk-details uplink-status-propagation uplink-status-propagation-updatable
dhcp_agent_scheduler local_ip qos-bw-minimum-ingress
""".split())

# neutrino up's settings, as the gate job's post-config sets Neutron's.
GATE_ENV = {
    "NEUTRINO_QUOTAS_ROUTER": "100",
    "NEUTRINO_QUOTAS_FLOATINGIP": "500",
    "NEUTRINO_QUOTAS_SECURITY_GROUP": "150",
    "NEUTRINO_QUOTAS_SECURITY_GROUP_RULE": "1000",
    "NEUTRINO_ML2_NETWORK_VLAN_RANGES": "foo:1:10",
    "NEUTRINO_ML2_VNI_RANGES": "1:1000",
    "NEUTRINO_ML2_DNS_DOMAIN": "openstackgate.local.",
    # The job enables dns-integration and dns-domain-ports: Neutron's dns_domain_ports driver.
    "NEUTRINO_ML2_EXTENSION_DRIVERS": '["dns"]',
}

# tempest.conf as the gate job's test-config sets it (beyond what interop.py writes).
GATE_TEMPEST = [
    "network-feature-enabled.available_features=ipv6_metadata",
    "neutron_plugin_options.provider_vlans=foo,",
    "neutron_plugin_options.agent_availability_zone=nova",
    "neutron_plugin_options.available_type_drivers=flat,vlan,local,vxlan",
    "neutron_plugin_options.provider_net_base_segm_id=1",
    "neutron_plugin_options.firewall_driver=openvswitch",
    "neutron_plugin_options.image_is_advanced=true",
    "neutron_plugin_options.snat_rules_apply_to_nested_networks=true",
]

# The default subnet pools DevStack makes when the subnet_allocation extension is there (its
# ``SUBNETPOOL_PREFIX_V4/V6`` and ``SUBNETPOOL_SIZE_V4/V6``): shared, is_default; the auto-allocated
# topology tests skip without them.
DEFAULT_POOLS: tuple[dict[str, Any], ...] = (
    {"name": "shared-default-subnetpool-v4", "prefixes": ["10.0.0.0/22"], "default_prefixlen": 26},
    {"name": "shared-default-subnetpool-v6", "prefixes": ["fd36:f2b7:b3c6::/56"], "default_prefixlen": 64},
)


def ensure_default_subnet_pools(api: httpx.Client) -> None:
    """DevStack's shared default subnet pools, unless default pools exist already."""
    pools = api.get("/subnetpools", params={"is_default": "True"}).raise_for_status().json()["subnetpools"]
    have = {p["ip_version"] for p in pools}
    for pool in DEFAULT_POOLS:
        version = 6 if ":" in pool["prefixes"][0] else 4
        if version not in have:
            api.post("/subnetpools", json={"subnetpool": {**pool, "shared": True, "is_default": True}}
                     ).raise_for_status()
            interop.log(f"created default subnet pool {pool['name']}")


def list_tests(tempest_venv: Path, workspace: Path, regex: str) -> list[str]:
    """Every test id the run selects (a class skipped in setUpClass reports one line, not its tests)."""
    out = subprocess.run([str(tempest_venv / "bin" / "stestr"), "list", regex], cwd=workspace,
                         capture_output=True, text=True, check=True).stdout
    return [line.strip() for line in out.splitlines() if line.strip() and not line.startswith(" ")]


def expand_class_skips(results: list[Outcome], test_ids: list[str]) -> list[Outcome]:
    """One outcome per test: a ``setUpClass (module.Class)`` skip or failure stands for each of the
    class's tests that reported nothing of its own, so the totals count tests as upstream's do."""
    reported = {r.id.split("[", 1)[0] for r in results}
    expanded: list[Outcome] = []
    for r in results:
        if not r.id.startswith("setUpClass ("):
            expanded.append(r)
            continue
        cls = r.id[r.id.index("(") + 1:r.id.rindex(")")]
        members = [t for t in test_ids if t.split("[", 1)[0].rsplit(".", 1)[0] == cls
                   and t.split("[", 1)[0] not in reported]
        if members:
            expanded.extend(Outcome(t, r.status, r.reason) for t in members)
        else:
            expanded.append(r)
    return expanded


# Runs in the tempest venv (which has python-subunit and testtools): one JSON line per test.
READ_SUBUNIT = r"""
import json, sys
import subunit, testtools

def emit(test):
    details = test.get("details") or {}
    reason = ""
    if "reason" in details:
        reason = details["reason"].as_text().strip()
    elif test["status"] == "fail" and "traceback" in details:
        lines = [l for l in details["traceback"].as_text().strip().splitlines() if l.strip()]
        reason = lines[-1].strip() if lines else ""
    print(json.dumps({"id": test["id"], "status": test["status"], "reason": reason[:400]}))

result = testtools.StreamToDict(emit)
result.startTestRun()
subunit.ByteStreamToStreamResult(sys.stdin.buffer, non_subunit_name="stdout").run(result)
result.stopTestRun()
"""


@dataclass(frozen=True, slots=True)
class Outcome:
    id: str
    status: str  # success | fail | skip | xfail | uxsuccess
    reason: str

    @property
    def module(self) -> str:
        """``tempest.api.network.test_ports`` for a test id or a ``setUpClass (module.Class)`` id."""
        name = self.id
        if "(" in name:
            name = name[name.index("(") + 1:name.rindex(")")] + ".x"
        name = name.split("[", 1)[0]
        return name.rsplit(".", 2)[0]


def read_results(tempest_venv: Path, workspace: Path) -> list[Outcome]:
    stream = subprocess.run([str(tempest_venv / "bin" / "stestr"), "last", "--subunit"], cwd=workspace,
                            capture_output=True, check=True).stdout
    parsed = subprocess.run([str(tempest_venv / "bin" / "python"), "-c", READ_SUBUNIT], input=stream,
                            capture_output=True, check=True).stdout.decode()
    return [Outcome(**json.loads(line)) for line in parsed.splitlines() if line.strip()]


def git_commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                           capture_output=True, text=True).stdout.strip()
    return out.stdout.strip() + (" (with uncommitted changes)" if dirty else "")


_EXTENSION_SKIP = re.compile(r"^(?:Skipped because network extension: (\S+) is not enabled|(\S+) extension not "
                             r"enabled\.?)$", re.IGNORECASE)


# Skips that are not about an extension, by a fragment of their reason.
_KNOWN_SKIPS = (
    ("compute service is not available", "no Nova: tempest's `[service_available] nova` is false, the tests "
                                         "need the hypervisor list"),
    ("create_shared_resources", "the gate job leaves `[neutron_plugin_options] create_shared_resources` false "
                                "too"),
    ("outdated", "the test skips itself on every release since Ussuri"),
    ("rule type is required", "**gap**: `/qos/rule-types` does not offer this rule type (Neutron's Open vSwitch "
                              "driver does)"),
    ("DHCP agent is required", "**gap**: no agent answers tempest's `agent_type` filter"),
    ("No default subnetpool", "**gap** in the runner: DevStack's default subnet pools are missing"),
    ("HA routers are not available", "**gap**: `l3-ha` is not listed, so no router can be made HA"),
    ("LP#1991965", "the test skips itself everywhere until that Neutron bug is done"),
)


def skip_verdict(reason: str) -> str:
    """Why a skip is, or is not, acceptable: an extension the gate job enables is a gap here."""
    m = _EXTENSION_SKIP.match(reason.strip())
    if m is None:
        return next((verdict for fragment, verdict in _KNOWN_SKIPS if fragment in reason), "to be explained")
    alias = (m.group(1) or m.group(2)).lower()
    if alias in GATE_EXTENSIONS:
        return f"**gap**: the gate job enables `{alias}`, Neutrino does not list it"
    return f"the gate job does not enable `{alias}` either"


def summary_markdown(results: list[Outcome], *, seconds: float, concurrency: int, load: str,
                     commit: str, started_at: dt.datetime) -> str:
    counts = Counter("passed" if r.status in ("success", "xfail") else
                     "skipped" if r.status == "skip" else "failed" for r in results)
    per_module: dict[str, Counter[str]] = defaultdict(Counter)
    for r in results:
        kind = "passed" if r.status in ("success", "xfail") else "skipped" if r.status == "skip" else "failed"
        per_module[r.module][kind] += 1
    out = [
        "# Conformance: the official network API suites",
        "",
        "`bash scripts/conformance.sh` installs tempest "
        f"{interop.TEMPEST_VERSION} and {PLUGIN.replace('==', ' ')} into `.venv-conformance`, starts a fresh "
        "`neutrino up` configured as neutron-tempest-plugin's gate configures Neutron for its Open vSwitch job "
        f"({GATE_JOB}: quotas router 100, floatingip 500, security_group 150, security_group_rule 1000; "
        "VLAN range `foo:1:10`; VNIs `1:1000`; `dns_domain` `openstackgate.local.`; the job's "
        "`[network-feature-enabled]` and `[neutron_plugin_options]`), runs `tempest.api.network` and "
        f"`neutron_tempest_plugin.api` with {concurrency} workers, and rewrites this page.",
        "",
        f"Last run: started {started_at:%Y-%m-%d %H:%M} UTC, commit {commit}, "
        f"{platform.node() or 'this machine'} ({os.cpu_count()} CPUs), load average at start {load}, "
        f"{seconds / 60:.0f} minutes.",
        "",
        "| | passed | failed | skipped | total |",
        "|---|---:|---:|---:|---:|",
        f"| all | {counts['passed']} | {counts['failed']} | {counts['skipped']} | {len(results)} |",
        "",
        "Neutron 29.0.0 on a machine like this one passes 942 of these tests (13 fail for want of agents, "
        "55 skip for OVN-only features), as measured for the project's issue on API breadth.",
        "",
        "## Per module",
        "",
        "| module | passed | failed | skipped |",
        "|---|---:|---:|---:|",
    ]
    for module in sorted(per_module):
        c = per_module[module]
        out.append(f"| `{module}` | {c['passed']} | {c['failed']} | {c['skipped']} |")
    failures = sorted((r for r in results if r.status in ("fail", "uxsuccess")), key=lambda r: r.id)
    out += ["", f"## Failures ({len(failures)})", ""]
    out += [f"- `{r.id.split('[', 1)[0]}`: {r.reason or r.status}" for r in failures] or ["None."]
    skips = sorted((r for r in results if r.status == "skip"), key=lambda r: (r.reason, r.id))
    by_reason: dict[str, list[str]] = defaultdict(list)
    for r in skips:
        by_reason[" ".join(r.reason.split()) or "(no reason given)"].append(r.id.split("[", 1)[0])
    out += ["", f"## Skips ({len(skips)}), by reason", ""]
    for reason, ids in sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        out.append(f"- {reason} ({len(ids)}; {skip_verdict(reason)}):")
        out += [f"  - `{test_id}`" for test_id in ids]
    if not skips:
        out.append("None.")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clouds", type=Path, help="clouds.yaml of a running Neutrino (default: a fresh neutrino up)")
    parser.add_argument("--cloud", default="neutrino-admin")
    parser.add_argument("--regex", default=SUITES, help="tests to run (tempest --regex)")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--tempest-venv", type=Path, default=REPO / ".venv-conformance")
    parser.add_argument("--work-dir", type=Path)
    parser.add_argument("--summary", type=Path, default=REPO / "docs" / "conformance.md",
                        help="where the summary is written")
    parser.add_argument("--timeout", type=float, default=3 * 3600.0, help="seconds tempest may run")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.OPTION=VALUE")
    args = parser.parse_args(argv)
    interop.unwind_on_signals()

    started = time.monotonic()
    started_at, commit = dt.datetime.now(dt.UTC), git_commit()  # what is measured: the tree at the start
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    tempest = interop.ensure_tempest(args.tempest_venv, (PLUGIN,))
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="neutrino-conformance-"))
    work.mkdir(parents=True, exist_ok=True)
    server = None if args.clouds else interop.Server(work / "state", env=GATE_ENV)
    failed = True
    try:
        clouds_yaml = args.clouds or server.start()  # type: ignore[union-attr]
        cloud = interop.admin_cloud(clouds_yaml, args.cloud)
        with interop.admin_session(cloud["auth"]) as api:
            network = interop.ensure_external_network(api)
            ensure_default_subnet_pools(api)
            extensions = [e["alias"] for e in api.get("/extensions").raise_for_status().json()["extensions"]]
        workspace = work / "tempest"
        shutil.rmtree(workspace, ignore_errors=True)
        subprocess.run([str(tempest), "init", "--workspace-path", str(work / "workspaces.yaml"), str(workspace)],
                       check=True, stdout=subprocess.DEVNULL)
        interop.write_tempest_conf(workspace / "etc" / "tempest.conf", auth=cloud["auth"],
                                   region=cloud.get("region_name", "RegionOne"), network=network,
                                   extensions=extensions, overrides=[*GATE_TEMPEST, *args.set])
        rc, totals = interop.run_tempest(tempest, workspace, ["--regex", args.regex], args.concurrency,
                                         args.timeout)
        results = expand_class_skips(read_results(args.tempest_venv, workspace),
                                     list_tests(args.tempest_venv, workspace, args.regex))
        args.summary.write_text(summary_markdown(results, seconds=time.monotonic() - started,
                                                 concurrency=args.concurrency, load=load, commit=commit,
                                                 started_at=started_at))
        failed = rc != 0 or any(r.status in ("fail", "uxsuccess") for r in results)
        interop.log(f"conformance: {len(results)} tests, tempest totals {totals}, summary in {args.summary}")
    finally:
        if server is not None:
            server.stop()
        interop.log(f"logs kept in {work}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
