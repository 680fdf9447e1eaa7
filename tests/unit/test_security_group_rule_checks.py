"""Security group rule normalisation: canonical values, Neutron's typed errors, effect fingerprints."""

from __future__ import annotations

import pytest

from neutrino.services import security_group_rule_checks as checks
from neutrino.services.security_group_rule_checks import normalise_rule


def rule(**attrs: object) -> checks.RuleSpec:
    return normalise_rule({"direction": "ingress", **attrs})


def test_protocol_names_are_lower_case_and_numbers_decimal_strings() -> None:
    assert rule(protocol="TCP").protocol == "tcp"
    assert rule(protocol=6).protocol == "6"
    assert rule(protocol="any").protocol is None
    assert rule(protocol=None).protocol is None
    for bad in ("bogus", 256, -1, True, 1.5):
        with pytest.raises(checks.SecurityGroupRuleInvalidProtocol):
            rule(protocol=bad)


def test_same_effect_same_fingerprint() -> None:
    by_name = rule(protocol="tcp", port_range_min=22, port_range_max=22)
    assert by_name.fingerprint == rule(protocol="6", port_range_min="22", port_range_max=22).fingerprint
    assert rule(remote_ip_prefix="0.0.0.0/0").fingerprint == rule().fingerprint
    assert rule(ethertype="IPv6", remote_ip_prefix="::/0").fingerprint == rule(ethertype="ipv6").fingerprint
    assert rule(protocol="udp").fingerprint != rule(protocol="tcp").fingerprint
    assert rule(direction="egress").fingerprint != rule().fingerprint


def test_ipv6_icmp_spellings_become_ipv6_icmp() -> None:
    assert rule(ethertype="IPv6", protocol="icmp").protocol == "ipv6-icmp"
    assert rule(ethertype="IPv6", protocol="icmpv6").protocol == "ipv6-icmp"
    assert rule(ethertype="IPv6", protocol="1").protocol == "58"
    with pytest.raises(checks.SecurityGroupEthertypeConflictWithProtocol):
        rule(protocol="ipv6-icmp")


def test_port_ranges_follow_the_protocol() -> None:
    assert (rule(protocol="tcp", port_range_min=1, port_range_max=65535).port_range_min,) == (None,)
    with pytest.raises(checks.SecurityGroupInvalidPortRange):
        rule(protocol="tcp", port_range_min=10)
    with pytest.raises(checks.SecurityGroupInvalidPortValue):
        rule(protocol="tcp", port_range_min=0, port_range_max=5)
    with pytest.raises(checks.SecurityGroupInvalidPortValue):
        rule(protocol="tcp", port_range_min=1, port_range_max=70000)
    with pytest.raises(checks.SecurityGroupProtocolRequiredWithPorts):
        rule(port_range_min=1, port_range_max=2)
    with pytest.raises(checks.SecurityGroupInvalidProtocolForPort):
        rule(protocol="gre", port_range_min=1, port_range_max=2)
    icmp = rule(protocol="icmp", port_range_min=8, port_range_max=0)
    assert (icmp.port_range_min, icmp.port_range_max) == (8, 0)
    with pytest.raises(checks.SecurityGroupMissingIcmpType):
        rule(protocol="icmp", port_range_max=0)
    with pytest.raises(checks.SecurityGroupInvalidIcmpValue):
        rule(protocol="icmp", port_range_min=300)


def test_remote_prefix_gets_a_mask_keeps_host_bits_and_matches_the_ethertype() -> None:
    lab = rule(remote_ip_prefix="10.1.2.3/24")
    assert (lab.remote_ip_prefix, lab.normalized_cidr) == ("10.1.2.3/24", "10.1.2.0/24")
    assert rule(remote_ip_prefix="10.0.0.1").remote_ip_prefix == "10.0.0.1/32"
    assert rule(ethertype="IPv6", remote_ip_prefix="2001:DB8::1").remote_ip_prefix == "2001:db8::1/128"
    with pytest.raises(checks.InvalidCIDR):
        rule(remote_ip_prefix="10.0.0.0/33")
    with pytest.raises(checks.SecurityGroupRuleParameterConflict):
        rule(ethertype="IPv6", remote_ip_prefix="10.0.0.0/8")
    with pytest.raises(checks.SecurityGroupMultipleRemoteEntites):
        rule(remote_ip_prefix="10.0.0.0/8", remote_group_id="g")


def test_bulk_requests_are_one_group_one_project_and_without_repeats() -> None:
    with pytest.raises(checks.SecurityGroupNotSingleGroupRules):
        checks.check_single_group_and_project([{"security_group_id": "a"}, {"security_group_id": "b"}])
    with pytest.raises(checks.SecurityGroupRulesNotSingleProject):
        checks.check_single_group_and_project([{"security_group_id": "a", "project_id": "p"},
                                               {"security_group_id": "a", "project_id": "q"}])
    with pytest.raises(checks.DuplicateSecurityGroupRuleInPost):
        checks.check_no_duplicates_in_request([rule(protocol="tcp"), rule(protocol="6")])


def test_protocol_filter_spellings() -> None:
    assert set(checks.protocol_equivalents("tcp")) == {"tcp", "6"}
    assert set(checks.protocol_equivalents("58")) == {"58", "ipv6-icmp", "icmpv6"}
    assert checks.protocol_equivalents("weird") == ["weird"]
