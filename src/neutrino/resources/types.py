"""Attribute value types: conversion and validation of one request value, as Neutron does them.

Each type is a small frozen object with ``convert(value) -> value`` that raises
:class:`InvalidValue` with Neutron's reason text; the API layer turns that into
"Invalid input for <attr>. Reason: <reason>." The same converters normalise filter values.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


class InvalidValue(ValueError):
    """A request value failed conversion/validation; the text is Neutron's reason."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class String:
    max_len: int | None = 255
    nullable: bool = False
    strict_name: bool = False  # Neutron's name rule: no control chars, no surrounding whitespace

    def convert(self, value: Any) -> Any:
        if value is None and self.nullable:
            return None
        if not isinstance(value, str):
            raise InvalidValue(f"'{value}' is not a valid string")
        if self.max_len is not None and len(value) > self.max_len:
            raise InvalidValue(f"'{value}' exceeds maximum length of {self.max_len}")
        if self.strict_name and (_CONTROL.search(value) or value != value.strip()):
            raise InvalidValue(f"'{value}' is not a valid string")
        return value


@dataclass(frozen=True, slots=True)
class Boolean:
    nullable: bool = False

    def convert(self, value: Any) -> Any:
        if value is None and self.nullable:
            return None
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            low = value.strip().lower()
            if low in ("true", "1"):
                return True
            if low in ("false", "0"):
                return False
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise InvalidValue(f"'{value}' cannot be converted to boolean")


# Integer columns are 32-bit on PostgreSQL and MySQL (and the drivers refuse wider parameters even
# to compare with), so a value outside this range is invalid input, not a database failure.
INT32_MIN = -(2 ** 31)
INT32_MAX = 2 ** 31 - 1


@dataclass(frozen=True, slots=True)
class Integer:
    """An integer (or its decimal text), within [minimum, maximum]; the bounds default to the
    32-bit range every integer column can hold."""

    minimum: int | None = None
    maximum: int | None = None
    nullable: bool = False

    @property
    def low(self) -> int:
        return INT32_MIN if self.minimum is None else self.minimum

    @property
    def high(self) -> int:
        return INT32_MAX if self.maximum is None else self.maximum

    def convert(self, value: Any) -> Any:
        if value is None and self.nullable:
            return None
        if isinstance(value, bool):
            raise InvalidValue(f"'{value}' is not an integer")
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError as exc:
                raise InvalidValue(f"'{value}' is not an integer") from exc
        if not isinstance(value, int):
            raise InvalidValue(f"'{value}' is not an integer")
        if value < self.low:
            raise InvalidValue(f"'{value}' is too small - must be at least '{self.low}'")
        if value > self.high:
            raise InvalidValue(f"'{value}' is too large - must be no larger than '{self.high}'")
        return value


