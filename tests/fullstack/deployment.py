"""A whole Neutrino deployment on one machine: server, RabbitMQ, PostgreSQL, several hosts, instances.

What runs (architecture.md section 6):

* the server, ``neutrino up`` as users start it, on a throw-away PostgreSQL database and a bus URL
  of the run's own (a vhost on the shared broker, or a private broker node); its in-process agent
  has no roles (every host's wiring is done by that host's agent) and a host name of the run's own;
* one ``neutrino agent --roles l2`` process per simulated host, running in the root namespace (so it
  reaches RabbitMQ on loopback) with ``--netns <host namespace> --tunnel-ip <underlay address>``:
  all its kernel reads and writes happen inside the host's namespace;
* instances made with ``neutrino instance create --host H --host-netns <host namespace>``, exactly
  as a user (and Nova) would, so the tap appears in the host namespace and the agent wires it.

Heartbeats every second and ``agent_down_time`` 6 s keep liveness tests short. ``teardown`` stops
every process, runs ``neutrino cleanup --host`` for every host as a safety net, and deletes every
namespace made; the database and vhost are dropped by ``running_deployment``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.fullstack.broker import SharedBrokerVhost
from tests.fullstack.networking_api import NetworkingApi
from tests.fullstack.runs import die_with_parent, reap_abandoned_runs, register, remember, unregister
from tests.fullstack.underlay import SimulatedHost, Underlay, delete_namespace, in_netns, ip, namespace_exists
from tests.support.databases import temporary_database
from tests.support.live_server import LiveServer, free_port
from tests.support.tenants import IdentityAdmin, Persona, password_auth

PHYSNET = "physnet1"
REPORT_INTERVAL = 1.0
AGENT_DOWN_TIME = 6.0
RESYNC_INTERVAL = 10.0
RPC_TIMEOUT = 10.0


def neutrino_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "neutrino.cli.main", *args]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def agent_time(text: str | None) -> dt.datetime | None:
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S") if text else None


# ---- processes ----------------------------------------------------------------------------------------


@dataclass
class HostAgent:
    """The ``neutrino agent`` process of one simulated host; may be stopped, killed and started again."""

    host: SimulatedHost
    config: Path
    log_path: Path
    bridge_mappings: tuple[str, ...] = ()
    roles: str = "l2"
    process: subprocess.Popen[bytes] | None = None
    started_at: dt.datetime | None = None

    def command(self) -> list[str]:
        mappings = [arg for mapping in self.bridge_mappings for arg in ("--bridge-mapping", mapping)]
        # Each host's qdhcp- namespaces carry its name: two hosts may serve one network on this kernel.
        return neutrino_command("agent", "--config", str(self.config), "--host", self.host.name, "--roles", self.roles,
                                "--netns", self.host.netns, "--tunnel-ip", self.host.tunnel_ip,
                                "--namespace-prefix", f"{self.host.name}-", *mappings)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        assert not self.running, f"agent of {self.host.name} is already running"
        # Agent times are whole seconds in the API; anything at or after this second is this start.
        self.started_at = _utc_now().replace(microsecond=0)
        with open(self.log_path, "ab") as log:
            log.write(f"---- start {self.started_at.isoformat()} ----\n".encode())
            log.flush()
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True, preexec_fn=die_with_parent)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM (the agent leaves the data plane as it is), SIGKILL if it does not go in time."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """A crash: SIGKILL, nothing gets to run."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            self.process.wait()
            self.process = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass(frozen=True, slots=True)
class Instance:
    """A simulated VM made with ``neutrino instance create``."""

    name: str
    namespace: str
    host: SimulatedHost
    port_id: str
    network_id: str
    ip_address: str
    mac_address: str
    cloud: str


@dataclass(frozen=True, slots=True)
class PingResult:
    transmitted: int
    received: int
    output: str

    @property
    def lost(self) -> int:
        return self.transmitted - self.received


def parse_ping(output: str) -> PingResult:
    for line in output.splitlines():
        if "packets transmitted" in line:
            parts = [p.strip() for p in line.split(",")]
            transmitted = int(parts[0].split()[0])
            received = int(parts[1].split()[0])
            return PingResult(transmitted, received, output)
    return PingResult(0, 0, output)


