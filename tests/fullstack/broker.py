"""RabbitMQ for fullstack runs: a private vhost on the machine's broker, or a private broker node.

The machine's shared broker is never restarted or reconfigured: a run only adds a vhost with a
unique name (deleted afterwards, with everything in it). A test that must restart the broker starts
a node of its own instead (``PrivateRabbitNode``: its own node name, ports, database and log
directories under a temporary directory, the machine's RabbitMQ installation), which it may stop and
start at will and which is stopped and deleted at the end.

Both speak to the broker with ``rabbitmqctl`` (the management plugin is not enabled here). The
``guest`` user may only connect from loopback, which is where every process of a run connects from.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.fullstack.runs import register, remember, unregister

SHARED_BROKER_HOST = "127.0.0.1"
SHARED_BROKER_PORT = 5672


def rabbitmqctl(*args: str, node: str | None = None, timeout: float = 60, check: bool = True) -> str:
    command = ["rabbitmqctl", *(["-n", node] if node else []), "-q", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def broker_available() -> str | None:
    """Why the shared broker cannot be used (None when it can)."""
    if shutil.which("rabbitmqctl") is None:
        return "rabbitmqctl is not installed"
    if not port_open(SHARED_BROKER_HOST, SHARED_BROKER_PORT):
        return f"RabbitMQ is not listening on {SHARED_BROKER_HOST}:{SHARED_BROKER_PORT}"
    return None


@dataclass
class SharedBrokerVhost:
    """A vhost of our own on the shared broker; ``url`` is what ``[bus] url`` takes."""

    vhost: str = field(default_factory=lambda: f"neutrino-ft-{uuid.uuid4().hex[:12]}")
    created: bool = False

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{SHARED_BROKER_HOST}:{SHARED_BROKER_PORT}/{self.vhost}"

    def create(self) -> None:
        rabbitmqctl("add_vhost", self.vhost)
        self.created = True
        rabbitmqctl("set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*")

    def delete(self) -> None:
        if self.created:
            rabbitmqctl("delete_vhost", self.vhost, check=False)
            self.created = False


@contextlib.contextmanager
def shared_broker_vhost() -> Iterator[str]:
    """A vhost of our own on the machine's RabbitMQ for the ``with`` block (its ``[bus] url``).

    Skips the calling test, saying why, when the machine has no broker to offer.
    """
    import pytest

    why_not = broker_available()
    if why_not:
        pytest.skip(f"needs the machine's RabbitMQ: {why_not}")
    vhost = SharedBrokerVhost()
    try:
        vhost.create()
        yield vhost.url
    finally:
        vhost.delete()


@dataclass
class BrokerUser:
    """A user of our own on the shared broker, allowed on one of our vhosts only, so a test can cut
    one client off (close its connections, refuse its reconnection) without touching anyone else's.
    Removed with everything it holds by :meth:`delete`."""

    vhost: str
    name: str = field(default_factory=lambda: f"neutrino-ft-{uuid.uuid4().hex[:12]}")
    password: str = field(default_factory=lambda: uuid.uuid4().hex)
    created: bool = False

    def url(self, **query: str) -> str:
        options = "&".join(f"{k}={v}" for k, v in query.items())
        return (f"amqp://{self.name}:{self.password}@{SHARED_BROKER_HOST}:{SHARED_BROKER_PORT}/{self.vhost}"
                + (f"?{options}" if options else ""))

    def create(self) -> None:
        rabbitmqctl("add_user", self.name, self.password)
        self.created = True
        self.allow(True)

    def allow(self, allowed: bool) -> None:
        if allowed:
            rabbitmqctl("set_permissions", "-p", self.vhost, self.name, ".*", ".*", ".*")
        else:
            rabbitmqctl("clear_permissions", "-p", self.vhost, self.name)

    def close_connections(self) -> int:
        """Close this user's connections from the broker side (as a broker failure would)."""
        listing = rabbitmqctl("list_connections", "--no-table-headers", "pid", "user", "vhost")
        pids = [fields[0] for fields in (line.split("\t") for line in listing.splitlines())
                if len(fields) == 3 and fields[1] == self.name and fields[2] == self.vhost]
        for pid in pids:
            rabbitmqctl("close_connection", pid, "neutrino test: connection dropped", check=False)
        return len(pids)

    def delete(self) -> None:
        if self.created:
            rabbitmqctl("delete_user", self.name, check=False)
            self.created = False


