"""Security group rules as data: validation and normalisation, no database.

:func:`normalise_rule` turns one request body (already through the generic attribute checks) into a
:class:`RuleSpec` with Neutron's canonical values, or raises the typed error Neutron raises
(``SecurityGroupRuleInvalidProtocol``, ``SecurityGroupInvalidPortRange``, ...). Its
:attr:`RuleSpec.fingerprint` is the rule's *effect* — protocol by number, "any address" the same as
no prefix — so two rules that mean the same thing have the same fingerprint; the database keeps it
unique per group, which is what makes duplicate detection hold under concurrency.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from neutrino.errors import Conflict, InUse, InvalidInput

IPV4, IPV6 = "IPv4", "IPv6"
ETHERTYPES = (IPV4, IPV6)
DIRECTIONS = ("ingress", "egress")
ANY_PROTOCOL = "any"

# IANA protocol numbers of the names Neutron accepts (neutron-lib's IP_PROTOCOL_MAP).
PROTOCOL_NUMBERS: Mapping[str, int] = {
    "ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "hopopt": 0, "icmp": 1, "igmp": 2, "ip": 0,
    "ipip": 4, "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "icmpv6": 58, "ipv6-nonxt": 59,
    "ipv6-opts": 60, "ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6, "udp": 17,
    "udplite": 136, "vrrp": 112,
}
SUPPORTED_PROTOCOLS = (None, ANY_PROTOCOL, *PROTOCOL_NUMBERS)
# Protocols whose rules may carry a port range (others refuse ports; ICMP reads them as type/code).
PORT_PROTOCOLS = (33, 132, 6, 17, 136)
PORT_PROTOCOL_NAMES = ("dccp", "sctp", "tcp", "udp", "udplite")
ICMP_PROTOCOLS = (1, 58)
IPV6_ONLY_PROTOCOLS = ("ipv6-encap", "ipv6-frag", "ipv6-icmp", "icmpv6", "ipv6-nonxt", "ipv6-opts", "ipv6-route",
                       "41", "44", "58", "59", "60", "43")
IPV6_ICMP_LEGACY_NAMES = ("icmp", "icmpv6")
PORT_MIN, PORT_MAX = 1, 65535


# ---- errors (Neutron's exception names and messages) ------------------------------------------


class _RuleInputError(InvalidInput):
    """A 400 whose message is the leaf's own text (not "Invalid input for operation: ...")."""

    def __init__(self, **kwargs: Any) -> None:
        super(InvalidInput, self).__init__(None, **kwargs)


class SecurityGroupRuleInvalidProtocol(_RuleInputError):
    message = ("Security group rule protocol %(protocol)s not supported. Only protocol values %(values)s and "
               "integer representations [0 to 255] are supported.")


class SecurityGroupRuleInvalidEtherType(_RuleInputError):
    message = "Security group rule for ethertype '%(ethertype)s' not supported. Allowed values are %(values)s."


class SecurityGroupInvalidPortValue(_RuleInputError):
    message = "Invalid value for port %(port)s"


class SecurityGroupInvalidPortRange(_RuleInputError):
    message = "For TCP/UDP protocols, port_range_min must be <= port_range_max"


class SecurityGroupInvalidProtocolForPort(_RuleInputError):
    message = ("Ports cannot be specified for protocol %(protocol)s. Ports are only supported for "
               "%(valid_port_protocols)s.")


class SecurityGroupInvalidIcmpValue(_RuleInputError):
    message = "Invalid value for ICMP %(field)s (%(attr)s) %(value)s. It must be 0 to 255."


class SecurityGroupMissingIcmpType(_RuleInputError):
    message = "ICMP code (port-range-max) %(value)s is provided but ICMP type (port-range-min) is missing."


class SecurityGroupProtocolRequiredWithPorts(_RuleInputError):
    message = "Must also specify protocol if port range is given."


class SecurityGroupEthertypeConflictWithProtocol(_RuleInputError):
    message = "Invalid ethertype %(ethertype)s for protocol %(protocol)s."


class SecurityGroupRuleParameterConflict(_RuleInputError):
    message = "Conflicting value ethertype %(ethertype)s for CIDR %(cidr)s"


