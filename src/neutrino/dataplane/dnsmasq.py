"""The dnsmasq driver: one DHCP (and DNS) server per network, inside the network's ``qdhcp-`` namespace.

Two halves, as every driver here:

* **Rendering is pure.** :func:`render` turns a :class:`DnsmasqSpec` (the network's subnets, the
  DHCP port's addresses, every port's MAC/addresses/name/extra options) into the files dnsmasq reads
  (static hosts, DNS names, options) and its command line, the way Neutron's DHCP agent writes
  them: static leases only (``--dhcp-range=set:subnet-<id>,<network>,static,...``), one tag per
  subnet for its options, one tag per port with extra DHCP options.
* **Acting is idempotent.** :meth:`DnsmasqDriver.ensure` writes a file only when its content
  changed (atomically: temporary file, then rename), starts dnsmasq when none runs for the
  network, restarts it only when its command line changed (new subnets), and otherwise sends
  SIGHUP, which makes dnsmasq re-read exactly these files (dnsmasq(8), SIGHUP) without dropping a
  lease or a PID. :meth:`DnsmasqDriver.remove` stops it and deletes its files; absent is success.

The process is run by :class:`~neutrino.dataplane.daemons.DaemonRunner`: found again by its pid file
and checked against /proc (its ``comm``, command line and network namespace) before anything is
signalled, so an agent restart adopts the running dnsmasq with the same PID, and a reused PID is
never signalled. All files live in one directory per network under
the agent's state directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from neutrino.dataplane.daemons import DaemonError, DaemonRunner, Program
from neutrino.dataplane.netlink import NETNS_DIR, NamespaceNotFound, call_in_namespace
from neutrino.dataplane.processes import ProcessFacts

log = logging.getLogger(__name__)

DNSMASQ = "dnsmasq"
LEASE_SECONDS = 86400
# The link-local address Neutron's metadata service answers on.
METADATA_ADDRESS = "169.254.169.254"
# Its IPv6 form (neutron-lib's METADATA_V6_CIDR): the link-local fe80::a9fe:a9fe on the DHCP port, so an
# instance reaches http://[fe80::a9fe:a9fe%eth0]/ without a route.
METADATA_V6_CIDR = "fe80::a9fe:a9fe/64"
# What dnsmasq needs to serve DHCPv6 from a subnet with static leases: a /64 or longer (Neutron skips others).
_MIN_V6_PREFIX = 64
_DHCPV6_MODES = ("dhcpv6-stateful", "dhcpv6-stateless")
FILES = ("host", "addn_hosts", "opts")


class DnsmasqError(DaemonError):
    """dnsmasq could not be started or did not stay running."""


# ---- what one network's server serves ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubnetSpec:
    subnet_id: str
    ip_version: int
    cidr: str
    gateway_ip: str | None = None
    dns_nameservers: tuple[str, ...] = ()
    host_routes: tuple[tuple[str, str], ...] = ()
    ipv6_address_mode: str | None = None
    ipv6_ra_mode: str | None = None


@dataclass(frozen=True, slots=True)
class HostSpec:
    """One port: a static lease per address on a served subnet, a DNS name per address."""

    port_id: str
    mac_address: str
    addresses: tuple[tuple[str, str, str], ...]  # (subnet_id, ip_address, host name)
    extra_options: tuple[tuple[str, str | None, int], ...] = ()  # (name, value, ip version)


@dataclass(frozen=True, slots=True)
class DnsmasqSpec:
    network_id: str
    interface: str                    # ns-<port[:11]> inside the namespace
    domain: str                       # "openstacklocal." or the network's domain
    mtu: int
    subnets: tuple[SubnetSpec, ...]
    server_addresses: Mapping[str, str]  # subnet id -> the DHCP port's address on it
    hosts: tuple[HostSpec, ...] = ()
    metadata_route: bool = False      # 169.254.169.254/32 via the DHCP port (no router on the network)
    dns_servers: tuple[str, ...] = field(default=())  # upstream resolvers; (): answer local names only


@dataclass(frozen=True, slots=True)
class Rendered:
    files: Mapping[str, str]          # name in the network's directory -> content
    arguments: tuple[str, ...]        # dnsmasq's arguments, without the program name


def served_subnets(spec: DnsmasqSpec) -> list[SubnetSpec]:
    """Subnets dnsmasq can serve: IPv4, and IPv6 in DHCPv6 modes (or no mode) with a /64 or longer."""
    out = []
    for subnet in spec.subnets:
        if subnet.subnet_id not in spec.server_addresses:
            continue  # the DHCP port has no address there yet: dnsmasq could not bind the range
        if subnet.ip_version == 6:
            mode_ok = subnet.ipv6_address_mode in _DHCPV6_MODES or not (subnet.ipv6_address_mode or subnet.ipv6_ra_mode)
            if not mode_ok or ipaddress.ip_network(subnet.cidr).prefixlen < _MIN_V6_PREFIX:
                continue
        out.append(subnet)
    return out


def _tag(subnet_id: str) -> str:
    return f"subnet-{subnet_id}"


def _port_tag(port_id: str) -> str:
    return f"port-{port_id}"


def _fqdn(name: str, domain: str) -> str:
    return f"{name}.{domain.rstrip('.')}" if domain.rstrip(".") else name


def _option(name: str, version: int) -> str:
    """Neutron's option naming: a number is ``option:N``, a name ``option:NAME`` (``option6:`` for v6)."""
    prefix = "option6" if version == 6 else "option"
    if name.startswith(("option:", "option6:")):
        return name
    return f"{prefix}:{name}"


