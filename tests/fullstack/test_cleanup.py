"""``neutrino cleanup --host H`` on a whole deployment: everything of H goes, nothing of the others."""

from __future__ import annotations

import pytest

from tests.fullstack.deployment import Deployment, leftovers_of
from tests.fullstack.scenario import InstanceSpec, Scenario
from tests.fullstack.underlay import links, namespace_exists

pytestmark = [
    pytest.mark.kernel, pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.xdist_group("fullstack"),
]


def test_cleanup_of_a_host_leaves_nothing_of_it_and_spares_the_others(
    deployment: Deployment, scenario: Scenario
) -> None:
    if "h3" not in deployment.agents:
        deployment.add_host("h3")
    network, _ = scenario.network("doomed", "10.89.0.0/24")
    doomed, survivor = scenario.instances_of([
        InstanceSpec("doomed", network["id"], "h3"),
        InstanceSpec("survivor", network["id"], "h1"),
    ])
    assert deployment.ping(doomed, survivor.ip_address).received == 1
    h3 = deployment.host("h3")
    assert len(leftovers_of(h3)) >= 4  # the instance namespace, its tap, the bridge, the VXLAN device

    deployment.agents["h3"].stop()  # an operator cleans a host whose agent is stopped
    result = deployment.cleanup_host("h3")

    assert result.returncode == 0, result.stderr
    assert leftovers_of(h3) == []
    assert not namespace_exists(doomed.namespace)
    assert namespace_exists(h3.netns)  # not Neutrino's: the simulated host itself stays
    h1_links = links(deployment.host("h1").netns)
    assert h1_links[f"tap{survivor.port_id[:11]}"].get("master") == f"brq{network['id'][:11]}"
    assert deployment.api().port(survivor.port_id)["status"] == "ACTIVE"  # type: ignore[index]
