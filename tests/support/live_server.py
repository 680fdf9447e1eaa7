"""A real Neutrino started as users start it (``neutrino up``), on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    state_dir: Path
    clouds_yaml: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    agent_host: str = ""

    def cloud(self, name: str) -> dict:
        return yaml.safe_load(self.clouds_yaml.read_text())["clouds"][name]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["OS_CLIENT_CONFIG_FILE"] = str(self.clouds_yaml)
        for key in list(env):
            if key.startswith("OS_") and key != "OS_CLIENT_CONFIG_FILE":
                del env[key]
        return env

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except OSError:
            return ""


def start_server(state_dir: Path, *, database_url: str | None = None, extra_config: str = "",
                 port: int | None = None, timeout: float = 60.0, agent_host: str | None = None) -> LiveServer:
    state_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    config = state_dir / "neutrino.toml"
    # Each test server's in-process agent gets its own host name, so its kernel objects (owned by
    # "neutrino:<host>") never collide with another test server's running at the same time.
    agent_host = agent_host or "t" + uuid.uuid4().hex[:8]
    text = extra_config if "[agent]" in extra_config else extra_config + f'\n[agent]\nhost = "{agent_host}"\n'
    # The demo external network's host bridge and address are one per machine: test servers run
    # in parallel, so only a test that asks for it (with a bridge and range of its own) gets one.
    if "[all_in_one]" not in text:
        text += "\n[all_in_one]\npublic_network = false\nl3_agent = false\ndhcp_agent = false\n"
    # The firewall's bridge table is one per network namespace (it drops every tap it does not
    # know), and the qos role's full resync clears shaping it was not told about: test servers
    # share the root namespace, so only a test that asks for them runs them.
    for role in ("firewall_agent", "qos_agent"):
        if role not in text:
            text = text.replace("[all_in_one]\n", f"[all_in_one]\n{role} = false\n", 1)
    if database_url:
        text = f'[database]\nurl = "{database_url}"\n' + text
    config.write_text(text)
    log_path = state_dir / "server.log"
    log = open(log_path, "ab")
    cmd = [sys.executable, "-m", "neutrino.cli.main", "up", "--config", str(config), "--state-dir", str(state_dir),
           "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    server = LiveServer(url, state_dir, state_dir / "clouds.yaml", proc, log_path, agent_host)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"neutrino up exited with {proc.returncode}:\n{server.log_tail()}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200 and server.clouds_yaml.exists():
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"neutrino up did not become healthy in {timeout}s:\n{server.log_tail()}")
