"""A port's DNS names (``dns-integration``): ``dns_name`` validation and ``dns_assignment``.

With the default domain (``openstacklocal.``) Neutron ignores a port's ``dns_name`` and names each
address ``host-<address with . and : replaced by ->``; with an operator-chosen domain the port's
``dns_name`` (when set) names every address, qualified with that domain.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from neutrino.errors import InvalidInput

DEFAULT_DNS_DOMAIN = "openstacklocal."
FQDN_MAX_LEN = 255
_LABEL = re.compile(r"^[a-z0-9-]{1,63}$")


@dataclass(frozen=True, slots=True)
class DnsAssignment:
    hostname: str
    ip_address: str
    fqdn: str

    def as_dict(self) -> dict[str, str]:
        return {"hostname": self.hostname, "ip_address": self.ip_address, "fqdn": self.fqdn}


def normalize_dns_domain(domain: str) -> str:
    """The configured domain with its trailing dot (``example.org`` → ``example.org.``); ``""`` stays."""
    if not domain:
        return ""
    return domain if domain.endswith(".") else domain + "."


def uses_port_dns_names(dns_domain: str) -> bool:
    """Whether ports' ``dns_name`` means anything: only with a non-default, non-empty domain."""
    domain = normalize_dns_domain(dns_domain)
    return bool(domain) and domain != DEFAULT_DNS_DOMAIN


def effective_dns_name(dns_name: str, dns_domain: str) -> str:
    """The ``dns_name`` a port shows: ``""`` under the default domain (Neutron drops it there)."""
    return dns_name if uses_port_dns_names(dns_domain) else ""


def _format_problem(data: str) -> str | None:
    """RFC 1123 / RFC 952 name syntax, as neutron-lib checks it (labels, hyphens, numeric TLD)."""
    trimmed = data[:-1] if data.endswith(".") else data
    if len(trimmed) > FQDN_MAX_LEN:
        return f"'{trimmed}' exceeds the {FQDN_MAX_LEN} character FQDN limit"
    labels = trimmed.split(".")
    for label in labels:
        if not label:
            return "Encountered an empty component"
        if label.startswith("-") or label.endswith("-"):
            return f"Name '{label}' must not start or end with a hyphen"
        if not _LABEL.match(label):
            return f"Name '{label}' must be 1-63 characters long, each of which can only be alphanumeric or a hyphen"
    if len(labels) > 1 and labels[-1].isdigit():
        return f"TLD '{labels[-1]}' must not be all numeric"
    return None


def validate_dns_name(value: object, dns_domain: str) -> str:
    """A port's requested ``dns_name``, lower-cased and checked; ``InvalidInput`` when unusable.

    A relative name must still fit in an FQDN once the domain is appended; a name ending in ``.``
    must end with the configured domain and have labels of its own.
    """
    if not isinstance(value, str):
        raise InvalidInput(f"'{value}' is not a valid string")
    data = value.lower()
    if not data:
        return ""
    problem = _format_problem(data)
    if problem:
        raise InvalidInput(f"'{data}' not a valid PQDN or FQDN. Reason: {problem}")
    domain = normalize_dns_domain(dns_domain)
    if not uses_port_dns_names(domain):
        return data
    higher = f".{domain}"
    if not data.endswith("."):
        if len(data) + len(higher) > FQDN_MAX_LEN:
            raise InvalidInput(
                f"The dns_name passed is a PQDN and its size is '{len(data)}'. The dns_domain option in "
                f"neutron.conf is set to {dns_domain}, with a length of '{len(higher)}'. When the two are "
                "concatenated to form a FQDN (with a '.' at the end), the resulting length exceeds the "
                f"maximum size of '{FQDN_MAX_LEN}'")
        return data
    if len(data) <= len(higher) or not data.endswith(higher):
        raise InvalidInput(
            "The dns_name passed is a FQDN. Its higher level labels must be equal to the dns_domain option "
            f"in neutron.conf, that has been set to '{dns_domain}'. It must also include one or more valid "
            f"DNS labels to the left of '{dns_domain}'")
    return data


def dns_assignment(ip_addresses: Iterable[str], *, dns_name: str, dns_domain: str,
                   port_dns_domain: str = "") -> tuple[DnsAssignment, ...]:
    """One ``{hostname, ip_address, fqdn}`` per address of the port, in the port's address order.

    ``dns_domain`` is the configured domain; ``port_dns_domain`` the port's (or its network's)
    ``dns_domain``, which replaces it when set and port names are in use.
    """
    domain = normalize_dns_domain(dns_domain)
    name = ""
    if uses_port_dns_names(domain):
        name = dns_name
        if port_dns_domain:
            domain = normalize_dns_domain(port_dns_domain)
    result = []
    for ip in ip_addresses:
        if name:
            hostname = name
            fqdn = name if name.endswith(".") else f"{name}.{domain}"
        else:
            hostname = "host-" + ip.replace(".", "-").replace(":", "-")
            fqdn = f"{hostname}.{domain}" if domain else hostname
        result.append(DnsAssignment(hostname=hostname, ip_address=ip, fqdn=fqdn))
    return tuple(result)