@dataclass
class PrivateRabbitNode:
    """A RabbitMQ node of our own (``neutrino-ft-<id>@localhost``) that a test may stop and start.

    Start-up takes 10-15 s on a small machine, so only tests that restart the broker use one.
    """

    node_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    base: Path | None = None
    port: int = 0
    dist_port: int = 0

    @property
    def node(self) -> str:
        return f"neutrino-ft-{self.node_id}@localhost"

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _environment(self) -> dict[str, str]:
        assert self.base is not None
        env = dict(os.environ)
        env.update({
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            # The machine's rabbitmq.conf pins its listener to 5672; ours names our own port.
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.base / "pid"),
        })
        return env

    def start(self, timeout: float = 90) -> None:
        """Start (first time: create) the node and wait until it accepts AMQP connections."""
        if self.base is None:
            self.base = Path(tempfile.mkdtemp(prefix="neutrino-ft-rabbit-"))
            self.port, self.dist_port = free_port(), free_port()
            (self.base / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
            (self.base / "enabled_plugins").write_text("[].\n")
            # The server script drops to the rabbitmq user, which must own its directories.
            self.base.chmod(0o755)
            shutil.chown(self.base, "rabbitmq", "rabbitmq")
            for child in self.base.iterdir():
                shutil.chown(child, "rabbitmq", "rabbitmq")
            register(f"rabbit-{self.node_id}")
            remember(f"rabbit-{self.node_id}", "rabbit", self.node, str(self.base))
        subprocess.run(["rabbitmq-server", "-detached"], env=self._environment(), capture_output=True,
                       timeout=60, check=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if port_open("127.0.0.1", self.port):
                rabbitmqctl("await_startup", node=self.node)
                return
            time.sleep(0.2)
        raise RuntimeError(f"private RabbitMQ node {self.node} did not start in {timeout}s:\n{self.log_tail()}")

    def stop_app(self) -> None:
        """Stop the broker inside the node: every client connection drops and the listener closes, as in
        a restart; the Erlang VM stays, so ``start_app`` takes seconds rather than a full boot."""
        rabbitmqctl("stop_app", node=self.node)
        deadline = time.monotonic() + 30
        while port_open("127.0.0.1", self.port) and time.monotonic() < deadline:
            time.sleep(0.1)

    def start_app(self) -> None:
        rabbitmqctl("start_app", node=self.node)
        rabbitmqctl("await_startup", node=self.node)

    def stop(self) -> None:
        """Stop the node (all client connections drop, as in a broker restart); its data stays."""
        assert self.base is not None
        # With the pid file, rabbitmqctl waits until the node's OS process has exited.
        rabbitmqctl("stop", str(self.base / "pid"), node=self.node, check=False)
        deadline = time.monotonic() + 30
        while port_open("127.0.0.1", self.port) and time.monotonic() < deadline:
            time.sleep(0.1)

    def destroy(self) -> None:
        if self.base is None:
            return
        self.stop()
        pid_file = self.base / "pid"
        if pid_file.exists():  # a node that ignored "stop"
            try:
                os.kill(int(pid_file.read_text().strip()), 9)
            except (ProcessLookupError, ValueError):
                pass
        shutil.rmtree(self.base, ignore_errors=True)
        self.base = None
        unregister(f"rabbit-{self.node_id}")

    def log_tail(self, lines: int = 40) -> str:
        if self.base is None:
            return ""
        out = []
        for path in sorted((self.base / "log").glob("*.log")):
            out.extend(path.read_text(errors="replace").splitlines()[-lines:])
        return "\n".join(out)
