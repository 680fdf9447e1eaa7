"""Instances without Nova: create, delete, list and enter simulated VMs the way Nova drives Neutron.

``create`` follows Nova's order: the port is created in the user's project (``device_owner``
``compute:nova``, ``device_id`` the instance's uuid, named after the instance), then bound to the
chosen host with the compute service's credentials (``binding:host_id`` is admin/service-only),
then the VIF is plugged (see ``vif``) and, with ``dhcp``, a DHCP client started inside. A failure
at any step undoes the steps before it, so a failed create leaves neither port nor kernel objects.
``delete`` undoes it all in reverse; it also finishes an instance whose create was interrupted.

What is remembered between commands lives in the instance records (see ``records``); the port
itself stays the source of truth for addresses and status.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from neutrino.compute.clouds import NetworkingClient, PortFacts
from neutrino.compute.dhcp_client import DhcpClient
from neutrino.compute.errors import ComputeError, InstanceExists, InstanceNotPlugged
from neutrino.compute.records import InstanceRecord, InstanceStore, check_instance_name
from neutrino.compute.vif import (
    INSTANCE_INTERFACE,
    StaticAddressing,
    VifPlugger,
    VifSpec,
    instance_namespace,
    static_addressing,
)
from neutrino.dataplane.netlink import IPInterface, NetlinkDriver
from neutrino.dataplane.ownership import OwnerTag

DriverFactory = Callable[[OwnerTag], NetlinkDriver]


@dataclass(frozen=True, slots=True)
class FixedIpRequest:
    """One ``--fixed-ip``: an address, a subnet, or both."""

    ip_address: str | None = None
    subnet: str | None = None


def parse_fixed_ip(text: str) -> FixedIpRequest:
    """``10.0.0.5``, or the openstack CLI's ``subnet=NAME_OR_ID,ip-address=10.0.0.5`` (either key)."""
    if "=" not in text:
        return FixedIpRequest(ip_address=str(ipaddress.ip_address(text.strip())))
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip().replace("_", "-")
        if not sep or key not in ("subnet", "ip-address") or not value.strip():
            raise ValueError(f"--fixed-ip {text!r}: expected an IP or subnet=NAME,ip-address=IP")
        fields[key] = value.strip()
    address = fields.get("ip-address")
    return FixedIpRequest(
        ip_address=str(ipaddress.ip_address(address)) if address else None, subnet=fields.get("subnet")
    )


@dataclass(frozen=True, slots=True)
class CreateRequest:
    name: str
    network: str
    host: str
    fixed_ips: tuple[FixedIpRequest, ...] = ()
    security_groups: tuple[str, ...] = ()
    # False: the port is created with port_security_enabled=false (no groups, no anti-spoofing).
    port_security: bool = True
    # True: DHCP; False: static addresses from the port; None: DHCP when the port has an address on a
    # DHCP-enabled subnet (what a cloud image does), else static.
    dhcp: bool | None = None
    # How long create waits for the port to be ACTIVE and then for a DHCP lease (the client keeps
    # trying afterwards); 0: do not wait.
    dhcp_timeout: float = 0.0
    # Namespace of the (simulated) host holding the tap; None: the namespace the command runs in.
    host_namespace: str | None = None
    # For the metadata service: an OpenSSH public key, user data (base64).
    public_key: str | None = None
    user_data: str | None = None


@dataclass(frozen=True, slots=True)
class CreatedInstance:
    record: InstanceRecord
    port: PortFacts
    # The static addresses put on eth0, or (with DHCP) the leased one if it came in time.
    addresses: tuple[IPInterface, ...]
    dhcp_lease_timed_out: bool = False


@dataclass(frozen=True, slots=True)
class InstanceView:
    """One row of ``instance list``: the record, the port as the API shows it, the kernel state."""

    record: InstanceRecord
    # None: the port is gone, or the API could not be asked (``port_error`` says why).
    port: PortFacts | None
    plugged: bool
    port_error: str | None = None


