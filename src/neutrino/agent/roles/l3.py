"""The l3 role: Neutron's L3 agent (legacy routers, Linux bridge interface driver) as a reconciler.

``desired`` is the host's ``sync_state("l3")`` reply (the routers scheduled to this host's L3
agent), ``actual`` a read of the router namespaces this host owns, ``plan`` the pure difference,
``_apply`` the only writer. Per router: a namespace ``qrouter-<router>`` with forwarding on; per
interface port a veth whose host end is ``tap<port[:11]>`` (the host's L2 role wires it into the
network's bridge and reports the port up, exactly as for an instance) and whose router end is
``qr-<port[:11]>`` with the port's MAC and addresses; the gateway port likewise as ``qg-``, with
the default route via the external subnet's gateway; extra routes; SNAT, floating IPs, port
forwardings and hairpin NAT as one nftables table in the namespace (``l3/nat.py``); a gratuitous
ARP out of ``qg-`` for each floating IP that comes onto it. Server events are hints that start a (debounced) resync.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from neutrino.agent.l3.config import L3Config
from neutrino.agent.l3.nat import NAT_FAMILY, NAT_TABLE
from neutrino.agent.l3.plan import (
    Action,
    AddAddress,
    AddRoute,
    AnnounceAddress,
    EnsureNamespace,
    EnsureRouterPort,
    L3KernelView,
    LoadNat,
    RemoveAddress,
    RemoveDevice,
    RemoveNamespace,
    RemoveNat,
    RemoveRoute,
    RouterView,
    SetSysctl,
    plan,
    served,
)
from neutrino.agent.rpc_client import AgentRpcClient
from neutrino.bus.envelope import Envelope
from neutrino.bus.errors import BusError
from neutrino.contract import codec
from neutrino.contract.l3 import L3State
from neutrino.contract.names import ROUTER_NAMESPACE_PREFIX, DeviceRole, device_role, router_namespace
from neutrino.dataplane.netlink import NamespaceNotFound, NetlinkDriver, NetlinkDriverError
from neutrino.dataplane.nftables import NftablesDriver, NftablesError

__all__ = ["L3Config", "L3Role", "L3ReconcileReport"]

log = logging.getLogger(__name__)
_FORWARDING_KEYS = ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding")


@dataclass(frozen=True, slots=True)
class L3ReconcileReport:
    actions: tuple[Action, ...]
    failed: tuple[tuple[Action, str], ...]


class L3Role:
    """One host's routers; implements ``neutrino.agent.roles.base.Role``."""

    name = "l3"
    agent_type = "L3 agent"
    binary = "neutrino-l3-agent"
    topic = "l3_agent"

    def __init__(self, config: L3Config, rpc: AgentRpcClient, *, driver: NetlinkDriver | None = None,
                 nftables: NftablesDriver | None = None, debounce_seconds: float = 0.05) -> None:
        self.config = config
        self._rpc = rpc
        self._driver = driver if driver is not None else NetlinkDriver(config.owner_tag)
        self._nft = nftables if nftables is not None else NftablesDriver(config.owner_tag, self._driver.netns_dir)
        self._debounce_seconds = debounce_seconds
        self._resync_lock = asyncio.Lock()
        self._resync_wanted = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._ports: set[str] = set()  # router port ids of the last desired state
        self._counts = {"routers": 0, "interfaces": 0, "floating_ips": 0, "ex_gw_ports": 0}
        self.last_reconcile: L3ReconcileReport | None = None

    # ---- Role ----------------------------------------------------------------------------------

    def configurations(self) -> Mapping[str, Any]:
        return {"agent_mode": "legacy", "interface_driver": "linuxbridge", "handle_internal_only_routers": True,
                "gateway_external_network_id": "", "external_network_bridge": "", "log_agent_heartbeats": False,
                **self._counts}

    async def start(self) -> None:
        if not self._tasks:
            self._tasks.append(asyncio.create_task(self._coalesce_resyncs(), name=f"l3-resync-{self.config.host}"))

    async def stop(self) -> None:
        """Stop; router namespaces stay as they are (a restart must not disturb traffic)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def on_event(self, envelope: Envelope) -> None:
        payload = envelope.payload
        resource = payload.get("resource")
        if resource in ("router", "floatingip", "port_forwarding"):
            self.request_resync()
        elif resource == "port" and payload.get("id") in self._ports:
            # The echo of this host's own binding or status report changes nothing here; a
            # re-addressed or deleted router port does.
            if payload.get("op") == "delete" or payload.get("host") != self.config.host:
                self.request_resync()

    def request_resync(self) -> None:
        self._resync_wanted.set()

    async def resync(self) -> None:
        async with self._resync_lock:
            log.debug("l3 resync of %s: asking for the desired state", self.config.host)
            desired = codec.decode(L3State, await self._rpc.sync_state(self.name))
            log.debug("l3 resync of %s: %d routers", self.config.host, len(desired.routers))
            await self._reconcile(desired)

    # ---- reconcile -----------------------------------------------------------------------------

    async def _reconcile(self, desired: L3State) -> None:
        view = await self._read()
        log.debug("l3 read of %s: %d router namespaces", self.config.host, len(view.namespaces))
        actions = plan(desired, view)
        failed = await self._apply(actions)
        self.last_reconcile = L3ReconcileReport(tuple(actions), tuple(failed))
        routers = served(desired)
        self._ports = {p.port_id for r in desired.routers for p in (*r.interfaces, *((r.gateway,) if r.gateway else ()))}
        self._counts = {"routers": len(routers), "interfaces": sum(len(r.interfaces) for r in routers),
                        "floating_ips": sum(len(r.floating_addresses) for r in routers),
                        "ex_gw_ports": sum(r.gateway is not None for r in routers)}
        if actions:
            log.info("l3 reconcile of %s: %d actions (%d failed)", self.config.host, len(actions), len(failed))
        await self._report_floating_ips(desired, failed)

    async def _report_floating_ips(self, desired: L3State, failed: Sequence[tuple[Action, str]]) -> None:
        broken = {router_namespace(a.router_id) for a, _ in failed if isinstance(a, LoadNat)}
        broken |= {a.netns for a, _ in failed if isinstance(a, EnsureNamespace)}
        statuses: dict[str, str] = {}
        for router in desired.routers:
            ns = router_namespace(router.router_id)
            # A floating IP is either 1:1 NAT or forwards ports (then once per forwarding here).
            held = {f.floatingip_id: (f.floating_ip_address, f.status) for f in router.floating_ips}
            held.update((pf.floatingip_id, (pf.floating_ip_address, pf.floatingip_status))
                        for pf in router.port_forwardings)
            for fip_id, (address, current) in held.items():
                if not router.admin_state_up or router.gateway is None:
                    status = "DOWN"
                elif ns in broken or ipaddress.ip_address(address).version != 4:
                    status = "ERROR"
                else:
                    status = "ACTIVE"
                if status != current:
                    statuses[fip_id] = status
        if statuses:
            try:
                await self._rpc.update_floatingip_statuses(statuses)
            except BusError as exc:
                log.warning("could not report floating IP statuses: %s", exc)

    async def _read(self) -> L3KernelView:
        namespaces: dict[str, RouterView] = {}
        for name in await self._driver.list_namespaces():
            if not name.startswith(ROUTER_NAMESPACE_PREFIX):
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
        sysctls = {}
        for key in _FORWARDING_KEYS:
            with contextlib.suppress(OSError, NetlinkDriverError):
                sysctls[key] = await self._driver.get_sysctl(key, netns=ns)
        digest = None
        with contextlib.suppress(NftablesError):
            digest = await self._nft.table_digest(NAT_FAMILY, NAT_TABLE, netns=ns)
        return RouterView(links, {d: frozenset(c) for d, c in addresses.items()}, routes, sysctls, digest)

    async def _apply(self, actions: Sequence[Action]) -> list[tuple[Action, str]]:
        failed: list[tuple[Action, str]] = []
        dead: set[str] = set()  # namespaces that could not be made: skip the rest of theirs
        for action in actions:
            if action.netns in dead:
                continue
            try:
                await self._do(action)
            except (NetlinkDriverError, OSError, ValueError) as exc:
                log.warning("l3 action %s failed: %s", action, exc)
                failed.append((action, str(exc)))
                if isinstance(action, EnsureNamespace):
                    dead.add(action.netns)
        return failed

    async def _do(self, action: Action) -> None:
        d = self._driver
        match action:
            case EnsureNamespace(netns=ns):
                await d.ensure_namespace(ns)
            case SetSysctl(netns=ns, key=key, value=value):
                await d.set_sysctl(key, value, netns=ns)
            case RemoveDevice(netns=ns, name=name):
                await d.remove_link(name, netns=ns)
            case EnsureRouterPort(netns=ns, device=device, tap=tap, mac=mac, mtu=mtu, up=up):
                # The router end gets the port's MAC; the tap end is the host's (the L2 role wires it).
                await d.ensure_veth(tap, device, netns=self.config.netns, peer_netns=ns, mtu=mtu, peer_mac=mac)
                if not up:
                    await d.set_down(device, netns=ns)
            case AddAddress(netns=ns, device=device, cidr=cidr):
                await d.ensure_address(device, cidr, netns=ns, nodad=True)
            case RemoveAddress(netns=ns, device=device, cidr=cidr):
                await d.remove_address(device, cidr, netns=ns)
            case AddRoute(netns=ns, destination=destination, gateway=gateway, device=device):
                await d.ensure_route(destination, gateway=gateway, device=device, netns=ns)
            case RemoveRoute(netns=ns, destination=destination):
                await d.remove_route(destination, netns=ns)
            case LoadNat(netns=ns, body=body):
                await self._nft.replace_table(NAT_FAMILY, NAT_TABLE, body, netns=ns)
            case RemoveNat(netns=ns):
                await self._nft.remove_table(NAT_FAMILY, NAT_TABLE, netns=ns)
            case AnnounceAddress(netns=ns, device=device, address=address):
                await d.send_gratuitous_arp(device, address, netns=ns)
            case RemoveNamespace(netns=ns):
                # Router ends first: their taps go at once (a namespace is destroyed lazily).
                with contextlib.suppress(NamespaceNotFound):
                    for link in await d.list_owned(netns=ns):
                        await d.remove_link(link.name, netns=ns)
                await d.remove_namespace(ns)

    # ---- coalescing server hints -----------------------------------------------------------------

    async def _coalesce_resyncs(self) -> None:
        while True:
            await self._resync_wanted.wait()
            await asyncio.sleep(self._debounce_seconds)
            self._resync_wanted.clear()
            try:
                await self.resync()
            except asyncio.CancelledError:
                raise
            except BusError as exc:
                log.warning("l3 resync of %s could not reach the server: %s", self.config.host, exc)
            except Exception:  # noqa: BLE001 - the periodic resync tries again
                log.exception("l3 resync of %s failed", self.config.host)
