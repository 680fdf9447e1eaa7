"""Ports: MACs, addresses (through services/ipam), address pairs, DHCP options, binding, status."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import ColumnElement, delete, exists, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.config import MechanismSettings
from neutrino.context import RequestContext
from neutrino.db.engine import Database
from neutrino.db.schema import core as db
from neutrino.errors import (
    BadRequest,
    Conflict,
    InUse,
    InvalidInput,
    IpAddressAlreadyAllocated,
    MacAddressInUse,
    NetworkMacAddressGenerationFailure,
    RetryableConflict,
    not_found,
)
from neutrino.services import allocations
from neutrino.services.event_routing import port_groups
from neutrino.services.events import ChangeEvent, Notifier
from neutrino.services.ipam import owners
from neutrino.services.ipam.fixed_ips import (
    AddressPlan,
    AddressRequest,
    AnyAddress,
    SpecificAddress,
    plan_fixed_ips_update,
    plan_port_addresses,
    subnet_ids_off_network,
)
from neutrino.services.ipam.mac import random_mac
from neutrino.services.ipam.records import UNSET, FixedIp
from neutrino.services.listing import ListQuery, TableQuery, fetch_one, select_rows
from neutrino.services.mac_override import overridden_mac
from neutrino.services.networks import NetworkService
from neutrino.services.quotas import QuotaService
from neutrino.services.resource_requests import port_resource_requests
from neutrino.services.standard import (
    bump_revision,
    check_revision,
    delete_tags,
    format_time,
    load_tags,
    new_id,
    new_standard_values,
    set_tags,
    utcnow,
)
from neutrino.services.trunk_details import trunk_details
from neutrino.services.unit_of_work import Transaction, UnitOfWork

MAC_ATTEMPTS = 16
# Rounds of choosing again for addresses concurrent creates took first, before rerunning everything.
CLAIM_ATTEMPTS = 8
UNBOUND, BINDING_FAILED = "unbound", "binding_failed"
NO_ADDRESS_OPTIONS = ("router", "classless-static-route")
# Ports the cloud itself owns (DHCP, routers): no security groups, as Neutron's "trusted" ports.
TRUSTED_OWNER_PREFIX = "network:"
# A caller's policy check of one item to create, given the facts its rules know of the item's network.
Authorize = Callable[[dict[str, Any], dict[str, Any]], None]


class PortBound(Conflict):
    message = "Unable to complete operation on port %(port_id)s, port is already bound, port type: %(vif_type)s, old_mac %(old_mac)s, new_mac %(new_mac)s."


class UnsupportedPortDeviceOwner(Conflict):
    message = "Operation %(op)s is not supported for device_owner %(device_owner)s on port %(port_id)s."


class PortInUse(InUse):
    message = "Unable to complete operation on port %(port_id)s for network %(net_id)s. Port already has an attached device %(device_id)s."


class DeviceIDNotOwnedByTenant(Conflict):
    message = ("The following device_id %(device_id)s is not owned by your tenant or matches another "
               "tenants router.")


# Device owners whose device is a router (or a floating IP): a non-admin may name only its own, or it
# could pin another project's router (its port then undeletable) and learn which router ids exist.
_OWNED_DEVICE_TABLES = {**{owner: "routers" for owner in owners.ROUTER_PORT_OWNERS},
                        "network:floatingip": "floatingips"}


class ServicePortInUse(InUse):
    message = "Port %(port_id)s cannot be deleted directly via the port API: %(reason)s."


class AddressPairAndPortSecurityRequired(Conflict):
    message = "Port Security must be enabled in order to have allowed address pairs on a port."


class PortSecurityAndIPRequiredForSecurityGroups(InvalidInput):
    message = "Port security must be enabled and port must have an IP address in order to use security groups."

    def __init__(self) -> None:
        super(InvalidInput, self).__init__(None)


class PortSecurityPortHasSecurityGroup(InUse):
    message = "Port has security group associated. Cannot disable port security or IP address until security group is removed."


class DuplicateAddressPairInRequest(InvalidInput):
    message = "Request contains duplicate address pair: mac_address %(mac_address)s ip_address %(ip_address)s."

    def __init__(self, **kwargs: Any) -> None:
        super(InvalidInput, self).__init__(None, **kwargs)


class AllowedAddressPairExhausted(BadRequest):
    message = "The number of allowed address pair exceeds the maximum %(quota)s."


class PortBinder(Protocol):
    """Decides ``binding:vif_type``/``vif_details`` for a host (mechanism drivers; the agents issue)."""

    async def bind(self, conn: AsyncConnection, port: Mapping[str, Any], host: str) -> tuple[str, dict[str, Any]]: ...


class NoAgentBinder:
    """With no mechanism driver able to serve the host, binding fails, as ML2 reports it."""

    async def bind(self, conn: AsyncConnection, port: Mapping[str, Any], host: str) -> tuple[str, dict[str, Any]]:
        return BINDING_FAILED, {}


class PortSecurityGroups(Protocol):
    """Which security groups ports are in; the security-group plugin provides the real one.

    The port service decides *whether* a port has groups (port security, trusted owners, the
    default when none are named); this stores them and checks each named group.
    """

    def filter_clause(self, group_ids: Sequence[Any]) -> ColumnElement[bool]: ...

    async def of_ports(self, conn: AsyncConnection, port_ids: Sequence[str]) -> dict[str, list[str]]: ...

    async def default_group(self, conn: AsyncConnection, ctx: RequestContext, project_id: str) -> str | None: ...

    async def bind(self, conn: AsyncConnection, ctx: RequestContext, port_id: str, project_id: str,
                   group_ids: Sequence[str], *, new_port: bool = False, checked: Sequence[str] = ()) -> None: ...


class NoSecurityGroups:
    """Without the security-group plugin no group exists: ports are in none, naming one is a 404."""

    def filter_clause(self, group_ids: Sequence[Any]) -> ColumnElement[bool]:
        return exists().where(db.ports.c.id == None)  # noqa: E711 - never true

    async def of_ports(self, conn: AsyncConnection, port_ids: Sequence[str]) -> dict[str, list[str]]:
        return {}

    async def default_group(self, conn: AsyncConnection, ctx: RequestContext, project_id: str) -> str | None:
        return None

    async def bind(self, conn: AsyncConnection, ctx: RequestContext, port_id: str, project_id: str,
                   group_ids: Sequence[str], *, new_port: bool = False, checked: Sequence[str] = ()) -> None:
        if group_ids:
            raise not_found("security_group", group_ids[0])


def with_trusted(profile: Mapping[str, Any], trusted: bool | None) -> dict[str, Any]:
    """The binding profile carrying ``trusted`` (port-trusted-vif), unchanged when it is not given."""
    return dict(profile) if trusted is None else {**profile, "trusted": trusted}


def dns_assignment(fixed_ips: Sequence[Mapping[str, str]], dns_name: str, domain: str) -> list[dict[str, str]]:
    out = []
    for ip in fixed_ips:
        host = dns_name or "host-" + ip["ip_address"].replace(".", "-").replace(":", "-")
        out.append({"hostname": host, "ip_address": ip["ip_address"], "fqdn": f"{host}.{domain}"})
    return out


def port_visible(ctx: RequestContext) -> ColumnElement[bool] | None:
    """Own ports plus every port on a network the caller owns."""
    if ctx.is_privileged:
        return None
    p, n = db.ports, db.networks
    return or_(p.c.project_id == ctx.project_id,
               exists().where(n.c.id == p.c.network_id, n.c.project_id == ctx.project_id))


def _fixed_ips_filter(values: Sequence[Any]) -> ColumnElement[bool]:
    a = db.ipallocations
    clauses = []
    for value in values:
        key, _, wanted = str(value).partition("=")
        if key == "ip_address":
            clauses.append(exists().where(a.c.port_id == db.ports.c.id, a.c.ip_address == wanted))
        elif key == "subnet_id":
            clauses.append(exists().where(a.c.port_id == db.ports.c.id, a.c.subnet_id == wanted))
        elif key == "ip_address_substr":
            clauses.append(exists().where(a.c.port_id == db.ports.c.id, a.c.ip_address.contains(wanted)))
        else:
            raise InvalidInput(f"Invalid fixed_ips filter '{value}'")
    from sqlalchemy import and_
    return and_(*clauses)


class PortService:
    def __init__(self, database: Database, notifier: Notifier, quotas: QuotaService, networks: NetworkService,
                 settings: MechanismSettings, binder: PortBinder | None = None,
                 rng: random.Random | None = None) -> None:
        self.db = database
        self.notifier = notifier
        self.uow = UnitOfWork(database, notifier)
        self.quotas = quotas
        self.networks = networks
        self.settings = settings
        self.binder: PortBinder = binder or NoAgentBinder()
        # Replaced by the security-group plugin at composition time.
        self.security_groups: PortSecurityGroups = NoSecurityGroups()
        self.rng = rng or random.Random()
        # Called inside the deleting transaction before a port goes through the port API; each
        # returns the change events of what it touched (service plugins wire these in: the L3
        # plugin releases the port's floating IPs and port forwardings).
        self.before_delete: list[Callable[[AsyncConnection, Mapping[str, Any]],
                                          Awaitable[Sequence[ChangeEvent]]]] = []
        # Called inside the updating transaction after a port's addresses changed, with its new
        # addresses; may refuse the change by raising (a floating IP's fixed address must stay).
        self.after_addresses_change: list[Callable[[AsyncConnection, Mapping[str, Any], Sequence[str]],
                                                   Awaitable[Sequence[ChangeEvent]]]] = []
        # Called inside the updating transaction after a port's MAC changed (what was served for the
        # old MAC, a DHCP lease, no longer counts).
        self.after_mac_change: list[Callable[[AsyncConnection, Mapping[str, Any]],
                                             Awaitable[Sequence[ChangeEvent]]]] = []

    def table_query(self) -> TableQuery:
        cols = {a: a for a in ("id", "name", "description", "project_id", "network_id", "mac_address",
                               "admin_state_up", "status", "device_id", "device_owner", "ip_allocation",
                               "dns_name", "revision_number", "created_at", "updated_at")}
        cols.update({"tenant_id": "project_id", "binding:host_id": "binding_host_id",
                     "binding:vnic_type": "binding_vnic_type"})
        special = {"fixed_ips": _fixed_ips_filter,
                   "security_groups": lambda values: self.security_groups.filter_clause(values)}
        return TableQuery("port", db.ports, cols, special, tag_type="port")

    # ---- reading ---------------------------------------------------------------------------

    def view(self, row: Any, tags: Sequence[str], security_groups: Sequence[str],
             network_policy: str | None = None) -> dict[str, Any]:
        # Spelled out flat (no helper dicts merged in): a 10,000-port list builds this 10,000 times.
        fixed_ips = list(row["fixed_ips"])
        mac = row["mac_address"]
        project = row["project_id"]
        pairs = row["allowed_address_pairs"]
        return {
            "id": row["id"], "name": row["name"], "description": row["description"],
            "project_id": project, "tenant_id": project, "network_id": row["network_id"], "mac_address": mac,
            "admin_state_up": row["admin_state_up"], "status": row["status"], "device_id": row["device_id"],
            "device_owner": row["device_owner"], "fixed_ips": fixed_ips,
            "allowed_address_pairs": [{"ip_address": p["ip_address"], "mac_address": p.get("mac_address") or mac}
                                      for p in pairs] if pairs else [],
            "extra_dhcp_opts": list(row["extra_dhcp_opts"]),
            "security_groups": list(security_groups), "port_security_enabled": row["port_security_enabled"],
            "binding:host_id": row["binding_host_id"], "binding:vnic_type": row["binding_vnic_type"],
            "binding:profile": row["binding_profile"] or {}, "binding:vif_type": row["binding_vif_type"],
            "binding:vif_details": row["binding_vif_details"] or {},
            "ip_allocation": row["ip_allocation"], "dns_name": row["dns_name"], "dns_domain": row["dns_domain"],
            "dns_assignment": dns_assignment(fixed_ips, row["dns_name"], self.settings.dns_domain),
            "qos_policy_id": row["qos_policy_id"], "qos_network_policy_id": network_policy, "resource_request": None,
            "propagate_uplink_status": row["propagate_uplink_status"], "tags": list(tags),
            "trusted": (row["binding_profile"] or {}).get("trusted"),
            "numa_affinity_policy": row["numa_affinity_policy"], "device_profile": row["device_profile"],
            "created_at": format_time(row["created_at"]), "updated_at": format_time(row["updated_at"]),
            "revision_number": row["revision_number"],
        }

    async def _views(self, conn: AsyncConnection, rows: Sequence[Any]) -> list[dict[str, Any]]:
        tag_map = await load_tags(conn, "port", [r["id"] for r in rows])
        groups = await self.security_groups.of_ports(conn, [r["id"] for r in rows])
        net_policies = await self._network_policies(conn, {r["network_id"] for r in rows})
        views = [self.view(r, tag_map.get(r["id"], []), groups.get(r["id"], ()), net_policies.get(r["network_id"]))
                 for r in rows]
        requests = await port_resource_requests(conn, rows, net_policies)
        if requests:
            for out in views:
                out["resource_request"] = requests.get(out["id"])
        # trunk-details: only a trunk's parent port has the attribute, as in Neutron.
        for port_id, details in (await trunk_details(conn, [r["id"] for r in rows])).items():
            next(v for v in views if v["id"] == port_id)["trunk_details"] = details
        return views

    @staticmethod
    async def _network_policies(conn: AsyncConnection, network_ids: set[str]) -> dict[str, str]:
        """``qos_network_policy_id``: each network's QoS policy, which its ports inherit."""
        ids = list(network_ids)
        out: dict[str, str] = {}
        for start in range(0, len(ids), 5000):
            rows = await conn.execute(select(db.networks.c.id, db.networks.c.qos_policy_id).where(
                db.networks.c.id.in_(ids[start:start + 5000]), db.networks.c.qos_policy_id.is_not(None)))
            out.update({net_id: policy_id for net_id, policy_id in rows})
        return out

    async def list(self, ctx: RequestContext, query: ListQuery) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            rows = await select_rows(conn, self.table_query(), query, port_visible(ctx))
            return await self._views(conn, rows)

    async def get(self, ctx: RequestContext, port_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            row = await fetch_one(conn, db.ports, "port", port_id, port_visible(ctx))
            return (await self._views(conn, [row]))[0]

    async def find(self, ctx: RequestContext, port_id: str) -> dict[str, Any]:
        """The port's own attributes (no tags, groups or network policy): one statement, for
        checks that need nothing more (the caller's roles decide)."""
        async with self.db.read() as conn:
            return self.view(await fetch_one(conn, db.ports, "port", port_id, port_visible(ctx)), [], [])

    async def policy_target(self, ctx: RequestContext, obj: dict[str, Any]) -> dict[str, Any]:
        """Port rules look at the network's owner and whether it is shared with the caller."""
        net_id = obj.get("network_id")
        if not net_id:
            return {}
        facts = (await self.networks.owner_facts(ctx, [net_id])).get(net_id)
        if facts is None:
            raise not_found("network", net_id)
        return facts

    async def policy_targets(self, ctx: RequestContext, objs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """:meth:`policy_target` for a listed page, with one read of the networks involved."""
        facts = await self.networks.owner_facts(ctx, [obj.get("network_id") or "" for obj in objs])
        return [facts.get(obj.get("network_id") or "", {}) for obj in objs]

    # ---- addresses -------------------------------------------------------------------------

    async def _realise(self, conn: AsyncConnection, plan: AddressPlan, subnets: Sequence[Any],
                       network_id: str) -> list[tuple[AddressRequest, FixedIp]]:
        """Turn an address plan into concrete addresses (each with the request it fills); :meth:`_claim`
        then takes them."""
        chosen: list[tuple[AddressRequest, FixedIp]] = []
        a = db.ipallocations
        for req in plan.requests:
            if isinstance(req, SpecificAddress):
                taken = await conn.execute(select(a.c.port_id).where(
                    a.c.subnet_id == req.subnet_id, a.c.ip_address == req.ip_address))
                if taken.first() is not None:
                    raise IpAddressAlreadyAllocated(ip=req.ip_address, subnet_id=req.subnet_id)
                chosen.append((req, FixedIp(req.subnet_id, req.ip_address)))
            elif isinstance(req, AnyAddress):
                chosen.append((req, await self._choose(conn, req, subnets, [ip for _, ip in chosen], network_id,
                                                       plan.prefer_lowest)))
        return chosen

    async def _choose(self, conn: AsyncConnection, req: AnyAddress, subnets: Sequence[Any], others: Sequence[FixedIp],
                      network_id: str, prefer_lowest: bool) -> FixedIp:
        cands = [s for s in subnets if s.id in req.candidate_subnet_ids]
        cands.sort(key=lambda s: req.candidate_subnet_ids.index(s.id))
        return await allocations.choose_free_address(conn, cands, others, network_id=network_id, rng=self.rng,
                                                     prefer_lowest=prefer_lowest)

    async def _claim(self, conn: AsyncConnection, port_id: str, network_id: str,
                     realised: Sequence[tuple[AddressRequest, FixedIp]], subnets: Sequence[Any],
                     prefer_lowest: bool) -> list[FixedIp]:
        """Insert the port's allocation rows; an address a concurrent create took first is chosen
        again here, in this transaction (a specific one asked for is a 409), rather than rerunning
        the whole transaction. Returns the addresses the port holds, in plan order."""
        final = [ip for _, ip in realised]
        todo = list(range(len(final)))
        for _ in range(CLAIM_ATTEMPTS):
            lost = set(await allocations.claim(conn, port_id, network_id, [final[i] for i in todo]))
            todo = [i for i in todo if final[i] in lost]
            if not todo:
                return final
            for i in todo:
                req = realised[i][0]
                if not isinstance(req, AnyAddress):
                    raise IpAddressAlreadyAllocated(ip=final[i].ip_address, subnet_id=final[i].subnet_id)
                others = [ip for j, ip in enumerate(final) if j != i]
                final[i] = await self._choose(conn, req, subnets, others, network_id, prefer_lowest)
        raise RetryableConflict("addresses kept being taken by concurrent creates")

    async def _check_subnets_exist(self, conn: AsyncConnection, requested: Any, subnets: Sequence[Any]) -> None:
        for sid in subnet_ids_off_network(requested, subnets):
            found = await conn.execute(select(db.subnets.c.id).where(db.subnets.c.id == sid))
            if found.first() is None:
                raise not_found("subnet", sid)

    async def _new_mac(self, conn: AsyncConnection, network_id: str) -> str:
        for _ in range(MAC_ATTEMPTS):
            mac = random_mac(self.settings.base_mac, self.rng)
            if not await self._mac_taken(conn, network_id, mac):
                return mac
        raise NetworkMacAddressGenerationFailure(net_id=network_id)

    async def _mac_taken(self, conn: AsyncConnection, network_id: str, mac: str) -> bool:
        row = await conn.execute(select(db.ports.c.id).where(db.ports.c.network_id == network_id,
                                                             db.ports.c.mac_address == mac))
        return row.first() is not None

    def _address_pairs(self, pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if len(pairs) > self.settings.max_allowed_address_pair:
            raise AllowedAddressPairExhausted(quota=self.settings.max_allowed_address_pair)
        seen = set()
        out = []
        for pair in pairs:
            key = (pair.get("mac_address"), pair["ip_address"])
            if key in seen:
                raise DuplicateAddressPairInRequest(mac_address=key[0], ip_address=key[1])
            seen.add(key)
            out.append({k: v for k, v in pair.items() if v is not None})
        return out

    @staticmethod
    def _dhcp_opts(opts: list[dict[str, Any]], current: Sequence[Mapping[str, Any]] = ()) -> list[dict[str, Any]]:
        merged = {(o["opt_name"], int(o.get("ip_version", 4))): dict(o) for o in current}
        for opt in opts:
            version = opt.get("ip_version", 4)
            try:
                version = int(version)
            except (TypeError, ValueError):
                raise InvalidInput(f"Invalid input for ip_version. Reason: '{version}' is not in [4, 6].") from None
            if version not in (4, 6):
                raise InvalidInput(f"Invalid input for ip_version. Reason: '{version}' is not in [4, 6].")
            key = (opt["opt_name"], version)
            value = opt.get("opt_value")
            if "opt_value" in opt and value is None and current:
                merged.pop(key, None)
                continue
            if (value is None or value == "") and opt["opt_name"] not in NO_ADDRESS_OPTIONS:
                raise InvalidInput(f"Invalid input for opt_value. Reason: '{value}' is not a valid string.")
            merged[key] = {"opt_name": opt["opt_name"], "opt_value": value, "ip_version": version}
        return list(merged.values())

    # ---- create ----------------------------------------------------------------------------

    # The API layer may leave the policy check of a create to ``authorize``: the network its target
    # needs is read once, in the write's transaction (not once for the check and again here).
    checks_create_in_write = True

    async def create_many(self, ctx: RequestContext, items: list[dict[str, Any]],
                          authorize: Authorize | None = None) -> list[dict[str, Any]]:
        """``authorize(item, network_facts)``: the caller's policy check of each item, given what its
        rules know of the item's network (:meth:`NetworkService.owner_facts`); raising refuses it."""
        async def work(tx: Transaction) -> list[dict[str, Any]]:
            conn = tx.conn
            if len(items) > 1:
                await allocations.serialise_bulk_allocation(conn, [i["network_id"] for i in items if i.get("network_id")])
            known: dict[str, dict[str, Any]] = {}
            ids = [await self.create_in(conn, ctx, item, known, authorize=authorize) for item in items]
            if len(known) == len(ids):
                views = [known[i] for i in ids]
            else:
                rows = (await conn.execute(select(db.ports).where(db.ports.c.id.in_(ids)))).mappings().all()
                by_id = {r["id"]: r for r in rows}
                views = await self._views(conn, [by_id[i] for i in ids])
            tx.emit(*(ChangeEvent("port", p["id"], "create", p["revision_number"],
                                  (("network_id", p["network_id"]), ("host", p["binding:host_id"]),
                                   ("security_group_ids", tuple(p["security_groups"]))))
                      for p in views))
            return views

        return await self.uow.run(work, rng=self.rng)

    async def create_in(self, conn: AsyncConnection, ctx: RequestContext, item: dict[str, Any],
                        views: dict[str, dict[str, Any]] | None = None, *,
                        authorize: Authorize | None = None) -> str:
        """Create one port in the caller's transaction; returns its id. With ``views``, its view is
        put there too, made from what was just written instead of read back (not for tagged ports).
        ``authorize`` is checked first, right after the (visible) network is read."""
        if authorize is None:
            net = await self.networks.get_in(conn, ctx, item["network_id"])
        else:
            net, facts = await self.networks.get_with_facts_in(conn, ctx, item["network_id"])
            authorize(item, facts)
        project = item.get("project_id") or ctx.project_id
        device_owner = item.get("device_owner", "")
        await self._check_device_ownership(conn, ctx, device_owner, item.get("device_id", ""))
        if item.get("qos_policy_id"):
            await self.networks.qos_policies.check(conn, ctx, item["qos_policy_id"])
        device_mac = overridden_mac(item.get("binding:vnic_type", "normal"), item.get("binding:host_id", ""),
                                    item.get("binding:profile"), rebound=bool(item.get("binding:host_id")))
        if device_mac or item.get("mac_address") is not None:
            mac = device_mac or item["mac_address"]
            if await self._mac_taken(conn, net["id"], mac):
                raise MacAddressInUse(net_id=net["id"], mac=mac)
        else:
            # Not looked up first: the (network, MAC) key refuses the rare duplicate and
            # Database.write reruns the transaction, which draws another.
            mac = random_mac(self.settings.base_mac, self.rng)
        subnets = await allocations.network_subnets(conn, net["id"])
        requested = item.get("fixed_ips", UNSET)
        await self._check_subnets_exist(conn, requested, subnets)
        plan = plan_port_addresses(requested, subnets=subnets, network_id=net["id"], device_owner=device_owner,
                                   mac_address=mac)
        realised = await self._realise(conn, plan, subnets, net["id"])
        ips = [ip for _, ip in realised]
        port_security = item.get("port_security_enabled", net["port_security_enabled"])
        pairs = self._address_pairs(item.get("allowed_address_pairs", []))
        if pairs and not port_security:
            raise AddressPairAndPortSecurityRequired()
        named_groups = item.get("security_groups") or []
        if named_groups and not port_security:
            raise PortSecurityAndIPRequiredForSecurityGroups()
        default_group = await self.security_groups.default_group(conn, ctx, project)
        if not port_security or device_owner.startswith(TRUSTED_OWNER_PREFIX):
            groups: list[str] = []  # trusted (network:*) ports get no groups, as in Neutron
        elif "security_groups" in item:
            groups = list(named_groups)
        else:
            groups = [default_group] if default_group else []
        now = utcnow()
        port_id = new_id()
        values = dict(
            id=port_id, project_id=project, **new_standard_values(item, now), network_id=net["id"],
            mac_address=mac, admin_state_up=item.get("admin_state_up", True), status="DOWN",
            device_id=item.get("device_id", ""), device_owner=device_owner, port_security_enabled=port_security,
            binding_host_id=item.get("binding:host_id", ""), binding_vnic_type=item.get("binding:vnic_type", "normal"),
            binding_profile=with_trusted(item.get("binding:profile") or {}, item.get("trusted")),
            binding_vif_type=UNBOUND, binding_vif_details={},
            numa_affinity_policy=item.get("numa_affinity_policy"), device_profile=item.get("device_profile"),
            allowed_address_pairs=pairs, extra_dhcp_opts=self._dhcp_opts(item.get("extra_dhcp_opts", [])),
            ip_allocation="none" if requested == [] else "immediate",
            dns_name=self._dns_name(item.get("dns_name", "")), dns_domain=item.get("dns_domain", ""),
            qos_policy_id=item.get("qos_policy_id"), propagate_uplink_status=item.get("propagate_uplink_status", False),
            fixed_ips=[ip.as_dict() for ip in sorted(ips, key=allocations.address_order)])
        if values["binding_host_id"]:
            values["binding_vif_type"], values["binding_vif_details"] = await self.binder.bind(
                conn, values, values["binding_host_id"])
        await conn.execute(insert(db.ports).values(**values))
        held = await self._claim(conn, port_id, net["id"], realised, subnets, plan.prefer_lowest)
        if held != ips:  # an address went to a concurrent create: the port shows the one it got
            values["fixed_ips"] = [ip.as_dict() for ip in sorted(held, key=allocations.address_order)]
            await conn.execute(update(db.ports).where(db.ports.c.id == port_id).values(fixed_ips=values["fixed_ips"]))
        await self.security_groups.bind(conn, ctx, port_id, project, groups, new_port=True,
                                        checked=[default_group] if default_group else [])
        if item.get("tags"):
            await set_tags(conn, "port", port_id, item["tags"])
        await self.quotas.check(conn, ctx, {"port": 0}, project_id=project)
        if views is not None and not item.get("tags"):
            views[port_id] = self.view(values, [], groups, net["qos_policy_id"])
        return port_id

    @staticmethod
    async def _check_device_ownership(conn: AsyncConnection, ctx: RequestContext, device_owner: str,
                                      device_id: str) -> None:
        """A non-admin's router (or floating IP) port must name a router (floating IP) of its own
        project. Unlike Neutron, an id that names nothing is refused the same way, so the answer
        never tells whether another project's router exists."""
        table_name = _OWNED_DEVICE_TABLES.get(device_owner)
        if ctx.is_admin or table_name is None or not device_id:
            return
        table = db.metadata.tables.get(table_name)
        if table is None:  # no L3 service: nothing can be owned (Neutron refuses too)
            raise DeviceIDNotOwnedByTenant(device_id=device_id)
        found = await conn.execute(select(table.c.id).where(table.c.id == device_id,
                                                            table.c.project_id == ctx.project_id))
        if found.first() is None:
            raise DeviceIDNotOwnedByTenant(device_id=device_id)

    def _dns_name(self, name: str) -> str:
        # With the default domain Neutron ignores dns_name (hostnames derive from the address).
        return "" if self.settings.dns_domain == "openstacklocal." else (name or "").lower()

    # ---- update ----------------------------------------------------------------------------

    async def update(self, ctx: RequestContext, port_id: str, changes: dict[str, Any],
                     if_revision: int | None = None) -> dict[str, Any]:
        async def work(tx: Transaction) -> dict[str, Any]:
            conn = tx.conn
            row = await fetch_one(conn, db.ports, "port", port_id, port_visible(ctx), for_update=True)
            check_revision(row["revision_number"], if_revision)
            # Where the port was and which groups it was in: those hosts must hear that it left.
            before = await port_groups(conn, port_id)
            related = await self.update_in(conn, ctx, row, changes)
            new = await fetch_one(conn, db.ports, "port", port_id)
            view = (await self._views(conn, [new]))[0]
            tx.emit(ChangeEvent("port", port_id, "update", view["revision_number"],
                                (("network_id", view["network_id"]), ("host", view["binding:host_id"]),
                                 ("security_group_ids", tuple(view["security_groups"])),
                                 ("previous_host", row["binding_host_id"]),
                                 ("previous_security_group_ids", before))),
                    *related)
            return view

        return await self.uow.run(work, rng=self.rng)

    async def update_in(self, conn: AsyncConnection, ctx: RequestContext, row: Any,
                        changes: dict[str, Any]) -> list[ChangeEvent]:
        """Apply ``changes`` to the port; returns change events of other objects it touched."""
        related: list[ChangeEvent] = []
        if "device_owner" in changes or "device_id" in changes:
            await self._check_device_ownership(conn, ctx, changes.get("device_owner", row["device_owner"]),
                                               changes.get("device_id", row["device_id"]))
        if changes.get("qos_policy_id") and changes["qos_policy_id"] != row["qos_policy_id"]:
            await self.networks.qos_policies.check(conn, ctx, changes["qos_policy_id"])
        values: dict[str, Any] = {}
        for key, col in (("name", "name"), ("description", "description"), ("admin_state_up", "admin_state_up"),
                         ("device_id", "device_id"), ("device_owner", "device_owner"),
                         ("qos_policy_id", "qos_policy_id"), ("dns_domain", "dns_domain"),
                         ("propagate_uplink_status", "propagate_uplink_status"),
                         ("numa_affinity_policy", "numa_affinity_policy"),
                         ("binding:profile", "binding_profile")):
            if key in changes:
                values[col] = changes[key] if changes[key] is not None or key != "binding:profile" else {}
        if "trusted" in changes:
            values["binding_profile"] = with_trusted(values.get("binding_profile", row["binding_profile"]) or {},
                                                     changes["trusted"])
        if "dns_name" in changes:
            values["dns_name"] = self._dns_name(changes["dns_name"])
        bound = row["binding_vif_type"] not in (UNBOUND, BINDING_FAILED)
        mac = row["mac_address"]
        mac_changed = False
        if "mac_address" in changes and changes["mac_address"] != row["mac_address"]:
            if row["device_owner"].startswith("network:"):
                raise UnsupportedPortDeviceOwner(op="mac_address update", device_owner=row["device_owner"],
                                                 port_id=row["id"])
            new_mac = changes["mac_address"] or await self._new_mac(conn, row["network_id"])
            if bound:
                raise PortBound(port_id=row["id"], vif_type=row["binding_vif_type"], old_mac=mac, new_mac=new_mac)
            if await self._mac_taken(conn, row["network_id"], new_mac):
                raise MacAddressInUse(net_id=row["network_id"], mac=new_mac)
            mac, mac_changed = new_mac, True
            values["mac_address"] = mac
        if "binding:vnic_type" in changes and changes["binding:vnic_type"] != row["binding_vnic_type"]:
            if bound:
                raise PortInUse(port_id=row["id"], net_id=row["network_id"], device_id=row["device_id"])
            values["binding_vnic_type"] = changes["binding:vnic_type"]
        rebound = await self._rebind(conn, row, changes, values)
        merged = {**dict(row), **values}
        device_mac = overridden_mac(merged["binding_vnic_type"], merged["binding_host_id"], merged["binding_profile"],
                                    rebound=rebound, released=bool(row["device_id"]) and not merged["device_id"]
                                    and not merged["device_owner"])
        if device_mac is not None and device_mac != mac:
            new_mac = device_mac or await self._new_mac(conn, row["network_id"])
            if await self._mac_taken(conn, row["network_id"], new_mac):
                raise MacAddressInUse(net_id=row["network_id"], mac=new_mac)
            mac, mac_changed = new_mac, True
            values["mac_address"] = mac
        port_security = changes.get("port_security_enabled", row["port_security_enabled"])
        values["port_security_enabled"] = port_security
        pairs = row["allowed_address_pairs"]
        if "allowed_address_pairs" in changes:
            pairs = self._address_pairs(changes["allowed_address_pairs"] or [])
            values["allowed_address_pairs"] = pairs
        if pairs and not port_security:
            raise AddressPairAndPortSecurityRequired()
        await self._update_security_groups(conn, ctx, row, changes, port_security)
        if "extra_dhcp_opts" in changes:
            values["extra_dhcp_opts"] = self._dhcp_opts(changes["extra_dhcp_opts"] or [], row["extra_dhcp_opts"])
        if "fixed_ips" in changes or mac_changed:
            await self._update_addresses(conn, row, changes.get("fixed_ips", UNSET), mac, mac_changed,
                                         changes.get("device_owner", row["device_owner"]))
            addresses = [ip.ip_address for ip in await allocations.of_port(conn, row["id"])]
            for hook in self.after_addresses_change:
                related.extend(await hook(conn, row, addresses))
        if mac_changed:
            for mac_hook in self.after_mac_change:
                related.extend(await mac_hook(conn, row))
        await bump_revision(conn, db.ports, row["id"], values)
        return related

    async def _rebind(self, conn: AsyncConnection, row: Any, changes: dict[str, Any], values: dict[str, Any]) -> bool:
        """Bind the port again when its binding's inputs change, as ML2 does: its host (unbound
        when cleared, DOWN until the new host's agent wires it), or on the same host its VNIC type
        or profile. Puts the result in ``values``; True if the binding was remade or removed."""
        host = row["binding_host_id"]
        if "binding:host_id" in changes and changes["binding:host_id"] != host:
            host = changes["binding:host_id"] or ""
            values.update(binding_host_id=host, status="DOWN")
        elif not host or all(values.get(col, row[col]) == row[col] for col in ("binding_profile", "binding_vnic_type")):
            return False
        if host:
            values["binding_vif_type"], values["binding_vif_details"] = await self.binder.bind(
                conn, {**dict(row), **values}, host)
        else:
            values["binding_vif_type"], values["binding_vif_details"] = UNBOUND, {}
        return True

    async def _update_security_groups(self, conn: AsyncConnection, ctx: RequestContext, row: Any,
                                      changes: dict[str, Any], port_security: bool) -> None:
        """A port with port security off has no groups: naming some is 400, keeping some is 409."""
        await self.security_groups.default_group(conn, ctx, row["project_id"])
        current = (await self.security_groups.of_ports(conn, [row["id"]])).get(row["id"], [])
        if "security_groups" in changes:
            wanted = list(changes["security_groups"] or [])
            if wanted and not port_security:
                raise PortSecurityAndIPRequiredForSecurityGroups()
            if changes.get("device_owner", row["device_owner"]).startswith(TRUSTED_OWNER_PREFIX):
                wanted = []
            if wanted != current:
                await self.security_groups.bind(conn, ctx, row["id"], row["project_id"], wanted)
            current = wanted
        if current and not port_security:
            raise PortSecurityPortHasSecurityGroup()

    async def _update_addresses(self, conn: AsyncConnection, row: Any, requested: Any, mac: str, mac_changed: bool,
                                device_owner: str) -> None:
        subnets = await allocations.network_subnets(conn, row["network_id"])
        await self._check_subnets_exist(conn, requested, subnets)
        current = await allocations.of_port(conn, row["id"])
        change = plan_fixed_ips_update(current, requested, subnets=subnets, network_id=row["network_id"],
                                       device_owner=device_owner, mac_address=mac, port_id=row["id"],
                                       mac_changed=mac_changed,
                                       ip_change_forbidden=await self._owned_by_router(conn, row))
        await allocations.remove(conn, row["id"], change.release)
        realised = await self._realise(conn, change.allocate, subnets, row["network_id"])
        await self._claim(conn, row["id"], row["network_id"], realised, subnets, change.allocate.prefer_lowest)
        await allocations.refresh_ports(conn, [row["id"]])

    async def _owned_by_router(self, conn: AsyncConnection, row: Any) -> bool:
        """Router interface ports of existing routers may not change their IPv4 address (Neutron's
        ``IP_UPDATE_NOT_ALLOWED_LIST``; a gateway port may: the router re-addresses it in place)."""
        routers = db.metadata.tables.get("routers")
        if routers is None or row["device_owner"] not in owners.ROUTER_INTERFACE_OWNERS_SNAT or not row["device_id"]:
            return False
        found = await conn.execute(select(routers.c.id).where(routers.c.id == row["device_id"]))
        return found.first() is not None

    # ---- delete ----------------------------------------------------------------------------

    async def delete(self, ctx: RequestContext, port_id: str, if_revision: int | None = None) -> None:
        async def work(tx: Transaction) -> None:
            conn = tx.conn
            row = await fetch_one(conn, db.ports, "port", port_id, port_visible(ctx), for_update=True)
            check_revision(row["revision_number"], if_revision)
            await self.check_deletable(conn, row)
            related: list[ChangeEvent] = []
            for hook in self.before_delete:
                related.extend(await hook(conn, row))
            groups = await port_groups(conn, port_id)
            await self.delete_in(conn, port_id)
            tx.emit(ChangeEvent("port", port_id, "delete", 0,
                                (("network_id", row["network_id"]), ("host", row["binding_host_id"]),
                                 ("security_group_ids", groups))), *related)

        await self.uow.run(work)

    async def check_deletable(self, conn: AsyncConnection, row: Any) -> None:
        """Router and floating-IP ports go with their owner, not through the port API."""
        owner_tables = {"network:router_interface": "routers", "network:router_gateway": "routers",
                        "network:floatingip": "floatingips", "network:router_interface_distributed": "routers",
                        "network:ha_router_replicated_interface": "routers",
                        "network:router_ha_interface": "routers"}
        table_name = owner_tables.get(row["device_owner"])
        table = db.metadata.tables.get(table_name) if table_name else None
        if table is not None and row["device_id"]:
            found = await conn.execute(select(table.c.id).where(table.c.id == row["device_id"]))
            if found.first() is not None:
                raise ServicePortInUse(port_id=row["id"], reason=f"has device owner {row['device_owner']}")

    async def delete_in(self, conn: AsyncConnection, port_id: str) -> None:
        await conn.execute(delete(db.ipallocations).where(db.ipallocations.c.port_id == port_id))
        await delete_tags(conn, "port", port_id)
        await conn.execute(delete(db.ports).where(db.ports.c.id == port_id))