def no_reply(netns: str, address: str, *, tries: int = 3) -> PingResult:
    """Ping ``address`` from ``netns`` and prove that every probe was sent and none was answered.

    ping exits 1 only when it sent its probes and got no reply; 2 (or ``ip netns exec``'s 255) means
    it could not try at all: no namespace, "Network is unreachable", no such address. Those would
    otherwise read as "0 received" and let an isolation check pass without a packet on the wire.
    """
    ran = in_netns(netns, "ping", "-n", "-c", str(tries), "-W", "1", "-i", "0.3", address, timeout=tries * 2 + 10)
    result = parse_ping(ran.stdout + ran.stderr)
    assert ran.returncode == 1 and result.transmitted == tries and result.received == 0, (
        f"ping {address} from {netns} did not show 'sent {tries}, no reply' "
        f"(exit {ran.returncode}, {result.transmitted} sent, {result.received} received):\n{result.output}")
    return result


# ---- the deployment -----------------------------------------------------------------------------------


@dataclass
class Deployment:
    run_id: str
    workdir: Path
    bus_url: str
    database_url: str
    # More server configuration (TOML), e.g. quotas for benchmarks.
    extra_server_config: str = ""
    agent_log_level: str = "INFO"
    extra_agent_config: str = ""  # more [agent] lines for every host of the deployment
    underlay: Underlay = field(init=False)
    server: LiveServer | None = None
    server_port: int = 0
    agents: dict[str, HostAgent] = field(default_factory=dict)
    instances: dict[str, Instance] = field(default_factory=dict)
    personas: dict[str, Persona] = field(default_factory=dict)
    clouds_yaml: Path = field(init=False)
    _apis: dict[str, NetworkingApi] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.underlay = Underlay(self.run_id)
        # The instance simulator's state directory holds its records and the clouds.yaml it reads
        # (the server's, plus the test's personas); the server has a state directory of its own.
        self.instance_state_dir.mkdir(parents=True, exist_ok=True)
        self.clouds_yaml = self.instance_state_dir / "clouds.yaml"

    # -- names --

    @property
    def server_host(self) -> str:
        return f"ft-{self.run_id}-server"

    @property
    def server_state_dir(self) -> Path:
        return self.workdir / "server"

    @property
    def instance_state_dir(self) -> Path:
        return self.workdir / "compute"

    def unique(self, label: str) -> str:
        """A name no other run on this machine uses (instance names become global namespace names)."""
        return f"{label}-{self.run_id}"

    def host(self, label: str) -> SimulatedHost:
        return self.underlay.hosts[label]

    # -- bring-up --

    def _server_config(self) -> str:
        return (f'[bus]\nurl = "{self.bus_url}"\nrpc_timeout_seconds = {RPC_TIMEOUT}\n'
                f'[agent]\nhost = "{self.server_host}"\nroles = []\n'
                f"report_interval_seconds = {REPORT_INTERVAL}\nagent_down_time_seconds = {AGENT_DOWN_TIME}\n"
                "[all_in_one]\npublic_network = false\n"
                + self.extra_server_config)

    def _agent_config(self) -> Path:
        path = self.workdir / "agent.toml"
        # The agents' files (dnsmasq) live where `neutrino cleanup` of teardown looks: the compute state.
        path.write_text(f'[server]\nlog_level = "{self.agent_log_level}"\nstate_dir = "{self.instance_state_dir}"\n'
                        f'[bus]\nurl = "{self.bus_url}"\nrpc_timeout_seconds = {RPC_TIMEOUT}\n'
                        f"[agent]\nreport_interval_seconds = {REPORT_INTERVAL}\n"
                        f"resync_interval_seconds = {RESYNC_INTERVAL}\n{self.extra_agent_config}"
                        # Metering agents measure every second and report every two (tests wait for reports).
                        "[metering]\nmeasure_interval_seconds = 1\nreport_interval_seconds = 2\n")
        return path

    def start(self, host_labels: Sequence[str]) -> None:
        self.underlay.build()
        self.server_port = free_port()
        self.start_server()
        self._write_clouds_yaml()
        config = self._agent_config()
        for label in host_labels:
            host = self.underlay.add_host(label)
            agent = HostAgent(host, config, self.workdir / f"agent-{label}.log",
                              bridge_mappings=(f"{PHYSNET}:{host.physical_interface}",))
            self.agents[label] = agent
            agent.start()
        for label in host_labels:  # started together, waited for together
            self.wait_agent_started(label)

    def add_host(self, label: str, *, roles: str = "l2") -> HostAgent:
        """One more simulated host with its agent running (reported alive) on return."""
        host = self.underlay.add_host(label)
        agent = HostAgent(host, self._agent_config(), self.workdir / f"agent-{label}.log",
                          bridge_mappings=(f"{PHYSNET}:{host.physical_interface}",), roles=roles)
        self.agents[label] = agent
        agent.start()
        self.wait_agent_started(label)
        return agent

    def start_server(self, timeout: float = 90) -> None:
        """``neutrino up`` (as ``tests.support.live_server`` starts it, but dying with this process)."""
        self.server_state_dir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "server.toml"
        config.write_text(f'[database]\nurl = "{self.database_url}"\n' + self._server_config())
        log_path = self.workdir / "server.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                neutrino_command("up", "--config", str(config), "--state-dir", str(self.server_state_dir),
                                 "--port", str(self.server_port)),
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent)
        server = LiveServer(f"http://127.0.0.1:{self.server_port}", self.server_state_dir,
                            self.server_state_dir / "clouds.yaml",
                            process, log_path, self.server_host)
        self.server = server
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"neutrino up exited with {process.returncode}:\n{server.log_tail()}")
            try:
                if httpx.get(server.url + "/healthz", timeout=1).status_code == 200 and server.clouds_yaml.exists():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"neutrino up did not become healthy in {timeout}s:\n{server.log_tail()}")

    def restart_server(self) -> None:
        self.stop_server()
        self.start_server()

    def stop_server(self) -> None:
        if self.server is not None:
            self.server.stop()

    def add_persona(self, cloud: str, persona: Persona) -> None:
        """Another project's member, usable as ``--os-cloud CLOUD`` and through ``api(CLOUD)``."""
        self.personas[cloud] = persona
        self._write_clouds_yaml()

    def _write_clouds_yaml(self) -> None:
        assert self.server is not None
        config = yaml.safe_load(self.server.clouds_yaml.read_text())
        auth_url = config["clouds"]["neutrino-admin"]["auth"]["auth_url"]
        for cloud, p in self.personas.items():
            config["clouds"][cloud] = {
                "auth": {"auth_url": auth_url, "username": p.username, "password": p.password,
                         "project_name": p.project_name, "user_domain_name": "Default",
                         "project_domain_name": "Default"},
                "region_name": "RegionOne", "identity_api_version": 3, "interface": "public"}
        self.clouds_yaml.write_text(yaml.safe_dump(config))

    def identity_admin(self) -> IdentityAdmin:
        assert self.server is not None
        return IdentityAdmin(self.server)

    # -- the API --

    def api(self, cloud: str = "neutrino-admin") -> NetworkingApi:
        if cloud not in self._apis:
            auth = yaml.safe_load(self.clouds_yaml.read_text())["clouds"][cloud]["auth"]
            server = self.server
            assert server is not None

            def login() -> str:
                return password_auth(server, auth["username"], auth["password"], auth["project_name"])[0]

            self._apis[cloud] = NetworkingApi(server.url, login)
        return self._apis[cloud]

    def wait_agent_started(self, label: str, timeout: float = 60) -> dict[str, Any]:
        """Until the host's agent has reported (alive) since its last start."""
        agent = self.agents[label]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not agent.running:
                raise AssertionError(f"agent of {label} exited:\n{agent.log_tail()}")
            for row in self.api().agents(host=agent.host.name):
                started = agent_time(row.get("started_at"))
                if row["alive"] and started is not None and agent.started_at and started >= agent.started_at:
                    return row
            time.sleep(0.1)
        raise AssertionError(f"agent of {label} did not report within {timeout}s:\n{agent.log_tail()}")

    def wait_agent_alive_since(self, label: str, since: dt.datetime, timeout: float = 60) -> dict[str, Any]:
        """Until the host's agent has sent a heartbeat at or after ``since`` (UTC, naive)."""
        host = self.host(label).name
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for row in self.api().agents(host=host):
                beat = agent_time(row.get("heartbeat_timestamp"))
                if row["alive"] and beat is not None and beat >= since.replace(microsecond=0):
                    return row
            time.sleep(0.2)
        raise AssertionError(f"agent of {label} sent no heartbeat since {since} within {timeout}s:\n"
                             f"{self.agents[label].log_tail()}")

    # -- the neutrino command --

    def neutrino(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_") and k != "NEUTRINO_COMPUTE_CLOUD"}
        env["OS_CLIENT_CONFIG_FILE"] = str(self.clouds_yaml)
        result = subprocess.run(neutrino_command(*args), capture_output=True, text=True, timeout=timeout,
                                env=env, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"neutrino {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def instance_command(self, *args: str) -> None:
        """``neutrino instance ARGS``, run in this process when the environment allows it.

        The command is the same code either way (its argument parser and entry point); in-process
        it skips a Python start and the openstacksdk import (seconds each on a busy 2-core machine).
        It finds the clouds in its state directory; an ``OS_*`` variable in this process's
        environment would take precedence there, so then it runs as a separate process instead.
        """
        if any(k.startswith("OS_") or k == "NEUTRINO_COMPUTE_CLOUD" for k in os.environ):
            self.neutrino("instance", *args)
            return
        from neutrino.cli.main import build_parser

        parsed = build_parser().parse_args(["instance", *args])
        status = int(parsed.func(parsed))
        if status != 0:
            raise AssertionError(f"neutrino instance {' '.join(args)} failed ({status}); see the captured stderr")

    # -- instances --

    def create_instance(self, label: str, network_id: str, host_label: str, *, cloud: str = "neutrino-demo",
                        fixed_ip: str | None = None, wait_active: bool = True, dhcp: bool = False,
                        security_groups: Sequence[str] = ()) -> Instance:
        """``dhcp``: the instance asks a DHCP agent for its address; otherwise it is static (``--static``).
        ``security_groups``: ``--security-group`` ids (none: the project's default group)."""
        name = self.unique(label)
        host = self.host(host_label)
        groups = [arg for group in security_groups for arg in ("--security-group", group)]
        self.instance_command("create", name, "--state-dir", str(self.instance_state_dir), "--os-cloud", cloud,
                              "--network", network_id, "--host", host.name, "--host-netns", host.netns,
                              *(["--fixed-ip", fixed_ip] if fixed_ip else []), "--dhcp" if dhcp else "--static",
                              *groups)
        record = json.loads((self.instance_state_dir / "instances" / f"{name}.json").read_text())
        port = self.api().port(record["port_id"])
        assert port is not None, f"port of {name} vanished"
        instance = Instance(name, record["namespace"], host, port["id"], network_id,
                            port["fixed_ips"][0]["ip_address"], port["mac_address"], cloud)
        self.instances[name] = instance
        if wait_active:
            self.api().wait_port_status(instance.port_id, "ACTIVE")
        return instance

    def delete_instance(self, instance: Instance) -> None:
        self.instance_command("delete", instance.name, "--state-dir", str(self.instance_state_dir),
                              "--os-cloud", instance.cloud)
        self.instances.pop(instance.name, None)

    def forget_instance(self, instance: Instance) -> None:
        """Remove an instance without ``instance delete`` (tear-down: fast, and works whatever state it is in).

        What the command would do, directly: the namespace (with whatever runs inside), the tap, the
        port, the record.
        """
        delete_namespace(instance.namespace)
        ip("-n", instance.host.netns, "link", "del", f"tap{instance.port_id[:11]}", check=False)
        with contextlib.suppress(Exception):
            self.api().delete_port(instance.port_id)
        record = self.instance_state_dir / "instances" / f"{instance.name}.json"
        record.unlink(missing_ok=True)
        self.instances.pop(instance.name, None)

    def ping(self, source: Instance, address: str, *, count: int = 1, deadline: float = 10,
             interval: float | None = None, size: int | None = None) -> PingResult:
        """``ping`` from inside an instance until ``count`` replies arrive (or the deadline passes).

        While the first reply is slow (ARP, FDB learning) ping keeps probing each second, so the
        reply to an earlier probe can arrive with a later one: ``received`` counts at most ``count``.
        """
        args = ["ping", "-n", "-c", str(count), "-w", str(int(deadline))]
        if interval is not None:
            args += ["-i", str(interval)]
        if size is not None:
            args += ["-s", str(size)]
        ran = in_netns(source.namespace, *args, address, timeout=deadline + 10)
        result = parse_ping(ran.stdout + ran.stderr)
        return replace(result, received=min(result.received, count))

    def unreachable(self, source: Instance, address: str, *, tries: int = 3) -> PingResult:
        """Ping a few times, each waiting a second; for asserting that nothing answers.

        Fails unless the probes really left (see ``no_reply``): a missing namespace or a missing
        route must never pass for isolation.
        """
        return no_reply(source.namespace, address, tries=tries)

    # -- tear-down --

    def cleanup_host(self, label: str) -> subprocess.CompletedProcess[str]:
        return self.neutrino("cleanup", "--host", self.host(label).name, "--state-dir", str(self.instance_state_dir),
                             check=False)

    def teardown(self) -> None:
        """Stop everything and remove every kernel object of the run; each step runs even if one fails."""
        failures: list[str] = []

        def step(what: str, action: Any, *args: Any) -> None:
            try:
                action(*args)
            except Exception as exc:  # noqa: BLE001 - keep tearing down; report at the end
                failures.append(f"{what}: {exc}")

        with ThreadPoolExecutor(max_workers=8) as pool:  # each waits for its process to exit
            for agent in self.agents.values():
                pool.submit(step, f"stop agent {agent.host.name}", agent.stop)
            pool.submit(step, "stop server", self.stop_server)
        for api in self._apis.values():
            step("close api", api.close)

        def cleanup(label: str) -> None:
            cleaned = self.cleanup_host(label)
            if cleaned.returncode != 0:
                raise RuntimeError(cleaned.stderr.strip())

        with ThreadPoolExecutor(max_workers=4) as pool:
            for label in list(self.underlay.hosts):
                pool.submit(step, f"neutrino cleanup --host {self.host(label).name}", cleanup, label)
        for instance in self.instances.values():
            step(f"namespace of {instance.name}", delete_namespace, instance.namespace)
        step("underlay", self.underlay.destroy)
        if failures:
            raise RuntimeError("fullstack teardown was incomplete:\n" + "\n".join(failures))


@contextmanager
def running_deployment(workdir: Path, *, host_labels: Sequence[str] = ("h1", "h2"),
                       bus_url: str | None = None, extra_server_config: str = "",
                       agent_log_level: str = "INFO", extra_agent_config: str = "") -> Iterator[Deployment]:
    """A deployment on a fresh PostgreSQL database and (unless ``bus_url``) a fresh vhost; all removed after."""
    run_id = uuid.uuid4().hex[:6]
    workdir.mkdir(parents=True, exist_ok=True)
    reap_abandoned_runs()
    with ExitStack() as stack:
        register(run_id)
        stack.callback(unregister, run_id)
        if bus_url is None:
            vhost = SharedBrokerVhost()
            stack.callback(vhost.delete)
            remember(run_id, "vhost", vhost.vhost)
            vhost.create()
            bus_url = vhost.url
        database_url = stack.enter_context(temporary_database("postgresql", str(workdir)))
        remember(run_id, "database", database_url.rsplit("/", 1)[1])
        deployment = Deployment(run_id, workdir, bus_url, database_url, extra_server_config, agent_log_level,
                                extra_agent_config)
        stack.callback(deployment.teardown)
        deployment.start(host_labels)
        yield deployment


def leftovers_of(host: SimulatedHost) -> list[str]:
    """Kernel objects still marked ``neutrino:<host>`` anywhere (root, host and instance namespaces)."""
    alias = f"neutrino:{host.name}"
    found = []
    names = [None, *sorted(os.listdir("/run/netns"))] if os.path.isdir("/run/netns") else [None]
    for netns in names:
        if netns is not None and not namespace_exists(netns):
            continue
        cmd = ["ip", *(["-n", netns] if netns else []), "-d", "-j", "link", "show"]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False)
        if result.returncode != 0:
            continue
        for link in json.loads(result.stdout or "[]"):
            if link.get("ifalias") == alias:
                found.append(f"{link['ifname']} in {netns or 'the root namespace'}")
    return found
