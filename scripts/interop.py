"""Run the OpenStack interop (RefStack) network tests with tempest against a Neutrino all-in-one.

The interop guideline's tests *are* the compatibility contract OpenStack certifies clouds with, so
they run unchanged, configured the way a cloud operator configures tempest: identity admin from
clouds.yaml, dynamic credentials, the external network, the extension list the server reports.

Steps: make a tempest venv (pinned release), start ``neutrino up`` on a free port with its own
state directory and agent host (unless ``--clouds`` names a running one), make sure an external
network with a subnet exists, write tempest.conf in a fresh ``tempest init`` workspace, run the
listed tests, then stop the server and ``neutrino cleanup --host`` it, whatever happened.
Exit status 0 only if every listed test ran and passed (a skip is not a pass).
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO = Path(__file__).resolve().parent.parent
TEMPEST_VERSION = "47.0.0"
DEFAULT_LIST = REPO / "tests" / "conformance" / "interop-network-tests.txt"
NEUTRINO = Path(sys.executable).parent / "neutrino"
EXTERNAL_NAME = "public"
EXTERNAL_CIDR = "172.24.4.0/24"


def log(msg: str) -> None:
    print(f"interop: {msg}", flush=True)


# ---- interruption -----------------------------------------------------------------------------------------

# Signals that end a run: each unwinds like Ctrl-C, so the server is still stopped and cleaned up.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _interrupted(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def unwind_on_signals() -> None:
    """SIGTERM (CI timeouts, kill) and SIGHUP (a closed terminal) raise KeyboardInterrupt as Ctrl-C does."""
    for signum in STOP_SIGNALS[1:]:
        signal.signal(signum, _interrupted)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Ignore the stop signals for the duration (clean-up must finish once it has begun)."""
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


# ---- tempest installation ---------------------------------------------------------------------------------


def ensure_tempest(venv: Path, plugins: tuple[str, ...] = ()) -> Path:
    """A venv holding exactly tempest==TEMPEST_VERSION and the pinned ``plugins`` (``name==version``),
    created or fixed when it does not."""
    tempest = venv / "bin" / "tempest"
    wanted = (f"tempest=={TEMPEST_VERSION}", *plugins)
    if tempest.exists():
        frozen = subprocess.run([str(venv / "bin" / "pip"), "freeze", "--disable-pip-version-check"],
                                capture_output=True, text=True).stdout.lower().splitlines()
        if all(req.lower() in frozen for req in wanted):
            return tempest
    log(f"installing {' '.join(wanted)} into {venv}")
    if not (venv / "bin" / "python").exists():
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", *wanted], check=True)
    return tempest


# ---- the server under test ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``neutrino up`` in its own state directory, with an agent host name no one else uses."""

    def __init__(self, state_dir: Path, env: dict[str, str] | None = None) -> None:
        self.state_dir = state_dir
        self.env = env or {}  # further NEUTRINO_* settings (the conformance run's gate configuration)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.host = "interop" + uuid.uuid4().hex[:8]
        self.log_path = state_dir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> Path:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # Its own demo external bridge and range too: the default br-ex / 172.24.4.0/24 may belong
        # to a `make up` running on this machine, or to another interop run.
        third = int(self.host[-4:], 16) % 250 + 1
        env = dict(os.environ, NEUTRINO_AGENT_HOST=self.host,
                   NEUTRINO_ALL_IN_ONE_PUBLIC_BRIDGE="brx-" + self.host[-8:],
                   NEUTRINO_ALL_IN_ONE_FLOATING_RANGE=f"172.31.{third}.0/24",
                   NEUTRINO_ALL_IN_ONE_PUBLIC_NETWORK_GATEWAY=f"172.31.{third}.1", **self.env)
        with open(self.log_path, "ab") as out:
            self.process = subprocess.Popen(
                [str(NEUTRINO), "up", "--state-dir", str(self.state_dir), "--port", str(self.port)],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        clouds = self.state_dir / "clouds.yaml"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"neutrino up exited with {self.process.returncode}; see {self.log_path}")
            try:
                if clouds.exists() and httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    log(f"neutrino up at {self.url} (agent host {self.host}, state {self.state_dir})")
                    return clouds
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"neutrino up not healthy after {timeout}s; see {self.log_path}")

    def stop(self) -> None:
        """SIGTERM (then SIGKILL if it hangs) the server, and remove the kernel objects of its host.

        A second Ctrl-C or SIGTERM while this runs is ignored: interrupting it would leave the
        server's namespaces, bridge and root-namespace ``neutrino-fw`` tables behind."""
        with signals_deferred():
            self._stop()

    def _stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        subprocess.run([str(NEUTRINO), "cleanup", "--host", self.host, "--state-dir", str(self.state_dir)],
                       stdout=subprocess.DEVNULL, check=False)
        self._stop_strays()

    def _stop_strays(self) -> None:
        """SIGTERM whatever still runs with this server's state directory on its command line: a
        helper (a metadata proxy, say) left inside a namespace that is no longer bound under
        /run/netns is out of ``neutrino cleanup``'s sight, and would outlive the run. The state
        directory is this run's own temporary directory, so nothing else names it."""
        marker = re.compile(re.escape(str(self.state_dir.resolve())) + r"(/|\s|$)")
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker.search(cmdline):
                log(f"stopping stray process {entry.name}: {cmdline[:120]}")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(entry.name), signal.SIGTERM)