def _routes_option(subnet: SubnetSpec, server: str, metadata: bool) -> list[str]:
    """Classless static routes (121): host routes, the metadata route, the default via the gateway."""
    routes = [(d, n) for d, n in subnet.host_routes if ipaddress.ip_network(d).version == 4]
    if metadata and not any(d == f"{METADATA_ADDRESS}/32" for d, _ in routes):
        routes.append((f"{METADATA_ADDRESS}/32", server))
    if not routes:
        return []
    if subnet.gateway_ip and not any(ipaddress.ip_network(d).prefixlen == 0 for d, _ in routes):
        # RFC 3442: a client given option 121 ignores the router option, so the default goes in too.
        routes.append(("0.0.0.0/0", subnet.gateway_ip))
    pairs = ",".join(f"{d},{n}" for d, n in routes)
    tag = _tag(subnet.subnet_id)
    return [f"tag:{tag},option:classless-static-route,{pairs}", f"tag:{tag},249,{pairs}"]


def render(spec: DnsmasqSpec, directory: Path) -> Rendered:
    """The files and command line of the network's dnsmasq (pure; the same spec renders the same text)."""
    subnets = served_subnets(spec)
    served = {s.subnet_id: s for s in subnets}
    domain = spec.domain.rstrip(".")
    hosts, names, opts = [], [], []
    for host in spec.hosts:
        extra = bool(host.extra_options)
        for subnet_id, ip, name in host.addresses:
            subnet = served.get(subnet_id)
            if subnet is None:
                continue
            names.append(f"{ip}\t{_fqdn(name, domain)}\t{name}")
            if subnet.ip_version == 6 and subnet.ipv6_address_mode == "dhcpv6-stateless":
                address = ""  # stateless: options only, the address comes from SLAAC
            else:
                address = f",[{ip}]" if subnet.ip_version == 6 else f",{ip}"
            tag = f"set:{_port_tag(host.port_id)}," if extra else ""
            hosts.append(f"{host.mac_address},{tag}{_fqdn(name, domain)}{address}")
        for name, value, version in host.extra_options:
            opts.append(f"tag:{_port_tag(host.port_id)},{_option(name, version)}" + (f",{value}" if value else ""))
    for subnet in subnets:
        tag = _tag(subnet.subnet_id)
        server = spec.server_addresses[subnet.subnet_id]
        if subnet.ip_version == 4:
            dns = ",".join(subnet.dns_nameservers) or server
            opts.append(f"tag:{tag},option:dns-server,{dns}")
            opts.append(f"tag:{tag},option:router" + (f",{subnet.gateway_ip}" if subnet.gateway_ip else ""))
            opts.extend(_routes_option(subnet, server, spec.metadata_route))
            opts.append(f"tag:{tag},option:mtu,{spec.mtu}")
            if domain:
                opts.append(f"tag:{tag},option:domain-search,{domain}")
        else:
            dns = ",".join(f"[{d}]" for d in subnet.dns_nameservers) or f"[{server}]"
            opts.append(f"tag:{tag},option6:dns-server,{dns}")
            if domain:
                opts.append(f"tag:{tag},option6:domain-search,{domain}")
    arguments = [
        "--no-hosts", "--conf-file=/dev/null", "--bind-interfaces", f"--interface={spec.interface}",
        "--except-interface=lo", f"--pid-file={directory / 'pid'}", f"--dhcp-hostsfile={directory / 'host'}",
        f"--addn-hosts={directory / 'addn_hosts'}", f"--dhcp-optsfile={directory / 'opts'}",
        # Not --dhcp-authoritative (nor does Neutron pass it): with two DHCP agents on a network, an
        # authoritative dnsmasq NAKs the REQUEST a client sends to the other one ("wrong server-ID").
        f"--dhcp-leasefile={directory / 'leases'}",
        # dnsmasq would drop to "nobody", who cannot read the agent's 0700 state directory on SIGHUP.
        "--user=root", "--group=root",
        # As Neutron: the subnets' sizes, never the port count (a new port must not restart dnsmasq).
        f"--dhcp-lease-max={sum(min(ipaddress.ip_network(s.cidr).num_addresses, 2**16) for s in subnets)}",
    ]
    for subnet in subnets:
        network = ipaddress.ip_network(subnet.cidr)
        if subnet.ip_version == 4:
            arguments.append(f"--dhcp-range=set:{_tag(subnet.subnet_id)},{network.network_address},static,"
                             f"{network.netmask},{LEASE_SECONDS}s")
        else:
            arguments.append(f"--dhcp-range=set:{_tag(subnet.subnet_id)},{network.network_address},static,"
                             f"{network.prefixlen},{LEASE_SECONDS}s")
    if domain:
        # Names of the network's ports are answered here and never forwarded upstream.
        arguments += [f"--domain={domain}", f"--local=/{domain}/"]
    # Upstreams are named, never read from resolv.conf: dnsmasq then creates no inotify instance
    # (fs.inotify.max_user_instances, 128 by default, ran out at ~120 networks on one host).
    arguments += ["--no-resolv", *(f"--server={s}" for s in spec.dns_servers)]
    files = {"host": _lines(hosts), "addn_hosts": _lines(names), "opts": _lines(opts)}
    return Rendered(files, tuple(arguments))


