"""IP/CIDR syntax and Neutron's messages for malformed values."""

from __future__ import annotations

import pytest

from neutrino import errors
from neutrino.services.ipam.notation import (
    canonical_ip,
    ip_address_problem,
    parse_prefix,
    parse_subnet_cidr,
    route_destination_problem,
)


@pytest.mark.parametrize(("value", "problem"), [
    ("10.0.0.1", None),
    ("fd00::1", None),
    ("10.0.0", "'10.0.0' is not a valid IP address"),
    ("10.0.0.256", "'10.0.0.256' is not a valid IP address"),
    ("010.0.0.1", "'010.0.0.1' is not an accepted IP address, '10.0.0.1' is recommended"),
    (" 10.0.0.1", "' 10.0.0.1' is not a valid IP address"),
    ("fe80::1%eth0", "'fe80::1%eth0' is not a valid IP address"),
    (None, "'None' is not a valid IP address"),
])
def test_ip_address_problems(value, problem):
    assert ip_address_problem(value) == problem


def test_canonical_ipv6_is_compressed_lowercase():
    assert canonical_ip("FD00:0000:0000::0001") == "fd00::1"
    with pytest.raises(errors.InvalidInput):
        canonical_ip("nope")


def test_subnet_cidr_masks_host_bits_and_accepts_netmask():
    assert str(parse_subnet_cidr("10.0.0.7/24")) == "10.0.0.0/24"
    assert str(parse_subnet_cidr("10.0.0.0/255.255.255.0")) == "10.0.0.0/24"


def test_prefix_must_be_written_plainly():
    assert str(parse_prefix("10.0.0.1/24")) == "10.0.0.0/24"
    for bad in ("10.0.0.0/255.255.255.0", "010.0.0.0/8", "10.0.0.0"):
        with pytest.raises(errors.InvalidInput):
            parse_prefix(bad)


@pytest.mark.parametrize(("value", "problem"), [
    ("10.0.0.0/24", None),
    ("0.0.0.0/0", None),
    ("10.0.0.1/24", "'10.0.0.1/24' is not a valid CIDR"),
    ("::1/128", "'::1/128' is not a routable CIDR"),
    ("127.0.0.0/8", "'127.0.0.0/8' is not a routable CIDR"),
])
def test_route_destinations(value, problem):
    assert route_destination_problem(value) == problem
