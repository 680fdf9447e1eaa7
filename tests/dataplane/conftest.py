"""Fixtures for data-plane tests against the real kernel.

Every test works inside network namespaces with names unique to it (a random suffix), so tests
running in parallel on the machine never touch each other's objects or the root namespace's
devices. Teardown deletes those namespaces with iproute2 rather than with the driver under test,
so a broken driver cannot leave debris behind; deleting a namespace destroys every device in it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
from kernel_scratch import Scratch, new_scratch

from neutrino.dataplane.netlink import NetlinkDriver
from neutrino.dataplane.ownership import OwnerTag


@pytest.fixture
def scratch() -> Iterator[Scratch]:
    if os.geteuid() != 0:
        pytest.skip("kernel tests need root (namespaces, devices)")
    state = new_scratch()
    try:
        yield state
    finally:
        state.cleanup()


@pytest.fixture
async def driver(scratch: Scratch) -> AsyncIterator[NetlinkDriver]:
    yield NetlinkDriver(OwnerTag(f"test-{scratch.suffix}"))