def _lines(lines: Sequence[str]) -> str:
    return "".join(line + "\n" for line in lines)


# ---- leases of removed ports ----------------------------------------------------------------------------
# dnsmasq keeps a lease for its whole time after the port is gone, and will not offer a leased address
# to another MAC ("not using configured address ... because it is leased to ..."): Neutron's agent
# releases the leases of removed ports (dnsmasq's dhcp_release); this driver sends the same DHCPRELEASE.

_BOOTP = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")
_MAGIC_COOKIE = b"\x63\x82\x53\x63"
_DHCPRELEASE = 7
DHCP_SERVER_PORT = 67


def static_v4_leases(hosts: str) -> frozenset[tuple[str, str]]:
    """(MAC, IPv4 address) of every static lease in a hosts file as :func:`render` writes it."""
    out = set()
    for line in hosts.splitlines():
        parts = line.split(",")
        try:
            address = ipaddress.ip_address(parts[-1])
        except ValueError:
            continue  # IPv6 ("[...]") or stateless (no address)
        if address.version == 4 and len(parts) >= 3:
            out.add((parts[0].lower(), str(address)))
    return frozenset(out)


def release_packet(mac: str, address: str, server: str) -> bytes:
    """The DHCPRELEASE ``mac`` would send for ``address`` to ``server`` (RFC 2131 4.4.6; as dhcp_release)."""
    head = _BOOTP.pack(1, 1, 6, 0, 0, 0, 0, socket.inet_aton(address), bytes(4), bytes(4), bytes(4),
                       bytes.fromhex(mac.replace(":", "")), b"", b"")
    return head + _MAGIC_COOKIE + bytes([53, 1, _DHCPRELEASE, 54, 4]) + socket.inet_aton(server) + bytes([255])


def releases(spec: DnsmasqSpec, leases: frozenset[tuple[str, str]]) -> tuple[tuple[bytes, str], ...]:
    """(packet, server address) releasing each of ``leases`` that lies in a served IPv4 subnet (pure)."""
    servers = [(ipaddress.ip_network(s.cidr), spec.server_addresses[s.subnet_id])
               for s in served_subnets(spec) if s.ip_version == 4]
    out = []
    for mac, address in sorted(leases):
        server = next((srv for net, srv in servers if ipaddress.ip_address(address) in net), None)
        if server is not None:
            out.append((release_packet(mac, address, server), server))
    return tuple(out)


