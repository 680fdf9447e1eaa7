"""Builds the bus a URL names; the one place that knows which transport lives behind which scheme.

``memory://`` gives the in-process transport (the all-in-one default); ``amqp://`` and ``amqps://``
give RabbitMQ, e.g. ``amqp://user:pass@broker:5672/neutrino?reconnect_interval=1``. The bus is
returned unstarted: the composition root decides when to ``await bus.start()``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from neutrino.bus.interface import Bus
from neutrino.bus.memory import MemoryBroker, MemoryBus


def build_bus(
    url: str,
    *,
    sender: str,
    broker: MemoryBroker | None = None,
    clock: Callable[[], float] = time.time,
    new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
) -> Bus:
    """A bus for ``url``, stamping ``sender`` into what it sends.

    ``broker`` lets several in-process buses (server, agent roles) share one ``memory://`` broker;
    without it a fresh broker is made, which only this bus can reach. It is ignored for AMQP.
    """
    if not sender:
        raise ValueError("sender must name this process on the bus")
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "memory":
        return MemoryBus(
            broker if broker is not None else MemoryBroker(), sender=sender, clock=clock, new_id=new_id
        )
    if scheme in ("amqp", "amqps"):
        # Imported here so the all-in-one process does not load the AMQP client stack at all.
        from neutrino.bus.amqp import AmqpBus

        return AmqpBus(url, sender=sender, clock=clock, new_id=new_id)
    raise ValueError(f"unsupported bus URL scheme {scheme!r}; use memory:// or amqp://")
