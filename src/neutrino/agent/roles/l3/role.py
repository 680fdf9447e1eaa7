"""The l3 role: Neutron's L3 agent (legacy routers, Linux bridge interface driver) on the reconciler.

Desired objects are the routers scheduled to this host's L3 agent (``sync_state("l3")``), keyed by
id; ``L3Kernel`` reads the router namespaces this host owns, plans each router with the pure
``plan.plan_object`` and is the only code that changes them. Per router: a namespace
``qrouter-<router>`` with forwarding on; per interface port a veth whose host end is
``tap<port[:11]>`` (the host's L2 role wires it into the network's bridge and reports the port up,
exactly as for an instance) and whose router end is ``qr-<port[:11]>`` with the port's MAC and
addresses; the gateway port likewise as ``qg-``, with the default route via the external subnet's
gateway; extra routes (several nexthops of one destination: one ECMP route); SNAT, floating IPs,
port forwardings and hairpin NAT as one nftables table in the namespace (``nat.py``); a gratuitous
ARP out of ``qg-`` for each floating IP that comes onto it; radvd for its IPv6 subnets with an
``ipv6_ra_mode`` (``ra.py``, run by ``dataplane/radvd.py``); bandwidth limits of floating IPs and
the gateway IP on ``qg-`` (``qos.py``, with ``dataplane/address_shaping.py``); NDP proxies on ``qg-``
(``ndp_proxy.py``, with ``dataplane/neighbours.py``). After each round the routers'
statuses (ACTIVE, or ERROR while their wiring fails) and the floating IPs' go to the server.
Server events are hints for a (debounced) full resync.

HA routers (L3 HA) also get an ``ha-`` port on the project's HA network and keepalived
(``vrrp.py``, run by ``dataplane/keepalived.py``), which holds their addresses and routes on the
VRRP master only. Their VRRP state is read from the kernel (does the ``ha-`` device hold the
instance's primary virtual address?) every ``ha_poll_seconds`` by a watch next to the reconciler,
and each change goes to the server (``update_ha_router_states``), which shows it as ``ha_state``
and moves the router's ports' bindings to the active host.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from neutrino.agent.actions import carry_out
from neutrino.agent.reconciler import Reconciler, Round, Target
from neutrino.agent.roles.base import ReconcilingRole
from neutrino.agent.roles.l3 import desired as l3_desired
from neutrino.agent.roles.l3.actions import (
    Action,
    AddMultipathRoute,
    AddRoute,
    AnnounceAddress,
    EnsureKeepalived,
    EnsureNamespace,
    EnsureRadvd,
    LoadNat,
    LoadNdpFilter,
    ProxyNeighbour,
    RemoveNamespace,
    RemoveNat,
    RemoveNdpFilter,
    RemoveRoute,
    SetSysctl,
    ShapeGateway,
    StopKeepalived,
    StopRadvd,
    UnproxyNeighbour,
)
from neutrino.agent.roles.l3.config import L3Config
from neutrino.agent.roles.l3.nat import NAT_FAMILY, NAT_TABLE
from neutrino.agent.roles.l3.ndp_proxy import NDP_FAMILY, NDP_TABLE, proxied_addresses, proxy_sysctl
from neutrino.agent.roles.l3.plan import (
    ADDR_GEN_MODE,
    FORWARDING,
    HA_SYSCTLS,
    L3KernelView,
    RouterView,
    device_forwarding_key,
    plan_object,
)
from neutrino.agent.roles.l3.qos import ShapingView, gateway_limits
from neutrino.agent.roles.l3.vrrp import primary_vip
from neutrino.agent.rpc_client import AgentRpcClient
from neutrino.bus.errors import BusError
from neutrino.contract import codec
from neutrino.contract.events import ChangeHint
from neutrino.contract.l3 import L3Router, L3State
from neutrino.contract.names import (
    DeviceRole,
    device_role,
    ha_interface_name,
    router_namespace,
    router_of_namespace,
)
from neutrino.dataplane.address_shaping import AddressShaper
from neutrino.dataplane.keepalived import KeepalivedDaemons
from neutrino.dataplane.neighbours import ProxyNeighbours
from neutrino.dataplane.netlink import NamespaceNotFound, NetlinkDriver, NetlinkDriverError
from neutrino.dataplane.nftables import NftablesDriver, NftablesError
from neutrino.dataplane.radvd import radvd_daemons
from neutrino.dataplane.tc import TcDriver, ifb_of

__all__ = ["L3Config", "L3Kernel", "L3Role"]

log = logging.getLogger(__name__)


class L3Kernel(Target[str, L3Router, L3KernelView, Action]):
    """The router namespaces of one host, as the reconciler sees them."""

    name = "l3"

    def __init__(self, config: L3Config, rpc: AgentRpcClient, driver: NetlinkDriver, nft: NftablesDriver) -> None:
        self.config = config
        self._rpc = rpc
        self._driver = driver
        self._nft = nft
        self._shaper = AddressShaper(TcDriver(config.owner_tag, driver.netns_dir))
        self._neighbours = ProxyNeighbours(driver.netns_dir)
        self._radvd = radvd_daemons(config.daemon_dir, netns_dir=driver.netns_dir)
        self._keepalived = KeepalivedDaemons(config.daemon_dir / "keepalived", netns_dir=driver.netns_dir)
        self._prefix = config.namespace_prefix

    async def desired(self) -> Mapping[str, L3Router]:
        return l3_desired.keyed(codec.decode(L3State, await self._rpc.sync_state("l3")))

    def _router_of(self, namespace: str) -> str | None:
        return router_of_namespace(namespace, prefix=self._prefix)

    def owned(self, actual: L3KernelView) -> Iterable[str]:
        return (r for r in map(self._router_of, actual.namespaces) if r is not None)

    def plan(self, key: str, desired: L3Router | None, actual: L3KernelView) -> tuple[Action, ...]:
        return plan_object(key, desired, actual, self._prefix)

    async def read(self, keys: Collection[str] | None) -> L3KernelView:
        namespaces: dict[str, RouterView] = {}
        for name in await self._driver.list_namespaces():
            if self._router_of(name) is None:
                continue
            try:
                loopback = await self._driver.get_link("lo", netns=name)
                if loopback is None or not self.config.owner_tag.owns(loopback.alias):
                    continue
                namespaces[name] = await self._read_router(name)
            except NamespaceNotFound:
                continue
        host_links = {link.name: link for link in await self._driver.list_links(netns=self.config.netns)
                      if device_role(link.name) is DeviceRole.TAP}
        return L3KernelView(namespaces, host_links)

    async def _read_router(self, ns: str) -> RouterView:
        links = {link.name: link for link in await self._driver.list_links(netns=ns)}
        addresses: dict[str, set[str]] = {}
        for address in await self._driver.list_addresses(netns=ns):
            if address.scope == "global":
                addresses.setdefault(address.device, set()).add(address.cidr)
        routes = await self._driver.list_routes(netns=ns)
        gateways = [name for name in links if device_role(name) is DeviceRole.ROUTER_GATEWAY]
        # One entry into the namespace for every sysctl; the devices' forwarding counts for HA routers.
        devices = {device_forwarding_key(name): name for name in links
                   if device_role(name) in (DeviceRole.ROUTER_INTERFACE, DeviceRole.ROUTER_GATEWAY)}
        proxying = [proxy_sysctl(g) for g in gateways]
        values: dict[str, str] = {}
        with contextlib.suppress(OSError, NetlinkDriverError):
            values = await self._driver.get_sysctls(
                [*(k for k, _ in (*HA_SYSCTLS, *FORWARDING)), *devices, *proxying], netns=ns)
        sysctls = {k: v for k, v in values.items() if k not in devices and k not in proxying}
        forwarding = ({devices[k]: v for k, v in values.items() if k in devices}
                      if sysctls.get(ADDR_GEN_MODE) == "1" else {})  # an HA router's namespace
        device_sysctls = {k: values[k] for k in proxying if k in values}
        digests: dict[tuple[str, str], str | None] = {}
        with contextlib.suppress(NftablesError):
            digests = await self._nft.table_digests(((NAT_FAMILY, NAT_TABLE), (NDP_FAMILY, NDP_TABLE)), netns=ns)
        digest = digests.get((NAT_FAMILY, NAT_TABLE))
        router_id = self._router_of(ns)
        radvd = self._radvd.state(router_id).config_digest if router_id is not None else None
        keepalived = self._keepalived.state(router_id).config_digest if router_id is not None else None
        ifbs = frozenset(n for n, link in links.items() if link.kind == "ifb" and self.config.owner_tag.owns(link.alias))
        # tc is asked only about a gateway with an htb root or an IFB (an ingress redirect is made
        # after its IFB and removed before it): no process for a router without limits.
        shaping = ShapingView({g: await self._shaper.read(g, ifb_of(g), netns=ns) for g in gateways
                               if links[g].qdisc == "htb" or ifb_of(g) in ifbs}, ifbs)
        # Entries are only read where proxy_ndp is on (the plan turns it off only after them): one
        # process less per router without NDP proxies.
        proxies = {g: await self._neighbours.list(g, netns=ns) for g in gateways
                   if device_sysctls.get(proxy_sysctl(g)) == "1"}
        ndp_digest = digests.get((NDP_FAMILY, NDP_TABLE))
        return RouterView(links, {d: frozenset(c) for d, c in addresses.items()}, routes, sysctls, digest, radvd,
                          keepalived, shaping, {g: p for g, p in proxies.items() if p}, device_sysctls, ndp_digest,
                          device_forwarding=forwarding)

    async def run(self, key: str, action: Action) -> None:
        d = self._driver
        if await carry_out(d, action, host_netns=self.config.netns):
            return  # the namespace, router ports' veths, addresses, device removal
        match action:
            case SetSysctl(netns=ns, key=sysctl, value=value):
                await d.set_sysctl(sysctl, value, netns=ns)
            case AddRoute(netns=ns, destination=destination, gateway=gateway, device=device):
                await d.ensure_route(destination, gateway=gateway, device=device, netns=ns)
            case AddMultipathRoute(netns=ns, destination=destination, gateways=gateways):
                await d.ensure_multipath_route(destination, gateways, netns=ns)
            case EnsureRadvd(netns=ns, router_id=router_id, config=config):
                await self._radvd.ensure(router_id, ns, config)
            case StopRadvd(router_id=router_id):
                await self._radvd.stop(router_id)
            case EnsureKeepalived(netns=ns, router_id=router_id, config=config):
                await self._keepalived.ensure(router_id, ns, config)
            case StopKeepalived(router_id=router_id):
                await self._keepalived.stop(router_id)
            case RemoveRoute(netns=ns, destination=destination):
                await d.remove_route(destination, netns=ns)
            case LoadNat(netns=ns, body=body):
                await self._nft.replace_table(NAT_FAMILY, NAT_TABLE, body, netns=ns)
            case RemoveNat(netns=ns):
                await self._nft.remove_table(NAT_FAMILY, NAT_TABLE, netns=ns)
            case ShapeGateway(netns=ns, device=device, ifb=ifb, egress=egress, ingress=ingress):
                await self._shaper.shape(device, ifb, egress, ingress, netns=ns)
            case ProxyNeighbour(netns=ns, device=device, address=address):
                await self._neighbours.add(device, address, netns=ns)
            case UnproxyNeighbour(netns=ns, device=device, address=address):
                await self._neighbours.remove(device, address, netns=ns)
            case LoadNdpFilter(netns=ns, body=body):
                await self._nft.replace_table(NDP_FAMILY, NDP_TABLE, body, netns=ns)
            case RemoveNdpFilter(netns=ns):
                await self._nft.remove_table(NDP_FAMILY, NDP_TABLE, netns=ns)
            case AnnounceAddress(netns=ns, device=device, address=address):
                await d.send_gratuitous_arp(device, address, netns=ns)
            case RemoveNamespace(netns=ns):
                # Router ends first: their taps go at once (a namespace is destroyed lazily).
                with contextlib.suppress(NamespaceNotFound):
                    for link in await d.list_owned(netns=ns):
                        await d.remove_link(link.name, netns=ns)
                await d.remove_namespace(ns)

    async def vrrp_states(self, routers: Iterable[L3Router]) -> dict[str, str]:
        """router id -> ``active``/``standby``: whether its ``ha-`` device holds the VRRP
        instance's primary virtual address here (only the master does)."""
        states = {}
        for router in routers:
            if router.ha is None:
                continue
            ns = router_namespace(router.router_id, prefix=self._prefix)
            vip = str(ipaddress.ip_interface(primary_vip(router.ha.vr_id)))
            try:
                held = {a.cidr for a in await self._driver.list_addresses(
                    device=ha_interface_name(router.ha.port.port_id), netns=ns)}
            except (NamespaceNotFound, NetlinkDriverError, OSError):
                continue  # not wired yet (or going): nothing to say
            states[router.router_id] = "active" if vip in held else "standby"
        return states

    async def report_states(self, states: Mapping[str, str]) -> bool:
        try:
            await self._rpc.update_ha_router_states(dict(states))
        except BusError as exc:
            log.warning("could not report HA router states: %s", exc)
            return False
        return True

    async def settled(self, done: Round[str, Action], desired: Mapping[str, L3Router], actual: L3KernelView) -> None:
        """Tell the server the status of the routers this round looked at (ERROR while their wiring
        fails: the reason is logged and in the heartbeat's ``reconciler.failed_objects``) and of
        their floating IPs."""
        statuses: dict[str, str] = {}
        router_statuses: dict[str, str] = {}
        for router_id, outcome in done.outcomes.items():
            router = desired.get(router_id)
            if router is None:
                continue
            if outcome.error is not None:
                log.error("router %s could not be wired: %s", router_id, outcome.error)
            router_status = "ERROR" if outcome.error is not None else "ACTIVE"
            if router_status != router.status:
                router_statuses[router_id] = router_status
            # NAT is missing when the namespace or the NAT table failed, or an earlier failure stopped it.
            broken = outcome.error is not None and any(
                isinstance(a, EnsureNamespace | LoadNat) for a in outcome.planned[len(outcome.applied):])
            # A floating IP is either 1:1 NAT or forwards ports (then once per forwarding here).
            held = {f.floatingip_id: (f.floating_ip_address, f.status) for f in router.floating_ips}
            held.update((pf.floatingip_id, (pf.floating_ip_address, pf.floatingip_status))
                        for pf in router.port_forwardings)
            for fip_id, (address, current) in held.items():
                if not router.admin_state_up or router.gateway is None:
                    status = "DOWN"
                elif broken or ipaddress.ip_address(address).version != 4:
                    status = "ERROR"
                else:
                    status = "ACTIVE"
                if status != current:
                    statuses[fip_id] = status
        for what, report, changed in (("router", self._rpc.update_router_statuses, router_statuses),
                                      ("floating IP", self._rpc.update_floatingip_statuses, statuses)):
            if changed:
                try:
                    await report(changed)
                except BusError as exc:
                    log.warning("could not report %s statuses: %s", what, exc)