def pruned_lease_file(text: str, keep: frozenset[tuple[str, str]], keep_v6: frozenset[str] = frozenset()) -> str:
    """The lease file without leases of hosts no longer served (dnsmasq reads it when it starts):
    IPv4 ones by (MAC, address); IPv6 ones (which name no MAC, only the client's DUID) by address,
    ``keep_v6``. The server's ``duid`` line stays."""
    out = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[0] != "duid":
            if ":" in fields[2]:
                if _v6_text(fields[2]) not in keep_v6:
                    continue
            elif (fields[1].lower(), fields[2]) not in keep:
                continue
        out.append(line)
    return _lines(out)


# DHCPv6 leases are the client's (DUID, IAID), not a MAC's, and a RELEASE must name them and the
# server's DUID: the lease file has all three. Neutron's agent releases them with dnsmasq's
# dhcp_release6 (Debian's dnsmasq-utils), run in the namespace on the DHCP port's device.
DHCP_RELEASE6 = "dhcp_release6"


def _v6_text(address: str) -> str:
    try:
        return str(ipaddress.IPv6Address(address.strip("[]")))
    except ValueError:
        return address


def static_v6_hosts(hosts: str) -> frozenset[tuple[str, str]]:
    """(MAC, IPv6 address) of every static DHCPv6 lease in a hosts file as :func:`render` writes it."""
    out = set()
    for line in hosts.splitlines():
        parts = line.split(",")
        last = parts[-1]
        if len(parts) >= 3 and last.startswith("[") and last.endswith("]"):
            out.add((parts[0].lower(), _v6_text(last)))
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class Lease6:
    iaid: str
    address: str
    client_id: str  # the client's DUID, as the lease file writes it (hex, ':' separated)


def v6_leases(text: str) -> tuple[str | None, tuple[Lease6, ...]]:
    """The server's DUID and the IPv6 leases (IA_NA: temporary addresses are not released) of a
    dnsmasq lease file: ``duid <server DUID>``, then ``<expiry> <IAID> <address> <name> <client DUID>``."""
    server, leases = None, []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] == "duid":
            server = fields[1]
        elif len(fields) >= 5 and ":" in fields[2] and fields[1].isdigit() and fields[4] != "*":
            leases.append(Lease6(fields[1], _v6_text(fields[2]), fields[4]))
    return server, tuple(leases)


def release6_commands(interface: str, lease_file: str, addresses: frozenset[str]) -> tuple[tuple[str, ...], ...]:
    """The ``dhcp_release6`` command lines that release the leases of ``addresses`` (pure)."""
    server, leases = v6_leases(lease_file)
    if server is None:
        return ()
    return tuple((DHCP_RELEASE6, "--iface", interface, "--ip", lease.address, "--server-id", server,
                  "--client-id", lease.client_id, "--iaid", lease.iaid)
                 for lease in leases if lease.address in addresses)


# ---- acting -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DnsmasqStatus:
    """One network's server as found: its process (None: not running) and current files."""

    network_id: str
    process: ProcessFacts | None
    arguments: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EnsureOutcome:
    started: bool = False
    restarted: bool = False
    reloaded: bool = False
    files_written: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return self.started or self.restarted or self.reloaded or bool(self.files_written)


def write_if_changed(path: Path, content: str) -> bool:
    """Replace ``path`` with ``content`` unless it holds exactly that already; True if written."""
    try:
        if path.read_text() == content:
            return False
    except OSError:
        pass
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(content)
    tmp.replace(path)
    return True


