"""MAC addresses: the accepted spellings, the canonical form, and random generation.

Canonical form is lower-case, colon separated, two digits per octet (``fa:16:3e:71:f6:22``): every
MAC the API returns or compares is in this form, so uniqueness checks see one spelling per address.
"""

from __future__ import annotations

import random
import re
from collections.abc import Container

from neutrino.errors import InvalidInput, NetworkMacAddressGenerationFailure

# Neutron's ``mac_generation_retries`` default.
MAC_GENERATION_ATTEMPTS = 16

_SEPARATED = re.compile(r"^([0-9a-fA-F]{1,2})([:-])([0-9a-fA-F]{1,2})\2([0-9a-fA-F]{1,2})\2"
                        r"([0-9a-fA-F]{1,2})\2([0-9a-fA-F]{1,2})\2([0-9a-fA-F]{1,2})$")
_DOTTED = re.compile(r"^([0-9a-fA-F]{4})\.([0-9a-fA-F]{4})\.([0-9a-fA-F]{4})$")
_BARE = re.compile(r"^[0-9a-fA-F]{12}$")
_HALVES = re.compile(r"^([0-9a-fA-F]{6}):([0-9a-fA-F]{6})$")

_ALL_ZERO = 0
_BROADCAST = 0xFFFF_FFFF_FFFF
# The least significant bit of the first octet is the I/G (group, i.e. multicast) bit.
_MULTICAST_BIT = 0x01_00_00_00_00_00


def _mac_value(value: str) -> int | None:
    """The 48-bit value of a MAC in any accepted spelling, or None if it is not one."""
    match = _SEPARATED.match(value)
    if match:
        octets = [match.group(i) for i in (1, 3, 4, 5, 6, 7)]
        return int("".join(o.rjust(2, "0") for o in octets), 16)
    for pattern in (_DOTTED, _HALVES):
        match = pattern.match(value)
        if match:
            return int("".join(match.groups()), 16)
    if _BARE.match(value):
        return int(value, 16)
    return None


def format_mac(value: int) -> str:
    """``value`` (48 bits) in canonical form."""
    return ":".join(f"{(value >> shift) & 0xFF:02x}" for shift in range(40, -8, -8))


def mac_value(mac: str) -> int:
    """The 48-bit integer of a valid MAC (any accepted spelling); InvalidInput otherwise."""
    value = _mac_value(mac) if isinstance(mac, str) else None
    if value is None:
        raise InvalidInput(f"'{mac}' is not a valid MAC address")
    return value


def is_multicast_mac(mac: str) -> bool:
    return bool(mac_value(mac) & _MULTICAST_BIT)


def normalize_mac(value: object, *, allow_multicast: bool = False) -> str:
    """``value`` as a canonical MAC; ``InvalidInput`` for anything a port may not use.

    Accepted spellings: ``aa:bb:cc:dd:ee:ff`` and ``AA-BB-CC-DD-EE-FF`` (one or two digits per
    octet), ``aabb.ccdd.eeff``, ``aabbcc:ddeeff`` and bare ``aabbccddeeff``. The all-zero and
    broadcast addresses are never valid; multicast (group) addresses are refused unless
    ``allow_multicast`` — an interface cannot be given one (the kernel answers EADDRNOTAVAIL).
    """
    mac = _mac_value(value) if isinstance(value, str) else None
    if mac is None or mac in (_ALL_ZERO, _BROADCAST):
        raise InvalidInput(f"'{value}' is not a valid MAC address")
    if mac & _MULTICAST_BIT and not allow_multicast:
        raise InvalidInput(f"MAC address {format_mac(mac)} is a multicast address, which is not supported.")
    return format_mac(mac)


def check_base_mac(base_mac: str) -> str:
    """The configured ``base_mac`` in canonical form; InvalidInput if it is not a MAC."""
    return format_mac(mac_value(base_mac))


def random_mac(base_mac: str, rng: random.Random) -> str:
    """A random MAC keeping ``base_mac``'s prefix, with Neutron's ``base_mac`` semantics.

    The first three octets of the base are always kept; the fourth is kept too when it is not
    ``00``; the remaining octets are random. So the default ``fa:16:3e:00:00:00`` yields
    ``fa:16:3e:xx:xx:xx`` and ``fa:16:3e:12:00:00`` yields ``fa:16:3e:12:xx:xx``.
    """
    base = mac_value(base_mac)
    octets = [(base >> shift) & 0xFF for shift in range(40, -8, -8)]
    fixed = 4 if octets[3] != 0 else 3
    value = 0
    for index in range(6):
        octet = octets[index] if index < fixed else rng.getrandbits(8)
        value = (value << 8) | octet
    return format_mac(value)


def pick_unused_mac(base_mac: str, rng: random.Random, in_use: Container[str], *, network_id: str,
                    attempts: int = MAC_GENERATION_ATTEMPTS) -> str:
    """A random MAC (see :func:`random_mac`) not in ``in_use``; gives up after ``attempts`` draws.

    Raises ``NetworkMacAddressGenerationFailure`` (503) when every draw collided, as Neutron does
    after ``mac_generation_retries``. The database's unique (network, mac) constraint stays the
    real guard against a concurrent writer.
    """
    for _ in range(attempts):
        mac = random_mac(base_mac, rng)
        if mac not in in_use:
            return mac
    raise NetworkMacAddressGenerationFailure(net_id=network_id)