class L3Role(ReconcilingRole):
    """One host's routers; implements ``neutrino.agent.roles.base.Role``."""

    name = "l3"
    agent_type = "L3 agent"
    binary = "neutrino-l3-agent"
    topic = "l3_agent"

    def __init__(self, config: L3Config, rpc: AgentRpcClient, *, driver: NetlinkDriver | None = None,
                 nftables: NftablesDriver | None = None, debounce_seconds: float = 0.05,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        driver = driver if driver is not None else NetlinkDriver(config.owner_tag)
        nft = nftables if nftables is not None else NftablesDriver(config.owner_tag, driver.netns_dir)
        self.kernel = L3Kernel(config, rpc, driver, nft)
        self.reconciler = Reconciler(self.kernel, clock=clock, debounce=debounce_seconds)
        self._ha_watch: asyncio.Task[None] | None = None
        # router id -> the VRRP state last reported for it (until the server's view says the same).
        self._reported: dict[str, str] = {}
        # router id -> the VRRP state seen here at the last look.
        self._local: dict[str, str] = {}

    async def start(self) -> None:
        await super().start()
        self._ha_watch = asyncio.create_task(self._watch_vrrp(), name="l3-vrrp-watch")

    async def stop(self) -> None:
        if self._ha_watch is not None:
            self._ha_watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ha_watch
            self._ha_watch = None
        await super().stop()

    async def _watch_vrrp(self) -> None:
        while True:
            await asyncio.sleep(self.config.ha_poll_seconds)
            try:
                await self.check_vrrp()
            except Exception:  # noqa: BLE001 - the watch must outlive one bad look; the next one retries
                log.exception("looking at the HA routers' VRRP states failed")

    async def check_vrrp(self) -> None:
        """Report the HA routers whose VRRP state here differs from what the server holds."""
        routers = {r.router_id: r for r in self.reconciler.desired.values() if r.ha is not None}
        for router_id in list(self._reported):
            router = routers.get(router_id)
            if router is None or (router.ha is not None and router.ha.state == self._reported[router_id]):
                del self._reported[router_id]  # the server knows (or the router went)
        changed = {}
        states = await self.kernel.vrrp_states(routers.values())
        # A router that changed state here is planned again: radvd and the devices' IPv6
        # forwarding are the master's only.
        moved = [r for r, state in states.items() if self._local.get(r, "standby") != state]
        self._local = states
        if moved:
            self.reconciler.hint(moved)
        for router_id, state in states.items():
            ha = routers[router_id].ha
            if ha is not None and state != ha.state and self._reported.get(router_id) != state:
                changed[router_id] = state
        if changed and await self.kernel.report_states(changed):
            log.info("HA routers changed VRRP state here: %s", changed)
            self._reported.update(changed)

    def role_configurations(self) -> Mapping[str, Any]:
        routers = self.reconciler.desired.values()
        return {"agent_mode": "legacy", "interface_driver": "linuxbridge", "handle_internal_only_routers": True,
                "ha_routers": sum(r.ha is not None for r in routers),
                "gateway_external_network_id": "", "external_network_bridge": "", "log_agent_heartbeats": False,
                # ``dvr``: no per-compute-host router data plane here; distributed routers are
                # served like the others, centralized on this agent.
                "distributed_routers": "served centralized (no DVR data plane)",
                "routers": len(routers), "interfaces": sum(len(r.interfaces) for r in routers),
                "floating_ips": sum(len(r.floating_addresses) for r in routers),
                "ex_gw_ports": sum(r.gateway is not None for r in routers),
                # What the L3 extensions enforce here (qos-fip, qos-gateway-ip with tc shaping on
                # qg-: HTB by address, ingress through an IFB; l3-ndp-proxy with proxy neighbours).
                "extensions": ["fip_qos", "gateway_ip_qos", "ndp_proxy"],
                "qos_driver": "tc htb+ifb (no police on this kernel)",
                "shaped_addresses": sum(len(e) + len(i) for e, i in map(gateway_limits, routers)),
                "ndp_proxies": sum(len(proxied_addresses(r)) for r in routers)}

    def on_change(self, hint: ChangeHint) -> None:
        if hint.resource in ("router", "floatingip", "port_forwarding", "ndp_proxy", "qos_policy"):
            self.reconciler.request_full()
        elif hint.resource == "port" and hint.id in l3_desired.router_ports(dict(self.reconciler.desired)):
            # The echo of this host's own binding or status report changes nothing here; a
            # re-addressed or deleted router port does.
            if hint.op == "delete" or hint.host != self.config.host:
                self.reconciler.request_full()