class SecurityGroupMultipleRemoteEntites(_RuleInputError):
    message = "Only one of remote_ip_prefix or remote_group_id or remote_address_group_id may be provided."


class SecurityGroupNotSingleGroupRules(_RuleInputError):
    message = "Only allowed to update rules for one security profile at a time"


class SecurityGroupRulesNotSingleProject(_RuleInputError):
    message = "Multiple project_ids in bulk security group rule create not allowed"


class InvalidCIDR(_RuleInputError):
    message = "Invalid CIDR %(input)s given as IP prefix."


class SecurityGroupRuleExists(InUse):
    message = "Security group rule already exists. Rule id is %(rule_id)s."


class DuplicateSecurityGroupRuleInPost(InUse):
    message = "Duplicate Security Group Rule in POST."


class SecurityGroupConflict(Conflict):
    message = "Error %(reason)s while attempting the operation."


# ---- the normalised rule ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """One rule with canonical values, as it is stored."""

    direction: str
    ethertype: str
    protocol: str | None  # lower-case name or decimal number, as the caller chose; None = any
    port_range_min: int | None
    port_range_max: int | None
    remote_ip_prefix: str | None  # with a mask; host bits kept as given
    remote_group_id: str | None
    remote_address_group_id: str | None

    @property
    def normalized_cidr(self) -> str | None:
        if self.remote_ip_prefix is None:
            return None
        return str(ipaddress.ip_network(self.remote_ip_prefix, strict=False))

    @property
    def protocol_number(self) -> int | None:
        return protocol_number(self.protocol)

    @property
    def fingerprint(self) -> str:
        """The rule's effect as one string: equal for rules Neutron calls duplicates."""
        prefix = self.remote_ip_prefix
        if prefix in ("0.0.0.0/0", "::/0"):
            prefix = None
        parts = (self.direction, self.ethertype, self.protocol_number, self.port_range_min, self.port_range_max,
                 prefix, self.remote_group_id, self.remote_address_group_id)
        return "|".join("+" if p is None else str(p) for p in parts)

    def values(self) -> dict[str, Any]:
        """Column values of the rule's row."""
        return {"direction": self.direction, "ethertype": self.ethertype, "protocol": self.protocol,
                "port_range_min": self.port_range_min, "port_range_max": self.port_range_max,
                "remote_ip_prefix": self.remote_ip_prefix, "normalized_cidr": self.normalized_cidr,
                "remote_group_id": self.remote_group_id, "remote_address_group_id": self.remote_address_group_id,
                "fingerprint": self.fingerprint}


def protocol_number(protocol: str | None) -> int | None:
    if protocol is None:
        return None
    if protocol in PROTOCOL_NUMBERS:
        return PROTOCOL_NUMBERS[protocol]
    return int(protocol)


def protocol_equivalents(value: str) -> list[str]:
    """Stored spellings that mean the protocol ``value`` names (``tcp`` and ``6``), for filters."""
    low = value.strip().lower()
    number: int | None
    try:
        number = int(low)
    except ValueError:
        number = PROTOCOL_NUMBERS.get(low)
    if number is None:
        return [low]
    names = [name for name, num in PROTOCOL_NUMBERS.items() if num == number]
    return [str(number), *names]


def convert_protocol(value: Any) -> str | None:
    """``None``/``any`` → None; a known name → lower case; an integer 0..255 → its decimal string."""
    if value is None or (isinstance(value, str) and value.lower() == ANY_PROTOCOL):
        return None
    values = list(SUPPORTED_PROTOCOLS)
    if isinstance(value, bool):
        raise SecurityGroupRuleInvalidProtocol(protocol=value, values=values)
    if isinstance(value, int) or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
        number = int(value)
        if 0 <= number <= 255:
            return str(number)
        raise SecurityGroupRuleInvalidProtocol(protocol=value, values=values)
    if isinstance(value, str) and value.lower() in PROTOCOL_NUMBERS:
        return value.lower()
    raise SecurityGroupRuleInvalidProtocol(protocol=value, values=values)


def convert_ethertype(value: Any) -> str:
    if isinstance(value, str):
        for ethertype in ETHERTYPES:
            if ethertype.lower() == value.lower():
                return ethertype
    raise SecurityGroupRuleInvalidEtherType(ethertype=value, values=list(ETHERTYPES))