# ---- the cloud as an operator prepares it -------------------------------------------------------------------


def admin_cloud(clouds_yaml: Path, name: str) -> dict[str, Any]:
    cloud = (yaml.safe_load(clouds_yaml.read_text()).get("clouds") or {}).get(name)
    if not cloud:
        raise SystemExit(f"no cloud {name!r} in {clouds_yaml}")
    return cloud


def admin_session(auth: dict[str, Any]) -> httpx.Client:
    """An httpx client on the catalog's network endpoint, holding the admin's token."""
    body = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": auth["username"], "password": auth["password"],
            "domain": {"name": auth.get("user_domain_name", "Default")}}}},
        "scope": {"project": {"name": auth["project_name"],
                              "domain": {"name": auth.get("project_domain_name", "Default")}}}}}
    resp = httpx.post(auth["auth_url"].rstrip("/") + "/auth/tokens", json=body, timeout=30)
    resp.raise_for_status()
    catalog = resp.json()["token"]["catalog"]
    network = next(s for s in catalog if s["type"] == "network")
    url = next(e["url"] for e in network["endpoints"] if e["interface"] == "public").rstrip("/")
    return httpx.Client(base_url=url + "/v2.0", headers={"X-Auth-Token": resp.headers["x-subject-token"]},
                        timeout=30)


def ensure_external_network(api: httpx.Client) -> dict[str, Any]:
    """The external network tempest uses: ``public`` if there is one (``neutrino up`` may make it),
    else any external network; created (shared as external to every project) when there is none."""
    nets = api.get("/networks", params={"router:external": "True"}).raise_for_status().json()["networks"]
    net = next((n for n in nets if n["name"] == EXTERNAL_NAME), nets[0] if nets else None)
    if net is None:
        net = api.post("/networks", json={"network": {"name": EXTERNAL_NAME, "router:external": True}}
                       ).raise_for_status().json()["network"]
        log(f"created external network {net['id']}")
    subnets = api.get("/subnets", params={"network_id": net["id"]}).raise_for_status().json()["subnets"]
    if not any(s["ip_version"] == 4 for s in subnets):
        api.post("/subnets", json={"subnet": {"name": EXTERNAL_NAME + "-subnet", "network_id": net["id"],
                                              "ip_version": 4, "cidr": EXTERNAL_CIDR,
                                              "enable_dhcp": False}}).raise_for_status()
        log(f"created subnet {EXTERNAL_CIDR} on external network {net['name']}")
    return net


def write_tempest_conf(path: Path, *, auth: dict[str, Any], region: str, network: dict[str, Any],
                       extensions: list[str], overrides: list[str]) -> None:
    """Fill the ``tempest init`` config (which already holds the workspace's log and lock paths)."""
    conf = configparser.ConfigParser(interpolation=None)
    conf.optionxform = str  # type: ignore[assignment,method-assign]
    conf.read(path)
    values: dict[str, dict[str, str]] = {
        "auth": {
            "use_dynamic_credentials": "true",
            "admin_username": auth["username"],
            "admin_password": auth["password"],
            "admin_project_name": auth["project_name"],
            "admin_domain_name": auth.get("user_domain_name", "Default"),
            "create_isolated_networks": "false",
        },
        "identity": {
            "uri_v3": auth["auth_url"].rstrip("/"),
            "auth_version": "v3",
            "region": region,
        },
        "identity-feature-enabled": {"api_v3": "true"},
        "network": {
            "public_network_id": network["id"],
            "floating_network_name": network["name"],
            "region": region,
            # Ports of a one-host cloud go ACTIVE in seconds; tempest's default 300 s per wait
            # would only make a broken run take half an hour.
            "build_timeout": "60",
        },
        "network-feature-enabled": {
            "api_extensions": ",".join(sorted(extensions)),
            "ipv6": "true",
            "ipv6_subnet_attributes": "true",
        },
        "service_available": {
            "neutron": "true", "nova": "false", "glance": "false", "cinder": "false", "swift": "false",
        },
        "validation": {"run_validation": "false"},
    }
    for override in overrides:
        key, _, value = override.partition("=")
        section, _, option = key.partition(".")
        values.setdefault(section, {})[option] = value
    for section, options in values.items():
        if not conf.has_section(section):
            conf.add_section(section)
        for key, value in options.items():
            conf.set(section, key, value)
    with open(path, "w") as fh:
        conf.write(fh)
    os.chmod(path, 0o600)  # it holds the admin password


