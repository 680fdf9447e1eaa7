"""dns_assignment and dns_name rules."""

from __future__ import annotations

import pytest

from neutrino import errors
from neutrino.services.ipam.dns import (
    DEFAULT_DNS_DOMAIN,
    dns_assignment,
    effective_dns_name,
    normalize_dns_domain,
    validate_dns_name,
)


def test_default_domain_uses_address_derived_hostnames():
    (entry,) = dns_assignment(["10.0.0.5"], dns_name="ignored", dns_domain=DEFAULT_DNS_DOMAIN)
    assert entry.as_dict() == {"hostname": "host-10-0-0-5", "ip_address": "10.0.0.5",
                               "fqdn": "host-10-0-0-5.openstacklocal."}


def test_ipv6_colons_become_dashes():
    (entry,) = dns_assignment(["fd00:10::f816:3eff:fe71:f622"], dns_name="", dns_domain="openstacklocal")
    assert entry.hostname == "host-fd00-10--f816-3eff-fe71-f622"
    assert entry.fqdn == "host-fd00-10--f816-3eff-fe71-f622.openstacklocal."


def test_one_entry_per_address_in_order():
    entries = dns_assignment(["10.0.0.5", "fd00::5"], dns_name="", dns_domain=DEFAULT_DNS_DOMAIN)
    assert [e.ip_address for e in entries] == ["10.0.0.5", "fd00::5"]
    assert dns_assignment([], dns_name="", dns_domain=DEFAULT_DNS_DOMAIN) == ()


def test_custom_domain_uses_port_dns_name():
    entries = dns_assignment(["10.0.0.5", "fd00::5"], dns_name="vm1", dns_domain="example.org")
    assert [(e.hostname, e.fqdn) for e in entries] == [("vm1", "vm1.example.org."), ("vm1", "vm1.example.org.")]


def test_custom_domain_without_dns_name_falls_back_to_address_names():
    (entry,) = dns_assignment(["10.0.0.5"], dns_name="", dns_domain="example.org.")
    assert entry.fqdn == "host-10-0-0-5.example.org."


def test_port_domain_overrides_configured_one():
    (entry,) = dns_assignment(["10.0.0.5"], dns_name="vm1", dns_domain="example.org.", port_dns_domain="corp.example")
    assert entry.fqdn == "vm1.corp.example."


def test_fully_qualified_dns_name_is_used_as_is():
    (entry,) = dns_assignment(["10.0.0.5"], dns_name="vm1.example.org.", dns_domain="example.org.")
    assert entry.fqdn == "vm1.example.org."


def test_dns_name_is_hidden_under_default_domain():
    assert effective_dns_name("vm1", DEFAULT_DNS_DOMAIN) == ""
    assert effective_dns_name("vm1", "example.org") == "vm1"
    assert normalize_dns_domain("example.org") == "example.org." and normalize_dns_domain("") == ""


def test_dns_name_is_lowercased_and_checked():
    assert validate_dns_name("VM-1", "example.org.") == "vm-1"
    assert validate_dns_name("", "example.org.") == ""
    assert validate_dns_name("vm1.example.org.", "example.org.") == "vm1.example.org."


@pytest.mark.parametrize(("name", "reason"), [
    ("-vm", "Name '-vm' must not start or end with a hyphen"),
    ("vm_1", "Name 'vm_1' must be 1-63 characters long, each of which can only be alphanumeric or a hyphen"),
    ("vm..a", "Encountered an empty component"),
    ("vm.123", "TLD '123' must not be all numeric"),
])
def test_malformed_dns_names(name, reason):
    with pytest.raises(errors.InvalidInput) as excinfo:
        validate_dns_name(name, "example.org.")
    assert f"'{name}' not a valid PQDN or FQDN. Reason: {reason}" in str(excinfo.value)


def test_fqdn_must_end_in_configured_domain():
    with pytest.raises(errors.InvalidInput) as excinfo:
        validate_dns_name("vm1.other.org.", "example.org.")
    assert "The dns_name passed is a FQDN." in str(excinfo.value)
