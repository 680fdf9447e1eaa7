"""A RabbitMQ restart in the middle of operation: traffic keeps flowing, agents reconnect and converge.

The broker restarted is a private node this module starts (its own node name, ports and data
directory), never the machine's shared broker; the deployment here runs entirely on it. The restart
stops and starts the RabbitMQ application inside the node (``stop_app``/``start_app``): to the
clients it is a broker restart (every connection drops, the port closes, queues are re-declared),
without waiting for a second boot of the Erlang VM.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator

import pytest

from tests.fullstack.broker import PrivateRabbitNode
from tests.fullstack.conftest import why_fullstack_cannot_run
from tests.fullstack.deployment import Deployment, running_deployment
from tests.fullstack.scenario import InstanceSpec, Scenario

pytestmark = [
    pytest.mark.kernel, pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.slow, pytest.mark.xdist_group("fullstack"),
]


@pytest.fixture(scope="module")
def broker_node() -> Iterator[PrivateRabbitNode]:
    reason = why_fullstack_cannot_run()
    if reason:
        pytest.skip(reason)
    if shutil.which("rabbitmq-server") is None:
        pytest.skip("rabbitmq-server is not installed: no private broker node can be started")
    node = PrivateRabbitNode()
    try:
        node.start()
        yield node
    finally:
        node.destroy()


@pytest.fixture(scope="module")
def on_private_broker(broker_node: PrivateRabbitNode, tmp_path_factory: pytest.TempPathFactory
                      ) -> Iterator[Deployment]:
    with running_deployment(tmp_path_factory.mktemp("fullstack-broker"), bus_url=broker_node.url) as running:
        yield running


def test_agents_reconnect_and_keep_converging_after_a_broker_restart(
    on_private_broker: Deployment, broker_node: PrivateRabbitNode
) -> None:
    deployment = on_private_broker
    scenario = Scenario(deployment)
    try:
        network, _ = scenario.network("broker", "10.91.0.0/24")
        a, b = scenario.instances_of([
            InstanceSpec("broker-a", network["id"], "h1"),
            InstanceSpec("broker-b", network["id"], "h2"),
        ])
        assert deployment.ping(a, b.ip_address).received == 1

        broker_node.stop_app()
        # The data plane does not need the control plane...
        assert deployment.ping(a, b.ip_address).received == 1
        # ...and the API still works: an instance made now waits for the agents to hear of it.
        c = scenario.instance("broker-c", network["id"], "h1", wait_active=False)
        broker_node.start_app()
        back = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        for label in ("h1", "h2"):
            deployment.wait_agent_alive_since(label, back)

        deployment.api().wait_port_status(c.port_id, "ACTIVE", timeout=30)
        assert deployment.ping(c, b.ip_address, deadline=15).received == 1
        d = scenario.instance("broker-d", network["id"], "h2")
        assert deployment.ping(d, a.ip_address).received == 1
        assert deployment.ping(a, d.ip_address).received == 1
    finally:
        scenario.close()