# ---- running tempest ----------------------------------------------------------------------------------------


def listed_tests(path: Path) -> int:
    """How many tests the include list names (one regex per line; ``#`` starts a comment)."""
    return sum(1 for line in path.read_text().splitlines() if line.split("#", 1)[0].strip())


def run_tempest(tempest: Path, workspace: Path, selection: list[str], concurrency: int,
                timeout: float) -> tuple[int, dict[str, int]]:
    """``tempest run`` in the workspace with ``selection`` (e.g. ``["--include-list", FILE]`` or
    ``["--regex", RE]``), echoing its output; returns exit status and its totals."""
    env = dict(os.environ, TEMPEST_CONFIG_DIR=str(workspace / "etc"), TEMPEST_CONFIG="tempest.conf",
               OS_TEST_TIMEOUT="300")
    cmd = [str(tempest), "run", *selection, "--concurrency", str(concurrency)]
    log(" ".join(cmd))
    # Its own process group: stestr's workers are killed with it when the run is interrupted or hangs.
    proc = subprocess.Popen(cmd, cwd=workspace, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)

    def kill_group() -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    watchdog = threading.Timer(timeout, kill_group)  # a hung run must still end (and be cleaned up)
    watchdog.start()
    lines: list[str] = []
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            sys.stdout.write(line)
            lines.append(line)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            kill_group()
    rc = proc.wait()
    totals: dict[str, int] = {}
    text = "".join(lines)
    for key, pattern in (("ran", r"^Ran: (\d+) tests"), ("passed", r"^ - Passed: (\d+)"),
                         ("skipped", r"^ - Skipped: (\d+)"), ("failed", r"^ - Failed: (\d+)")):
        found = re.findall(pattern, text, re.MULTILINE)
        totals[key] = int(found[-1]) if found else 0
    return rc, totals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clouds", type=Path,
                        help="clouds.yaml of a running Neutrino to test (default: start a fresh `neutrino up`)")
    parser.add_argument("--cloud", default="neutrino-admin", help="the admin cloud in that clouds.yaml")
    parser.add_argument("--include-list", type=Path, default=DEFAULT_LIST, help="tests to run (tempest regexes)")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--tempest-venv", type=Path, default=REPO / ".venv-tempest")
    parser.add_argument("--work-dir", type=Path, help="where state, workspace and logs go (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir even when every test passed")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds tempest may run")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.OPTION=VALUE",
                        help="a further tempest.conf setting (repeatable)")
    args = parser.parse_args(argv)
    unwind_on_signals()

    started = time.monotonic()
    tempest = ensure_tempest(args.tempest_venv)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="neutrino-interop-"))
    work.mkdir(parents=True, exist_ok=True)
    server = None if args.clouds else Server(work / "state")
    ok = False
    try:
        clouds_yaml = args.clouds or server.start()  # type: ignore[union-attr]
        cloud = admin_cloud(clouds_yaml, args.cloud)
        with admin_session(cloud["auth"]) as api:
            network = ensure_external_network(api)
            extensions = [e["alias"] for e in api.get("/extensions").raise_for_status().json()["extensions"]]
        workspace = work / "tempest"
        shutil.rmtree(workspace, ignore_errors=True)  # `tempest init` wants a new directory
        subprocess.run([str(tempest), "init", "--workspace-path", str(work / "workspaces.yaml"), str(workspace)],
                       check=True, stdout=subprocess.DEVNULL)
        write_tempest_conf(workspace / "etc" / "tempest.conf", auth=cloud["auth"],
                           region=cloud.get("region_name", "RegionOne"), network=network, extensions=extensions,
                           overrides=args.set)
        expected = listed_tests(args.include_list)
        rc, totals = run_tempest(tempest, workspace, ["--include-list", str(args.include_list.resolve())],
                                 args.concurrency, args.timeout)
        ok = rc == 0 and totals["failed"] == 0 and totals["passed"] == expected
        log(f"ran={totals['ran']} passed={totals['passed']} skipped={totals['skipped']} "
            f"failed={totals['failed']} expected={expected} tempest_rc={rc} "
            f"seconds={time.monotonic() - started:.0f} result={'PASS' if ok else 'FAIL'}")
    finally:
        if server is not None:
            server.stop()
        if ok and not args.keep and not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"logs kept in {work} (tempest: {work / 'tempest' / 'logs' / 'tempest.log'})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