@dataclass(frozen=True, slots=True)
class Count:
    """How many of something the server counted (addresses of an IPv6 subnet: up to 2**128): shown
    exactly, never bounded by a column's integer size. Only ever in responses."""

    def convert(self, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidValue(f"'{value}' is not a count")
        return value


@dataclass(frozen=True, slots=True)
class Uuid:
    nullable: bool = False

    def convert(self, value: Any) -> Any:
        if value is None and self.nullable:
            return None
        if isinstance(value, str):
            try:
                uuid.UUID(value)
                if len(value) in (32, 36):
                    return value
            except ValueError:
                pass
        raise InvalidValue(f"'{value}' is not a valid UUID")


@dataclass(frozen=True, slots=True)
class Enum:
    values: tuple[Any, ...]
    nullable: bool = False
    lower: bool = False
    # Integer values may be sent as their decimal text (Neutron's convert_to_int runs first:
    # ``"ip_version": "4"`` is accepted).
    integers: bool = False

    def convert(self, value: Any) -> Any:
        if value is None and self.nullable:
            return None
        if self.lower and isinstance(value, str):
            value = value.lower()
        if self.integers and isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise InvalidValue(f"'{value}' is not an integer") from None
        if value not in self.values:
            raise InvalidValue(f"'{value}' is not in {list(self.values)}")
        return value


@dataclass(frozen=True, slots=True)
class IpAddress:
    nullable: bool = False

    def convert(self, value: Any) -> Any:
        if value is None and self.nullable:
            return None
        if not isinstance(value, str):
            raise InvalidValue(f"'{value}' is not a valid IP address")
        try:
            addr = ipaddress.ip_address(value)
        except ValueError as exc:
            raise InvalidValue(f"'{value}' is not a valid IP address") from exc
        # Neutron rejects IPv4 forms like '010.0.0.1' that inet_aton would misread.
        if addr.version == 4 and str(addr) != value:
            raise InvalidValue(f"'{value}' is not an accepted IP address, '{addr}' is recommended")
        return str(addr)


@dataclass(frozen=True, slots=True)
class Cidr:
    """A subnet/prefix; host bits are kept here and masked by the service (Neutron semantics)."""

    nullable: bool = False

    def convert(self, value: Any) -> Any:
        if value is None and self.nullable:
            return None
        if not isinstance(value, str) or "/" not in value:
            raise InvalidValue(f"'{value}' is not a valid IP subnet")
        try:
            ipaddress.ip_interface(value)
        except ValueError as exc:
            raise InvalidValue(f"'{value}' is not a valid IP subnet") from exc
        return value


@dataclass(frozen=True, slots=True)
class IpOrCidr:
    # aap-reject-multicast: an allowed address pair may not hold or overlap a multicast range
    # (nothing forwards multicast by address pair, so accepting one only hid the fact).
    reject_multicast: bool = False

    def convert(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise InvalidValue(f"'{value}' is neither a valid IP address, nor is it a valid IP subnet")
        try:
            if "/" in value:
                net = ipaddress.ip_network(value, strict=False)
                if self.reject_multicast and _overlaps_multicast(net):
                    mcast = _MULTICAST[net.version]
                    raise InvalidValue(f"Subnet {value} overlaps with multicast range {mcast}, which is not supported")
                return value
            addr = ipaddress.ip_address(value)
        except ValueError as exc:
            if isinstance(exc, InvalidValue):
                raise
            raise InvalidValue(f"'{value}' is neither a valid IP address, nor is it a valid IP subnet") from exc
        if self.reject_multicast and addr.is_multicast:
            raise InvalidValue(f"IP {value} is a multicast address, which is not supported")
        return str(addr)


_MULTICAST = {4: ipaddress.ip_network("224.0.0.0/4"), 6: ipaddress.ip_network("ff00::/8")}


def _overlaps_multicast(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    """CIDRs never overlap partially: one holds the other, or they are apart. As in Neutron,
    0.0.0.0/0 (any IPv4 source) stays allowed; ::/0 does not."""
    return net != _ANY_V4 and net.overlaps(_MULTICAST[net.version])


_ANY_V4 = ipaddress.ip_network("0.0.0.0/0")


_MAC = re.compile(r"^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$")


@dataclass(frozen=True, slots=True)
class MacAddress:
    nullable: bool = False
    reject_multicast: bool = False  # aap-reject-multicast: the group bit of the first octet

    def convert(self, value: Any) -> Any:
        if value is None and self.nullable:
            return None
        if not isinstance(value, str) or not _MAC.match(value.lower()):
            raise InvalidValue(f"'{value}' is not a valid MAC address")
        mac = value.lower().replace("-", ":")
        if mac in ("00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"):
            raise InvalidValue(f"'{value}' is not a valid MAC address")
        if self.reject_multicast and int(mac[:2], 16) & 1:
            raise InvalidValue(f"MAC address {value} is a multicast address, which is not supported")
        return mac


@dataclass(frozen=True, slots=True)
class ListOf:
    item: Any
    unique: bool = False
    nullable: bool = False
    max_items: int | None = None

    def convert(self, value: Any) -> Any:
        if value is None and self.nullable:
            return None
        if not isinstance(value, list):
            raise InvalidValue(f"'{value}' is not a list")
        out = [self.item.convert(v) for v in value]
        if self.unique:
            seen: list[Any] = []
            for v in out:
                if v in seen:
                    raise InvalidValue(f"Duplicate items in the list: '{v}'")
                seen.append(v)
        if self.max_items is not None and len(out) > self.max_items:
            raise InvalidValue(f"'{value}' exceeds maximum length of {self.max_items}")
        return out


@dataclass(frozen=True, slots=True)
class Dict:
    """A dict whose keys are checked: required keys, optional keys, and each value's type."""

    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    types: tuple[tuple[str, Any], ...] = ()
    free_form: bool = False
    nullable: bool = False

    def convert(self, value: Any) -> Any:
        if value is None and self.nullable:
            return None
        if not isinstance(value, dict):
            raise InvalidValue(f"'{value}' is not a dictionary")
        if self.free_form:
            return value
        allowed = set(self.required) | set(self.optional)
        extra = sorted(set(value) - allowed)
        if extra:
            raise InvalidValue(f"Unexpected keys supplied: {', '.join(extra)}")
        missing = [k for k in self.required if k not in value]
        if missing:
            raise InvalidValue(f"Validation of dictionary's keys failed. Expected keys: {set(self.required)} "
                               f"Provided keys: {set(value)}")
        out = dict(value)
        types = dict(self.types)
        for key, val in value.items():
            if key in types and not (val is None and key not in self.required and getattr(types[key], "nullable", False)):
                out[key] = types[key].convert(val)
        return out


@dataclass(frozen=True, slots=True)
class Any_:
    """Accepted as is (the service validates it in context)."""

    def convert(self, value: Any) -> Any:
        return value


@dataclass(frozen=True, slots=True)
class Custom:
    fn: Callable[[Any], Any] = field(default=lambda v: v)

    def convert(self, value: Any) -> Any:
        return self.fn(value)


def one_of_names(values: Sequence[str]) -> Enum:
    return Enum(tuple(values))