class DnsmasqDriver:
    """dnsmasq processes of one agent: files under ``state_dir/<network>``, processes in namespaces."""

    def __init__(self, state_dir: Path, *, netns_dir: Path = NETNS_DIR, program: str = DNSMASQ) -> None:
        self.state_dir = state_dir
        self.netns_dir = netns_dir
        # dnsmasq forks into the background once it has bound its sockets; the launcher returns then.
        self.runner = DaemonRunner(Program((program,), comm=DNSMASQ, start_timeout=5.0), netns_dir=netns_dir)

    def directory(self, network_id: str) -> Path:
        return self.state_dir / network_id

    def _pid_file(self, network_id: str) -> Path:
        return self.directory(network_id) / "pid"

    def running(self, network_id: str, netns: str | None = None) -> ProcessFacts | None:
        """The network's dnsmasq if its pid file names a live dnsmasq (in ``netns`` when given)."""
        return self.runner.find(self._pid_file(network_id), netns)

    def status(self, network_id: str, netns: str | None = None) -> DnsmasqStatus:
        facts = self.running(network_id, netns)
        return DnsmasqStatus(network_id, facts, self.runner.arguments(facts) if facts else ())

    def networks(self) -> tuple[str, ...]:
        """Networks this driver has a directory for (served now, or left over to remove)."""
        if not self.state_dir.is_dir():
            return ()
        return tuple(sorted(p.name for p in self.state_dir.iterdir() if p.is_dir() and not p.name.startswith(".")))

    async def ensure(self, spec: DnsmasqSpec, netns: str) -> EnsureOutcome:
        """Serve ``spec`` from ``netns``: files up to date, dnsmasq running with them (idempotent)."""
        directory = self.directory(spec.network_id)
        directory.mkdir(parents=True, exist_ok=True)
        rendered = render(spec, directory)
        try:
            hosts_before = (directory / "host").read_text()
        except OSError:
            hosts_before = ""
        written = tuple(name for name, content in rendered.files.items()
                        if write_if_changed(directory / name, content))
        current = self.running(spec.network_id, netns)
        if current is not None and self.runner.arguments(current) == rendered.arguments:
            if written:
                hosts = rendered.files["host"]
                await self._release(spec, netns, static_v4_leases(hosts_before) - static_v4_leases(hosts))
                await self._release6(spec, netns, static_v6_hosts(hosts_before) - static_v6_hosts(hosts))
                self.runner.reload(current)
            return EnsureOutcome(reloaded=bool(written), files_written=written)
        if current is not None:
            await self.runner.stop(self._pid_file(spec.network_id), netns)
        with contextlib.suppress(OSError):
            leases = directory / "leases"
            hosts = rendered.files["host"]
            write_if_changed(leases, pruned_lease_file(leases.read_text(), static_v4_leases(hosts),
                                                       frozenset(ip for _, ip in static_v6_hosts(hosts))))
        try:
            await self.runner.start(netns, rendered.arguments, self._pid_file(spec.network_id))
        except (DaemonError, NamespaceNotFound) as e:
            raise DnsmasqError(f"dnsmasq for network {spec.network_id}: {e}") from e
        return EnsureOutcome(started=current is None, restarted=current is not None, files_written=written)

    async def _release(self, spec: DnsmasqSpec, netns: str, leases: frozenset[tuple[str, str]]) -> None:
        """Send dnsmasq a DHCPRELEASE for each lease, from inside the namespace on the DHCP port's device
        (dnsmasq then sees it arrive on the interface it serves, as from dhcp_release)."""
        packets = releases(spec, leases)
        if not packets:
            return

        def send() -> None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, spec.interface.encode())
                for packet, server in packets:
                    sock.sendto(packet, (server, DHCP_SERVER_PORT))

        try:
            await call_in_namespace(self.netns_dir / netns, send)
        except OSError as e:  # the lease then lasts its time; the next port on the address waits for it
            log.warning("releasing %d lease(s) of network %s failed: %s", len(packets), spec.network_id, e)

    async def _release6(self, spec: DnsmasqSpec, netns: str, removed: frozenset[tuple[str, str]]) -> None:
        """Release the DHCPv6 leases of the addresses of hosts no longer served (or served to another
        MAC): dnsmasq would otherwise keep them for the lease time and offer them to nobody else."""
        if not removed:
            return
        try:
            lease_file = (self.directory(spec.network_id) / "leases").read_text()
        except OSError:
            return
        for argv in release6_commands(spec.interface, lease_file, frozenset(ip for _, ip in removed)):
            try:
                proc = await asyncio.create_subprocess_exec(
                    "nsenter", f"--net={self.netns_dir / netns}", *argv,
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
                _, err = await proc.communicate()
            except OSError as e:  # dhcp_release6 missing: the lease lasts its time, as without release
                log.warning("releasing DHCPv6 leases of network %s failed: %s", spec.network_id, e)
                return
            if proc.returncode:
                log.warning("%s failed for network %s: %s", " ".join(argv), spec.network_id, err.decode().strip())

    async def remove(self, network_id: str) -> bool:
        """Stop the network's dnsmasq (wherever it runs) and delete its files; True if it ran."""
        ran = await self.runner.stop(self._pid_file(network_id))
        directory = self.directory(network_id)
        if directory.is_dir():
            for entry in directory.iterdir():
                entry.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                directory.rmdir()
        return ran


__all__ = ["DnsmasqDriver", "DnsmasqError", "DnsmasqSpec", "DnsmasqStatus", "EnsureOutcome", "HostSpec",
           "Rendered", "SubnetSpec", "METADATA_ADDRESS", "METADATA_V6_CIDR", "render", "served_subnets", "write_if_changed"]
