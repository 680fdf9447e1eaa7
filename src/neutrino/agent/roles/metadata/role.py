"""The metadata role: Neutron's metadata agent (and the L3 agent's metadata redirect) on the reconciler.

Objects are namespaces: each ``qdhcp-`` namespace of a network without a router that this host's
DHCP agent serves, and each ``qrouter-`` namespace of a router this host's L3 agent hosts (from the
role's own ``sync_state("metadata")``; roles never import each other, so the namespaces are
waited for, not made, here). Per namespace: the address map file, one proxy process
(:mod:`neutrino.dataplane.metadata_proxy`), and in a router namespace the nftables table
``ip neutrino-metadata`` redirecting 169.254.169.254:80 to the proxy, and (a router that is not HA)
``ip6 neutrino-metadata`` redirecting [fe80::a9fe:a9fe]:80 from ``qr-`` devices, each of which
carries that address.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from neutrino.agent.actions import NamespaceMissing
from neutrino.agent.reconciler import Reconciler, Target
from neutrino.agent.roles.base import ReconcilingRole
from neutrino.agent.roles.metadata.actions import (
    Action,
    AddMetadataAddress,
    AwaitDevice,
    AwaitNamespace,
    LoadRedirect,
    LoadRedirect6,
    RemoveProxy,
    StartProxy,
    WriteMap,
)
from neutrino.agent.roles.metadata.config import MetadataConfig
from neutrino.agent.roles.metadata.desired import (
    REDIRECT6_FAMILY,
    REDIRECT_FAMILY,
    REDIRECT_TABLE,
    ProxyWish,
    wishes,
)
from neutrino.agent.roles.metadata.plan import MetadataView, ProxyView, plan
from neutrino.agent.rpc_client import AgentRpcClient
from neutrino.contract import codec
from neutrino.contract.events import ChangeHint
from neutrino.contract.metadata import MetadataState
from neutrino.contract.names import ROUTER_NAMESPACE_PREFIX, DeviceRole, device_role
from neutrino.dataplane.dnsmasq import METADATA_V6_CIDR
from neutrino.dataplane.metadata_proxy import MetadataProxyDriver
from neutrino.dataplane.netlink import NetlinkDriver, NetlinkDriverError
from neutrino.dataplane.nftables import NftablesDriver, NftablesError

__all__ = ["MetadataConfig", "MetadataRole"]


class MetadataTarget(Target[str, ProxyWish, MetadataView, Action]):
    name = "metadata"

    def __init__(self, config: MetadataConfig, rpc: AgentRpcClient, driver: NetlinkDriver,
                 proxies: MetadataProxyDriver, nftables: NftablesDriver) -> None:
        self.config = config
        self.rpc = rpc
        self.driver = driver
        self.proxies = proxies
        self.nft = nftables
        self.counts = {"namespaces": 0}
        self.desired_names: tuple[str, ...] = ()

    async def desired(self) -> Mapping[str, ProxyWish]:
        state = codec.decode(MetadataState, await self.rpc.sync_state(self.name))
        wanted = wishes(state, self.config)
        self.counts = {"namespaces": len(wanted)}
        self.desired_names = tuple(wanted)
        return wanted

    async def read(self, keys: Collection[str] | None) -> MetadataView:
        known = self.proxies.namespaces()
        existing = set(await self.driver.list_namespaces())
        names = set(known) | (set(keys) if keys is not None else set())
        if keys is None:
            names |= set(self.desired_names)
        views = {}
        for ns in names:
            digest = digest6 = None
            devices: set[str] = set()
            addressed: set[str] = set()
            if ns in existing and ns.startswith(self.config.namespace_prefix + ROUTER_NAMESPACE_PREFIX):
                with contextlib.suppress(NftablesError):
                    tables = ((REDIRECT_FAMILY, REDIRECT_TABLE), (REDIRECT6_FAMILY, REDIRECT_TABLE))
                    digest, digest6 = (await self.nft.table_digests(tables, netns=ns)).values()
                with contextlib.suppress(NetlinkDriverError):
                    devices = {link.name for link in await self.driver.list_links(netns=ns)
                               if device_role(link.name) is DeviceRole.ROUTER_INTERFACE}
                    addressed = {a.device for a in await self.driver.list_addresses(netns=ns)
                                 if a.cidr == METADATA_V6_CIDR and a.device in devices}
            views[ns] = ProxyView(ns in existing, self.proxies.running(ns) is not None, self.proxies.read_map(ns),
                                  digest, digest6, frozenset(devices), frozenset(addressed))
        return MetadataView(views, known)

    def owned(self, actual: MetadataView) -> Iterable[str]:
        return actual.known

    def plan(self, key: str, desired: ProxyWish | None, actual: MetadataView) -> tuple[Action, ...]:
        return plan(key, desired, actual)

    async def run(self, key: str, action: Action) -> None:
        match action:
            case AwaitNamespace(netns=ns):
                raise NamespaceMissing(f"namespace {ns} does not exist yet")
            case AwaitDevice(netns=ns, device=device):
                raise NamespaceMissing(f"device {device} does not exist in {ns} yet")
            case AddMetadataAddress(netns=ns, device=device):
                await self.driver.ensure_address(device, METADATA_V6_CIDR, netns=ns, nodad=True)
            case LoadRedirect6(netns=ns, body=body):
                await self.nft.replace_table(REDIRECT6_FAMILY, REDIRECT_TABLE, body, netns=ns)
            case WriteMap(netns=ns, content=content):
                self.proxies.write_map(ns, content)
            case StartProxy(netns=ns, port=port):
                await self.proxies.start(ns, port=port, backend=self.config.backend,
                                         secret_file=self.config.secret_file)
            case LoadRedirect(netns=ns, body=body):
                await self.nft.replace_table(REDIRECT_FAMILY, REDIRECT_TABLE, body, netns=ns)
            case RemoveProxy(netns=ns, redirect=redirect, redirect6=redirect6):
                await self.proxies.remove(ns)
                if redirect:
                    await self.nft.remove_table(REDIRECT_FAMILY, REDIRECT_TABLE, netns=ns)
                if redirect6:
                    await self.nft.remove_table(REDIRECT6_FAMILY, REDIRECT_TABLE, netns=ns)


class MetadataRole(ReconcilingRole):
    name = "metadata"
    agent_type = "Metadata agent"
    binary = "neutrino-metadata-agent"
    topic = "N/A"

    def __init__(self, config: MetadataConfig, rpc: AgentRpcClient, *, driver: NetlinkDriver | None = None,
                 debounce_seconds: float = 0.05) -> None:
        driver = driver if driver is not None else NetlinkDriver(config.owner_tag)
        proxies = MetadataProxyDriver(config.state_dir, netns_dir=driver.netns_dir)
        nftables = NftablesDriver(config.owner_tag, driver.netns_dir)
        self.target = MetadataTarget(config, rpc, driver, proxies, nftables)
        self.reconciler = Reconciler(self.target, debounce=debounce_seconds)

    def role_configurations(self) -> Mapping[str, Any]:
        return {"metadata_proxy_socket": self.target.config.backend, "log_agent_heartbeats": False,
                **self.target.counts}

    def on_change(self, hint: ChangeHint) -> None:
        if hint.resource in ("network", "subnet", "port", "router"):
            self.reconciler.request_full()
