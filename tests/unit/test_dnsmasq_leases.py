"""Which leases the dnsmasq driver releases or drops when ports go (pure parts of ``dataplane.dnsmasq``)."""

from __future__ import annotations

import socket

from neutrino.dataplane.dnsmasq import (
    DnsmasqSpec,
    SubnetSpec,
    pruned_lease_file,
    release6_commands,
    release_packet,
    releases,
    static_v4_leases,
    static_v6_hosts,
)

HOSTS = ("fa:16:3e:00:00:01,host-10-0-0-5.openstacklocal,10.0.0.5\n"
         "fa:16:3e:00:00:02,set:port-p2,vm.openstacklocal,10.0.0.6\n"
         "fa:16:3e:00:00:03,host-v6.openstacklocal,[2001:db8::5]\n"
         "fa:16:3e:00:00:04,stateless.openstacklocal\n")


def test_static_v4_leases_are_the_ipv4_lines_of_the_hosts_file() -> None:
    assert static_v4_leases(HOSTS) == {("fa:16:3e:00:00:01", "10.0.0.5"), ("fa:16:3e:00:00:02", "10.0.0.6")}


def test_a_release_names_the_client_address_mac_and_server() -> None:
    packet = release_packet("fa:16:3e:00:00:01", "10.0.0.5", "10.0.0.2")
    assert packet[0] == 1 and packet[12:16] == socket.inet_aton("10.0.0.5")
    assert packet[28:34] == bytes.fromhex("fa163e000001")
    assert packet[236:240] == b"\x63\x82\x53\x63"
    assert packet[240:] == bytes([53, 1, 7, 54, 4]) + socket.inet_aton("10.0.0.2") + bytes([255])


def test_releases_go_to_the_dhcp_port_address_of_the_lease_subnet_only() -> None:
    spec = DnsmasqSpec("n", "ns-x", "openstacklocal.", 1500,
                       (SubnetSpec("a", 4, "10.0.0.0/24"), SubnetSpec("b", 4, "10.1.0.0/24")),
                       {"a": "10.0.0.2", "b": "10.1.0.2"})
    out = releases(spec, frozenset({("fa:16:3e:00:00:01", "10.1.0.9"), ("fa:16:3e:00:00:02", "192.0.2.1")}))
    assert [server for _, server in out] == ["10.1.0.2"]


def test_a_restart_keeps_only_the_leases_of_served_hosts() -> None:
    text = ("1733400000 fa:16:3e:00:00:01 10.0.0.5 host-10-0-0-5 *\n"
            "1733400000 fa:16:3e:00:00:09 10.0.0.9 gone *\n"
            "duid 00:01:00:01:2e:00\n"
            "1733400000 1234 2001:db8::5 host-v6 00:01\n")
    kept = pruned_lease_file(text, static_v4_leases(HOSTS), frozenset(ip for _, ip in static_v6_hosts(HOSTS)))
    assert "10.0.0.9" not in kept and "10.0.0.5" in kept and "duid" in kept and "2001:db8::5" in kept
    # An IPv6 lease whose address no host has any more goes too (its line names no MAC).
    assert "2001:db8::5" not in pruned_lease_file(text, static_v4_leases(HOSTS))


def test_static_v6_hosts_are_the_stateful_ipv6_lines_of_the_hosts_file() -> None:
    assert static_v6_hosts(HOSTS) == {("fa:16:3e:00:00:03", "2001:db8::5")}


def test_a_dhcpv6_release_names_the_lease_client_duid_iaid_and_the_server_duid() -> None:
    text = ("duid 00:01:00:01:2e:00\n"
            "1733400000 1234 2001:db8::5 host-v6 00:01:00:01:aa:bb\n"
            "1733400000 T77 2001:db8::7 temp 00:01:00:01:cc:dd\n"
            "1733400000 99 2001:db8::6 kept 00:01:00:01:ee:ff\n")
    assert release6_commands("ns-x", text, frozenset({"2001:db8::5", "2001:db8::7"})) == (
        ("dhcp_release6", "--iface", "ns-x", "--ip", "2001:db8::5", "--server-id", "00:01:00:01:2e:00",
         "--client-id", "00:01:00:01:aa:bb", "--iaid", "1234"),)
    assert release6_commands("ns-x", text.split("\n", 1)[1], frozenset({"2001:db8::5"})) == ()
