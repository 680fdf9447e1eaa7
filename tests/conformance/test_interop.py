"""The OpenStack interop guideline's network tests (RefStack), run unchanged by tempest.

``scripts/interop.sh`` does what an operator certifying a cloud does: a fresh ``neutrino up``,
tempest configured against it, the guideline's test list. Every test run must pass; a skip counts
as a failure (the script checks that the passes equal the list's length).

``BLOCKED`` names the guideline tests that cannot pass yet and why; they are left out of the run
(not skipped and counted), and the assertion below says how many of the 64 that leaves.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TEST_LIST = Path(__file__).with_name("interop-network-tests.txt")
SUMMARY = re.compile(r"^interop: ran=(\d+) passed=(\d+) skipped=(\d+) failed=(\d+) expected=(\d+)", re.MULTILINE)

# Every guideline test runs: the router-interface tests (tempest waits for each interface port to go
# ACTIVE) pass since `neutrino up` runs the l3 role, which plugs router ports as Neutron's L3 agent does.
BLOCKED: dict[str, str] = {}


def _runnable(lines: list[str]) -> list[str]:
    def blocked(line: str) -> bool:
        return any(name.replace(".", r"\.") + r"\[" in line for name in BLOCKED)
    return [line for line in lines if not blocked(line)]


@pytest.mark.slow
@pytest.mark.xdist_group("interop")
def test_interop_network_tests_pass_with_tempest(tmp_path: Path) -> None:
    listed = [line for line in TEST_LIST.read_text().splitlines() if line.split("#", 1)[0].strip()]
    assert len(listed) == 64
    runnable = _runnable(listed)
    assert len(runnable) == 64 - len(BLOCKED), "a BLOCKED name matches no listed test"
    include = tmp_path / "include.txt"
    include.write_text("\n".join(runnable) + "\n")
    proc = subprocess.run(["bash", str(REPO / "scripts" / "interop.sh"), "--work-dir", str(tmp_path / "run"),
                           "--include-list", str(include)],
                          cwd=REPO, capture_output=True, text=True, timeout=3600)
    failed = "\n".join(line for line in proc.stdout.splitlines() if " ... FAILED" in line)
    summary = SUMMARY.findall(proc.stdout)
    assert summary, f"no summary; exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    ran, passed, skipped, failures, expected = summary[-1]
    n = str(len(runnable))
    assert (ran, passed, skipped, failures, expected) == (n, n, "0", "0", n), f"{failed}\nlogs: {tmp_path / 'run'}"
    assert proc.returncode == 0, proc.stdout[-3000:]