def convert_port(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise SecurityGroupInvalidPortValue(port=value)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise SecurityGroupInvalidPortValue(port=value) from None
    if isinstance(value, float) and not value.is_integer():
        raise SecurityGroupInvalidPortValue(port=value)
    if not 0 <= number <= 65535:
        raise SecurityGroupInvalidPortValue(port=value)
    return number


def convert_prefix(value: Any) -> str | None:
    """An address or prefix with its mask (``10.0.0.5`` → ``10.0.0.5/32``); host bits are kept."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidCIDR(input=value)
    try:
        iface = ipaddress.ip_interface(value.strip())
    except ValueError:
        raise InvalidCIDR(input=value) from None
    return f"{iface.ip}/{iface.network.prefixlen}"


def _check_ports(protocol: str | None, low: int | None, high: int | None) -> None:
    if low is None and high is None:
        return
    if protocol is None:
        raise SecurityGroupProtocolRequiredWithPorts()
    number = protocol_number(protocol)
    if number in PORT_PROTOCOLS:
        if low == 0 or high == 0:
            raise SecurityGroupInvalidPortValue(port=0)
        if low is None or high is None or low > high:
            raise SecurityGroupInvalidPortRange()
    elif number in ICMP_PROTOCOLS:
        for attr, field, value in (("port_range_min", "type", low), ("port_range_max", "code", high)):
            if value is not None and not 0 <= value <= 255:
                raise SecurityGroupInvalidIcmpValue(field=field, attr=attr, value=value)
        if low is None and high is not None:
            raise SecurityGroupMissingIcmpType(value=high)
    else:
        raise SecurityGroupInvalidProtocolForPort(
            protocol=number, valid_port_protocols=", ".join(n.upper() for n in PORT_PROTOCOL_NAMES))


def normalise_rule(item: Mapping[str, Any]) -> RuleSpec:
    """Validate one rule body and return it in canonical form (Neutron's order of checks)."""
    ethertype = convert_ethertype(item.get("ethertype", IPV4))
    protocol = convert_protocol(item.get("protocol"))
    low, high = convert_port(item.get("port_range_min")), convert_port(item.get("port_range_max"))
    prefix = convert_prefix(item.get("remote_ip_prefix"))
    if ethertype == IPV6:
        # Legacy IPv6 ICMP spellings become the canonical one.
        if protocol in IPV6_ICMP_LEGACY_NAMES:
            protocol = "ipv6-icmp"
        elif protocol == "1":
            protocol = "58"
    if low == PORT_MIN and high == PORT_MAX and protocol_number(protocol) in PORT_PROTOCOLS:
        low = high = None  # the whole range is no range
    _check_ports(protocol, low, high)
    if prefix is not None and ethertype != f"IPv{ipaddress.ip_interface(prefix).version}":
        raise SecurityGroupRuleParameterConflict(ethertype=ethertype, cidr=item.get("remote_ip_prefix"))
    if protocol in IPV6_ONLY_PROTOCOLS and ethertype == IPV4:
        raise SecurityGroupEthertypeConflictWithProtocol(ethertype=ethertype, protocol=protocol)
    remote_group = item.get("remote_group_id") or None
    remote_address_group = item.get("remote_address_group_id") or None
    if sum(x is not None for x in (prefix, remote_group, remote_address_group)) > 1:
        raise SecurityGroupMultipleRemoteEntites()
    return RuleSpec(direction=item["direction"], ethertype=ethertype, protocol=protocol, port_range_min=low,
                    port_range_max=high, remote_ip_prefix=prefix, remote_group_id=remote_group,
                    remote_address_group_id=remote_address_group)


def check_single_group_and_project(items: list[Mapping[str, Any]]) -> None:
    """A bulk create adds rules to one group for one project."""
    if len({i["security_group_id"] for i in items}) > 1:
        raise SecurityGroupNotSingleGroupRules()
    if len({i.get("project_id") for i in items}) > 1:
        raise SecurityGroupRulesNotSingleProject()


def check_no_duplicates_in_request(specs: list[RuleSpec]) -> None:
    fingerprints = [s.fingerprint for s in specs]
    if len(set(fingerprints)) != len(fingerprints):
        raise DuplicateSecurityGroupRuleInPost()
