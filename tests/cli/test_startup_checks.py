"""``neutrino up`` refuses a taken port and a bad configuration value in one line, before it
touches anything: no database is migrated, no network made, no traceback printed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from neutrino.config import ConfigError, load_settings

NEUTRINO = [sys.executable, "-m", "neutrino.cli.main"]


def _up(state: Path, port: int, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("NEUTRINO_")}
    full_env.update(env or {})
    return subprocess.run([*NEUTRINO, "up", "--state-dir", str(state), "--port", str(port)], env=full_env,
                          capture_output=True, text=True, timeout=120)


def test_up_on_a_taken_port_says_so_in_one_line_and_does_nothing(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _up(tmp_path / "state", port)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"127.0.0.1:{port}" in lines[0] and "in use" in lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "state" / "neutrino.sqlite").exists()
    assert not (tmp_path / "state" / "clouds.yaml").exists()


def test_a_bad_configuration_value_names_key_expectation_and_value(tmp_path: Path) -> None:
    result = _up(tmp_path / "state", 9, env={"NEUTRINO_ML2_NETWORK_VLAN_RANGES": '["foo:1:x"]'})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("neutrino: [ml2] network_vlan_ranges: expected ")
    assert lines[0].endswith("given 'foo:1:x'")
    assert not (tmp_path / "state" / "neutrino.sqlite").exists()


def test_list_values_from_the_environment_may_be_written_as_lists() -> None:
    settings = load_settings(environ={"NEUTRINO_ML2_NETWORK_VLAN_RANGES": '["foo:1:10", "bar"]',
                                      "NEUTRINO_ML2_VNI_RANGES": "1:100, 200:300"})
    assert settings.ml2.network_vlan_ranges == ["foo:1:10", "bar"]
    assert settings.ml2.vni_ranges == ["1:100", "200:300"]


@pytest.mark.parametrize(("variable", "value", "expected"), [
    ("NEUTRINO_SERVER_PORT", "ninety", "[server] port: expected an integer, given 'ninety'"),
    ("NEUTRINO_SERVER_PORT", "70000", "[server] port: expected a TCP port 1-65535, given 70000"),
    ("NEUTRINO_SERVER_ALLOW_AUTOMATIC_DHCP_FAILOVER", "perhaps",
     "[server] allow_automatic_dhcp_failover: expected a boolean (true or false), given 'perhaps'"),
    ("NEUTRINO_BUS_RPC_TIMEOUT_SECONDS", "soon", "[bus] rpc_timeout_seconds: expected a number, given 'soon'"),
    ("NEUTRINO_ML2_VNI_RANGES", "10:1", "[ml2] vni_ranges: expected \"min:max\" with 1 <= min <= max <= "
                                        "16777215, given '10:1'"),
    ("NEUTRINO_ML2_NETWORK_VLAN_RANGES", "physnet1:1:5000", "[ml2] network_vlan_ranges: expected \"physnet\" or "
     "\"physnet:min:max\" with 1 <= min <= max <= 4094, given 'physnet1:1:5000'"),
    ("NEUTRINO_ML2_BASE_MAC", "fa:16:3e", "[ml2] base_mac: expected a MAC address such as "
                                          "\"fa:16:3e:00:00:00\", given 'fa:16:3e'"),
    ("NEUTRINO_AGENT_BRIDGE_MAPPINGS", "physnet1", "[agent] bridge_mappings: expected \"physnet:device\" pairs, "
                                                   "given 'physnet1'"),
    ("NEUTRINO_SERVER_METRICS_LISTEN", "9697", "[server] metrics_listen: expected \"\", \"off\" or "
                                               "\"HOST:PORT\", given '9697'"),
    ("NEUTRINO_SERVER_MAX_REQUEST_BODY_SIZE", "0",
     "[server] max_request_body_size: expected a positive number of bytes, given 0"),
])
def test_bad_values_are_named(variable: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={variable: value})
    assert str(caught.value) == expected


def test_bad_values_in_the_file_are_named(tmp_path: Path) -> None:
    config = tmp_path / "neutrino.toml"
    config.write_text('[ml2]\nnetwork_vlan_ranges = "physnet1"\n[server]\nport = 9696\n')
    assert load_settings(config, environ={}).ml2.network_vlan_ranges == ["physnet1"]
    config.write_text("[ml2]\nnetwork_vlan_ranges = [1, 2]\n")
    with pytest.raises(ConfigError, match=r"^\[ml2\] network_vlan_ranges: expected a list of strings, given \[1, 2\]$"):
        load_settings(config, environ={})
