"""``neutrino agent``: one process per host, running the configured roles against the server's bus."""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from neutrino.agent.link_watch import LinkWatches
from neutrino.agent.process import AgentProcess
from neutrino.agent.roles.base import Role
from neutrino.agent.roles.dhcp.config import DhcpConfig
from neutrino.agent.roles.dhcp.role import DhcpRole
from neutrino.agent.roles.firewall.compile import LogLimit
from neutrino.agent.roles.firewall.role import FirewallConfig, FirewallRole
from neutrino.agent.roles.l2 import LinuxBridgeRole
from neutrino.agent.roles.l2.config import LinuxBridgeConfig, parse_bridge_mappings
from neutrino.agent.roles.l3 import L3Role
from neutrino.agent.roles.l3.config import L3Config
from neutrino.agent.roles.metadata.config import MetadataConfig
from neutrino.agent.roles.metadata.role import MetadataRole
from neutrino.agent.roles.metering.config import MeteringConfig
from neutrino.agent.roles.metering.role import MeteringRole
from neutrino.agent.roles.qos.role import QosConfig, QosRole
from neutrino.agent.roles.qos.uplink import parse_resource_provider_bandwidths
from neutrino.agent.rpc_client import AgentRpcClient
from neutrino.bus.factory import build_bus
from neutrino.bus.memory import MemoryBroker
from neutrino.config import Settings
from neutrino.dataplane.netlink import NetlinkDriver
from neutrino.dataplane.ownership import OwnerTag


@dataclass(frozen=True)
class RoleContext:
    """What a role is built from: the settings, the host, the server's client, and what the
    process's roles share (one link watch per namespace: ``link_watches.get(netns)``)."""

    settings: Settings
    host: str
    rpc: AgentRpcClient
    link_watches: LinkWatches


RoleFactory = Callable[[RoleContext], Role]


def _l2_role(c: RoleContext) -> Role:
    agent = c.settings.agent
    config = LinuxBridgeConfig(host=c.host, tunnel_ip=agent.tunnel_ip or None,
                               bridge_mappings=parse_bridge_mappings(agent.bridge_mappings),
                               netns=agent.netns or None)
    return LinuxBridgeRole(config, c.rpc, link_watch=c.link_watches.get(config.netns))


def _l3_role(c: RoleContext) -> Role:
    agent = c.settings.agent
    return L3Role(L3Config(host=c.host, netns=agent.netns or None, namespace_prefix=agent.namespace_prefix), c.rpc)


def _firewall_role(c: RoleContext) -> Role:
    agent, network_log = c.settings.agent, c.settings.network_log
    log_file = Path(network_log.local_output_log_base or c.settings.state_path / "firewall" / c.host / "network-log.log")
    return FirewallRole(FirewallConfig(host=c.host, netns=agent.netns or None,
                                       bridge_mappings=parse_bridge_mappings(agent.bridge_mappings),
                                       log_limit=LogLimit(network_log.rate_limit, network_log.burst_limit),
                                       log_file=log_file), c.rpc)


def _qos_role(c: RoleContext) -> Role:
    agent = c.settings.agent
    return QosRole(QosConfig(host=c.host, netns=agent.netns or None,
                             bridge_mappings=parse_bridge_mappings(agent.bridge_mappings),
                             bandwidths=parse_resource_provider_bandwidths(agent.resource_provider_bandwidths),
                             tunnel_ip=agent.tunnel_ip or None), c.rpc)


def _dhcp_role(c: RoleContext) -> Role:
    settings, host, agent = c.settings, c.host, c.settings.agent
    config = DhcpConfig(host=host, state_dir=settings.state_path / "dhcp" / host, netns=agent.netns or None,
                        namespace_prefix=agent.namespace_prefix, dns_servers=tuple(agent.dnsmasq_dns_servers))
    return DhcpRole(config, c.rpc)


def _metadata_role(c: RoleContext) -> Role:
    settings, host = c.settings, c.host
    config = MetadataConfig(host=host, state_dir=settings.state_path / "metadata" / host,
                            backend=settings.metadata_backend, secret_file=settings.metadata_secret_path,
                            namespace_prefix=settings.agent.namespace_prefix)
    return MetadataRole(config, c.rpc)


def _metering_role(c: RoleContext) -> Role:
    metering = c.settings.metering
    return MeteringRole(MeteringConfig(host=c.host, namespace_prefix=c.settings.agent.namespace_prefix,
                                       measure_interval=metering.measure_interval_seconds,
                                       report_interval=metering.report_interval_seconds,
                                       granular_traffic_data=metering.granular_traffic_data), c.rpc)


ROLE_FACTORIES: dict[str, RoleFactory] = {"l2": _l2_role, "l3": _l3_role, "dhcp": _dhcp_role,
                                          "metadata": _metadata_role, "firewall": _firewall_role, "qos": _qos_role,
                                          "metering": _metering_role}


class UnknownRole(Exception):
    pass


def build_agent(settings: Settings, *, host: str, roles: Sequence[str], broker: MemoryBroker | None = None
                ) -> AgentProcess:
    unknown = [r for r in roles if r not in ROLE_FACTORIES]
    if unknown:
        raise UnknownRole(f"unknown or not yet available agent role(s): {', '.join(unknown)} "
                          f"(available: {', '.join(ROLE_FACTORIES)})")
    bus = build_bus(settings.bus.url, sender=f"agent.{host}", broker=broker)
    rpc = AgentRpcClient(bus, host, timeout=settings.bus.rpc_timeout_seconds)
    watches = LinkWatches(NetlinkDriver(OwnerTag(host)))
    context = RoleContext(settings, host, rpc, watches)
    return AgentProcess(host=host, bus=bus, rpc=rpc, roles=[ROLE_FACTORIES[r](context) for r in roles],
                        link_watches=watches, report_interval=settings.agent.report_interval_seconds,
                        resync_interval=settings.agent.resync_interval_seconds,
                        availability_zone=settings.agent.availability_zone)


async def run_agent(settings: Settings, host: str, roles: Sequence[str]) -> int:
    agent = build_agent(settings, host=host, roles=roles)
    await agent.bus.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await agent.start()
        await stop.wait()
    finally:
        await agent.stop()
        await agent.bus.close()
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="host name to report (default: [agent] host, else this machine's)")
    parser.add_argument("--roles", help="comma-separated roles (default: [agent] roles): l2, l3, dhcp, metadata, firewall, "
                                        "qos, metering")
    parser.add_argument("--namespace-prefix", help="prefix of this host's qdhcp- namespaces (simulated hosts)")
    parser.add_argument("--netns", help="network namespace that plays this host's root namespace (fullstack)")
    parser.add_argument("--tunnel-ip", help="local VXLAN endpoint address")
    parser.add_argument("--bridge-mapping", action="append", default=None,
                        help="physnet:interface (repeatable)")


def agent_overrides(args: argparse.Namespace) -> dict[str, object]:
    over: dict[str, object] = {}
    if args.host:
        over["host"] = args.host
    if args.roles:
        over["roles"] = args.roles
    if args.netns:
        over["netns"] = args.netns
    if getattr(args, "namespace_prefix", None):
        over["namespace_prefix"] = args.namespace_prefix
    if args.tunnel_ip:
        over["tunnel_ip"] = args.tunnel_ip
    if args.bridge_mapping:
        over["bridge_mappings"] = args.bridge_mapping
    return over


def host_of(settings: Settings) -> str:
    return settings.agent.host or socket.gethostname()
