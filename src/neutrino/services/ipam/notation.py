"""Textual forms of IP addresses and networks, and Neutron's messages for malformed ones.

Every parser here raises :class:`~neutrino.errors.InvalidInput` with the message Neutron's API
validators produce for the same input (so ``"Invalid input for operation: 10.0.0.0/33 is not in a
CIDR format."`` comes out word for word). Output is always canonical: IPv6 compressed lower case,
networks with host bits cleared where the attribute's contract says so.
"""

from __future__ import annotations

import ipaddress
import re
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import TypeAlias

from neutrino.errors import InvalidInput

IPAddress: TypeAlias = IPv4Address | IPv6Address
IPNetwork: TypeAlias = IPv4Network | IPv6Network

_DOTTED_QUAD = re.compile(r"^(\d+)\.(\d+)\.(\d+)\.(\d+)$")
_WHITESPACE = re.compile(r"\s")

IPV4_MULTICAST = IPv4Network("224.0.0.0/4")
IPV6_MULTICAST = IPv6Network("ff00::/8")
IPV4_LOOPBACK = IPv4Network("127.0.0.0/8")
IPV6_LOOPBACK = IPv6Network("::1/128")


def _strict_address(text: str) -> IPAddress:
    """Parse one address, rejecting forms the API does not accept (scope ids, whitespace)."""
    if _WHITESPACE.search(text) or "%" in text:
        raise ValueError(text)
    return ipaddress.ip_address(text)


def ip_address_problem(value: object) -> str | None:
    """Why ``value`` is not an acceptable IP address, or ``None`` when it is.

    Mirrors neutron-lib's ``validate_ip_address``: IPv4 must be a dotted quad, and a quad with
    leading zeros (which some libraries read as octal) is refused with a suggestion.
    """
    if not isinstance(value, str):
        return f"'{value}' is not a valid IP address"
    if ":" not in value and value.count(".") != 3:
        return f"'{value}' is not a valid IP address"
    try:
        _strict_address(value)
        return None
    except ValueError:
        pass
    quad = _DOTTED_QUAD.match(value)
    if quad and all(int(part) <= 255 for part in quad.groups()):
        recommended = ".".join(str(int(part)) for part in quad.groups())
        return f"'{value}' is not an accepted IP address, '{recommended}' is recommended"
    return f"'{value}' is not a valid IP address"


def parse_ip_address(value: object) -> IPAddress:
    """The address ``value`` names; ``InvalidInput`` with Neutron's message otherwise."""
    problem = ip_address_problem(value)
    if problem:
        raise InvalidInput(problem)
    assert isinstance(value, str)
    return _strict_address(value)


def canonical_ip(value: object) -> str:
    """``value`` validated and rewritten canonically (IPv6 compressed, lower case)."""
    return str(parse_ip_address(value))


def _loose_network(text: str) -> IPNetwork:
    """``ADDR/PREFIX`` (prefix as a length or a netmask), host bits allowed and cleared."""
    if _WHITESPACE.search(text) or "%" in text:
        raise ValueError(text)
    return ipaddress.ip_network(text, strict=False)


def parse_subnet_cidr(value: object) -> IPNetwork:
    """A subnet's ``cidr`` attribute: the network it names, host bits masked.

    Unparsable text (bad address, prefix length out of range) is "not in a CIDR format", as
    neutron-lib's converter says; a bare address without ``/`` is refused too, because a subnet
    must state its size.
    """
    if not isinstance(value, str):
        raise InvalidInput(f"{value} is not in a CIDR format")
    try:
        network = _loose_network(value)
    except ValueError:
        raise InvalidInput(f"{value} is not in a CIDR format") from None
    if "/" not in value:
        raise InvalidInput(f"'{value}' is not a valid IP subnet")
    return network


def parse_prefix(value: object) -> IPNetwork:
    """A subnet-pool prefix (``type:subnet``): ``ADDR/LEN``; host bits allowed and cleared.

    Like neutron-lib's ``validate_subnet``, an IPv4 prefix must be written exactly as
    ``a.b.c.d/len`` (no netmask form, no leading zeros).
    """
    problem = f"'{value}' is not a valid IP subnet"
    if not isinstance(value, str) or "/" not in value:
        raise InvalidInput(problem)
    try:
        network = _loose_network(value)
    except ValueError:
        raise InvalidInput(problem) from None
    if network.version == 4:
        address = value.partition("/")[0]
        try:
            written = f"{IPv4Address(address)}/{network.prefixlen}"
        except ValueError:
            raise InvalidInput(problem) from None
        if written != value:
            raise InvalidInput(problem)
    return network


def route_destination_problem(value: object) -> str | None:
    """Why ``value`` is not a valid host-route destination (``validate_route_cidr``), or ``None``.

    A destination must be a network address with its prefix (``10.0.0.0/24``, not ``10.0.0.1/24``)
    and must not be loopback.
    """
    invalid = f"'{value}' is not a valid CIDR"
    if not isinstance(value, str) or "/" not in value:
        return invalid
    try:
        if _WHITESPACE.search(value) or "%" in value:
            raise ValueError(value)
        network = ipaddress.ip_network(value, strict=True)
    except ValueError:
        return invalid
    if is_loopback_network(network):
        return f"'{value}' is not a routable CIDR"
    return None


def is_multicast_network(network: IPNetwork) -> bool:
    """True when the whole network lies inside the multicast range (224/4, ff00::/8)."""
    if isinstance(network, IPv4Network):
        return network.subnet_of(IPV4_MULTICAST)
    return network.subnet_of(IPV6_MULTICAST)


def is_loopback_network(network: IPNetwork) -> bool:
    """True for networks inside 127/8, or exactly ``::1/128``."""
    if isinstance(network, IPv4Network):
        return network.subnet_of(IPV4_LOOPBACK)
    return network == IPV6_LOOPBACK


def format_range(first: IPAddress | str, last: IPAddress | str) -> str:
    """An address range the way Neutron prints it in messages: ``10.0.0.2-10.0.0.254``."""
    return f"{first}-{last}"


def version_mismatch(name: str, value: object, ip_version: int) -> InvalidInput:
    """The error for an attribute of the wrong IP family, worded as Neutron words it."""
    return InvalidInput(f"{name} '{value}' does not match the ip_version '{ip_version}'")