class Instances:
    """The instance simulator of one state directory.

    ``user`` and ``compute`` are called lazily: ``delete``/``list`` never authenticate as the
    compute service and ``exec`` talks to no API at all. ``user`` is given the cloud an instance
    was created with, to use when the command line and environment name none, so ``delete`` acts
    as the project that owns the port (another project would get a 404 and leak the port).
    """

    def __init__(
        self,
        store: InstanceStore,
        *,
        user: Callable[[str | None], NetworkingClient],
        compute: Callable[[], NetworkingClient],
        driver_for: DriverFactory = NetlinkDriver,
        now: Callable[[], str] = lambda: "",
    ) -> None:
        self.store = store
        self._user = user
        self._compute = compute
        self._driver_for = driver_for
        self._now = now

    def _driver(self, host: str) -> NetlinkDriver:
        return self._driver_for(OwnerTag(host))

    def _dhcp_client(self, record: InstanceRecord, driver: NetlinkDriver) -> DhcpClient:
        return DhcpClient(self.store.runtime_dir(record.name), record.namespace, driver.owner,
                          interface=INSTANCE_INTERFACE, netns_dir=driver.netns_dir)

    # -- create --

    async def create(self, request: CreateRequest, *, instance_id: str) -> CreatedInstance:
        """Create the port, bind it, plug the VIF; all or nothing. ``instance_id`` is Nova's uuid."""
        name = check_instance_name(request.name)
        driver = self._driver(request.host)  # validates the host name before anything is created
        namespace = instance_namespace(name)
        if self.store.record_path(name).exists():
            raise InstanceExists(name)
        if await driver.namespace_exists(namespace):
            # Namespaces are global to the kernel: another state directory's instance has this name.
            raise ComputeError(f"namespace {namespace} already exists (an instance of another state directory?)")
        user = self._user(None)
        network = await user.find_network(request.network)
        record = InstanceRecord(
            name=name,
            instance_id=instance_id,
            host=request.host,
            namespace=namespace,
            host_namespace=request.host_namespace,
            dhcp=bool(request.dhcp),
            network_id=network.id,
            cloud=user.cloud,
            created_at=self._now(),
            public_key=request.public_key,
            key_name="key" if request.public_key else None,
            user_data=request.user_data,
        )
        self.store.claim(record)
        try:
            fixed_ips = [await self._fixed_ip(user, wanted, network.id) for wanted in request.fixed_ips]
            groups = [await user.find_security_group_id(group) for group in request.security_groups]
            port = await user.create_port(network_id=network.id, name=name, device_id=instance_id,
                                          fixed_ips=fixed_ips, security_group_ids=groups,
                                          port_security=request.port_security)
            record = dataclasses.replace(record, port_id=port.id)
            self.store.save(record)
            port = await self._compute().bind_port(port.id, request.host)
            subnets = {ip["subnet_id"]: await user.get_subnet(ip["subnet_id"]) for ip in port.fixed_ips}
            dhcp = request.dhcp
            if dhcp is None:
                dhcp = any(subnet.enable_dhcp for subnet in subnets.values())
            if dhcp != record.dhcp:
                record = dataclasses.replace(record, dhcp=dhcp)
                self.store.save(record)
            addressing = None if dhcp else static_addressing(port.fixed_ips, subnets)
            spec = VifSpec(port.id, port.mac_address, network.mtu, record.namespace, record.host_namespace,
                           addressing)
            await VifPlugger(driver).plug(spec)
            return await self._finish_create(record, port, addressing, request, driver)
        except BaseException as failure:
            try:
                await self._teardown(record, driver)
            except Exception as cleanup_failure:  # the record stays, so `instance delete` can finish
                raise ComputeError(
                    f"creating {name!r} failed ({failure}), and undoing it failed too ({cleanup_failure}); "
                    f"run `neutrino instance delete {name}`"
                ) from failure
            raise

    async def _fixed_ip(self, user: NetworkingClient, wanted: FixedIpRequest, network_id: str) -> dict[str, str]:
        fixed: dict[str, str] = {}
        if wanted.subnet:
            fixed["subnet_id"] = await user.find_subnet_id(wanted.subnet, network_id)
        if wanted.ip_address:
            fixed["ip_address"] = wanted.ip_address
        return fixed

    async def _finish_create(
        self, record: InstanceRecord, port: PortFacts, addressing: StaticAddressing | None,
        request: CreateRequest, driver: NetlinkDriver,
    ) -> CreatedInstance:
        if addressing is not None:
            return CreatedInstance(record, port, addressing.addresses)
        # As Nova boots a guest once Neutron says its VIF is plugged: the DHCP client starts when
        # the port is ACTIVE (the L2 agent wired the tap, so the DHCP server is reachable).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + request.dhcp_timeout
        port = await self._wait_active(port, deadline)
        client = self._dhcp_client(record, driver)
        await client.start()
        if request.dhcp_timeout <= 0:
            return CreatedInstance(record, port, ())
        lease = await client.wait_for_lease(driver, max(deadline - loop.time(), 0.0))
        return CreatedInstance(record, port, (lease,) if lease else (), dhcp_lease_timed_out=lease is None)

    async def _wait_active(self, port: PortFacts, deadline: float) -> PortFacts:
        """The port once it is ACTIVE, or as it is at ``deadline`` (the DHCP client keeps trying)."""
        loop = asyncio.get_running_loop()
        user = self._user(None)
        while port.status != "ACTIVE" and loop.time() < deadline:
            await asyncio.sleep(0.1)
            port = await user.get_port(port.id) or port
        return port

    # -- delete --

    async def delete(self, name: str) -> InstanceRecord:
        """Unplug, delete the port (as the user) and forget the instance; safe to repeat after a failure."""
        record = self.store.load(name)
        await self._teardown(record, self._driver(record.host))
        return record

    async def _teardown(self, record: InstanceRecord, driver: NetlinkDriver) -> None:
        await self._dhcp_client(record, driver).stop()
        plugger = VifPlugger(driver)
        if record.port_id:
            await plugger.unplug(record.port_id, record.namespace, record.host_namespace)
            await self._user(record.cloud).delete_port(record.port_id)
        else:
            await driver.remove_namespace(record.namespace)
        self.store.remove(record.name)

    # -- list --

    async def list(self) -> tuple[InstanceView, ...]:
        """Every instance of this state directory with its port's status and addresses."""
        records = list(self.store.all())
        clients = {record.cloud: self._user(record.cloud) for record in records}
        ports: dict[str, PortFacts] = {}
        errors: dict[str | None, str] = {}
        for client in {client.cloud: client for client in clients.values()}.values():
            try:
                ports.update((port.id, port) for port in await client.list_compute_ports())
            except ComputeError as exc:
                errors[client.cloud] = str(exc)
        views = []
        for record in records:
            plugged = await self._driver(record.host).namespace_exists(record.namespace)
            port = ports.get(record.port_id or "")
            error = errors.get(clients[record.cloud].cloud) or (None if port else "port not found")
            views.append(InstanceView(record, port, plugged, error))
        return tuple(views)

    # -- exec --

    async def exec(self, name: str, command: Sequence[str]) -> int:
        """Run ``command`` inside the instance; its stdin/stdout/stderr are this process's; returns its status."""
        if not command:
            raise ComputeError("no command given (usage: neutrino instance exec NAME -- COMMAND...)")
        record = self.store.load(name)
        if not await self._driver(record.host).namespace_exists(record.namespace):
            raise InstanceNotPlugged(record.name, record.namespace)
        process = await asyncio.create_subprocess_exec("ip", "netns", "exec", record.namespace, *command)
        try:
            return await process.wait()
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise
