"""The netlink driver: namespaces, links, addresses, routes, VXLAN FDB entries, sysctls, link events
(and gratuitous ARP, a raw frame sent from the namespace).

This is the only module that writes the kernel's L2/L3 plumbing; agents decide *what* they want in
pure planning code and call these methods to make it so. Every write is idempotent and verified:
``ensure_*`` tolerates "exists", converges the attributes it is given, then reads the object back
and raises :class:`NotConverged` if the kernel does not show what was asked; ``remove_*`` treats
"absent" (including "its namespace is gone") as success. Reads return frozen dataclasses.

Seams a caller may rely on:

* Every method takes ``netns``: a namespace name under /run/netns (the ``ip netns`` directory, so
  ``ip -n NAME`` sees the same thing), or None for the namespace this process runs in.
* Everything an ``ensure_*`` creates or adopts carries the owner's interface alias
  (``neutrino:<host>``, see ``ownership``); :meth:`NetlinkDriver.list_owned` and
  :meth:`NetlinkDriver.list_owned_namespaces` find exactly those for cleanup.
* :meth:`NetlinkDriver.watch_links` reports link add/remove from the kernel's RTNLGRP_LINK
  multicast group (no polling).

How namespaces are entered: pyroute2 (0.9) would fork a child per namespaced socket. Instead this
driver opens a netlink socket from a short-lived thread that ``setns(2)``-ed into the namespace: a
socket stays bound to the namespace it was created in, ``setns(CLONE_NEWNET)`` affects only the
calling thread, and the thread ends right after, so no thread of the process is ever left in a
foreign namespace and nothing forks. That socket is then driven by pyroute2's ``AsyncIPRoute`` on the
caller's event loop. Sysctls use the same kind of thread: ``/proc/sys/net`` shows the network
namespace of the thread that opens it. Sockets are opened per call and closed after: a held socket
would keep a deleted namespace (and its devices) alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import functools
import ipaddress
import os
import socket
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from pyroute2 import AsyncIPRoute
from pyroute2.netlink import NETLINK_ROUTE
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

from neutrino.contract.names import checked_device_name, checked_namespace_name
from neutrino.dataplane.ownership import OwnerTag

# The directory `ip netns` uses; /var/run is a symlink to it.
NETNS_DIR = Path("/run/netns")
# The MAC of a VXLAN FDB entry that floods BUM traffic to a remote VTEP (head-end replication).
FLOODING_MAC = "00:00:00:00:00:00"
VXLAN_DEFAULT_PORT = 4789

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Linux constants (include/uapi/linux/sched.h, mount.h, if.h, rtnetlink.h, neighbour.h).
_CLONE_NEWNET = 0x40000000
_MS_BIND = 4096
_MS_REC = 16384
_MS_SHARED = 1 << 20
_MNT_DETACH = 2
_IFF_UP = 0x1
_SO_RCVBUFFORCE = 33
_RTMGRP_LINK = 0x1
_AF_BRIDGE = 7
_RT_TABLE_MAIN = 254
_RTN_UNICAST = 1
_IFA_F_NODAD = 0x02
_NUD_PERMANENT = 0x80
_NTF_SELF = 0x02
_SCOPES = {0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere"}


# ---- errors ---------------------------------------------------------------------------------------


class NetlinkDriverError(Exception):
    """Base of the driver's errors; agents report them as the reason a resource is not wired."""


class NamespaceNotFound(NetlinkDriverError):
    def __init__(self, netns: str) -> None:
        super().__init__(f"network namespace {netns!r} does not exist")
        self.netns = netns


class LinkNotFound(NetlinkDriverError):
    def __init__(self, name: str, netns: str | None) -> None:
        super().__init__(f"device {name!r} not found in {_where(netns)}")
        self.name = name
        self.netns = netns


class LinkConflict(NetlinkDriverError):
    """A device Neutrino does not own holds the wanted name but has the wrong shape; left alone."""

    def __init__(self, name: str, netns: str | None, reason: str) -> None:
        super().__init__(f"device {name!r} in {_where(netns)} is not ours and {reason}")
        self.name = name
        self.netns = netns


class NotConverged(NetlinkDriverError):
    """The kernel, read back after a write, does not show what was asked."""


class KernelRefused(NetlinkDriverError):
    """The kernel answered a request with an error the driver has no way around."""

    def __init__(self, action: str, netns: str | None, code: int, detail: str = "") -> None:
        text = detail or os.strerror(code)
        super().__init__(f"{action} in {_where(netns)} failed: [errno {code}] {text}")
        self.action = action
        self.code = code


def _where(netns: str | None) -> str:
    return "the current namespace" if netns is None else f"namespace {netns!r}"


# ---- data -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VxlanSettings:
    """What identifies a VXLAN device; changing any of these means recreating it."""

    vni: int
    local_ip: IPAddress
    dstport: int = VXLAN_DEFAULT_PORT
    learning: bool = False
    # Index of the underlay device the VTEP is bound to, if any.
    dev_index: int | None = None


@dataclass(frozen=True, slots=True)
class Link:
    """One network device as the kernel shows it."""

    name: str
    index: int
    # IFLA_INFO_KIND: "bridge", "veth", "vxlan", "tun", ...; None for loopback and real NICs.
    kind: str | None
    # Name of the bridge the device is a port of.
    master: str | None
    mtu: int
    mac: str
    # Operational state (IFLA_OPERSTATE) lower-cased: "up", "down", "lowerlayerdown", "unknown", ...
    state: str
    # Administrative state (IFF_UP): what set_up/set_down change.
    admin_up: bool
    alias: str | None
    # IFLA_LINK: a veth's peer index (in the peer's namespace when link_netnsid is set).
    link_index: int | None = None
    link_netnsid: int | None = None
    vxlan: VxlanSettings | None = None
    # IFLA_QDISC: the kind of the device's root qdisc ("noqueue", "htb", ...).
    qdisc: str | None = None


@dataclass(frozen=True, slots=True)
class Address:
    device: str
    interface: IPInterface
    # "global", "link", "host", ...
    scope: str

    @property
    def cidr(self) -> str:
        return str(self.interface)


@dataclass(frozen=True, slots=True)
class Route:
    """A unicast route of the main table."""

    destination: IPNetwork
    gateway: IPAddress | None
    device: str | None
    # A multipath (ECMP) route: its nexthops' gateways, sorted; ``gateway`` and ``device`` are None then.
    nexthops: tuple[IPAddress, ...] = ()


@dataclass(frozen=True, slots=True)
class FdbEntry:
    """A forwarding entry on a device; ``dst`` is the remote VTEP for VXLAN entries."""

    device: str
    mac: str
    dst: IPAddress | None


LinkEventType = Literal["added", "changed", "removed", "overflow"]


@dataclass(frozen=True, slots=True)
class LinkEvent:
    """A change of one link, or ``overflow`` when the kernel dropped events (see LinkWatch).

    ``link`` is the device as the event described it; None for ``overflow`` and for removals
    found by re-reading after an overflow.
    """

    event: LinkEventType
    name: str
    index: int
    kind: str | None
    link: Link | None = None


# ---- entering namespaces from short-lived threads ----------------------------------------------------


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check_libc(result: int, what: str, target: object) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}", str(target))


def _enter_namespace(path: Path) -> None:
    """Move the *calling thread* into the namespace bound at ``path``."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check_libc(_libc().setns(fd, _CLONE_NEWNET), "setns", path)
    finally:
        os.close(fd)


def _discard(value: object) -> None:
    if isinstance(value, socket.socket):
        value.close()


T = TypeVar("T")


async def _run_in_fresh_thread(work: Callable[[], T]) -> T:
    """Run blocking ``work`` in a new thread that ends with it.

    Used for anything that calls setns/unshare on its thread: the thread, and whatever namespace it
    entered, is gone when ``work`` returns. A result nobody awaits any more (cancelled caller) is
    closed if it is a socket, so cancellation leaks nothing.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def deliver(ok: bool, value: Any) -> None:
        if future.done():
            if ok:
                _discard(value)
        elif ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def body() -> None:
        try:
            value: Any = work()
            ok = True
        except BaseException as exc:  # handed over to the awaiting task
            value, ok = exc, False
        try:
            loop.call_soon_threadsafe(deliver, ok, value)
        except RuntimeError:  # the loop is closed: nobody will take the result
            if ok:
                _discard(value)

    threading.Thread(target=body, name="neutrino-netns", daemon=True).start()
    return await future


async def call_in_namespace(path: Path, work: Callable[[], T]) -> T:
    """Run blocking ``work`` on a thread of its own inside the network namespace bound at ``path``
    (a socket it opens stays in that namespace); this process's other threads are not moved."""

    def inside() -> T:
        _enter_namespace(path)
        return work()

    return await _run_in_fresh_thread(inside)


def _is_mount_point(path: Path) -> bool:
    # A bind-mounted nsfs file lives on another device than the directory holding it.
    try:
        return os.stat(path).st_dev != os.stat(path.parent).st_dev
    except FileNotFoundError:
        return False


def _make_directory_shared(directory: Path) -> None:
    """Make the namespace directory a shared mount, as `ip netns add` does.

    Shared propagation lets namespaces bound here appear in other mount namespaces (and be unbound
    from there). If the directory is not a mount point yet, bind it onto itself first.
    """
    directory.mkdir(parents=True, exist_ok=True)
    libc = _libc()
    target = bytes(directory)
    if libc.mount(b"none", target, None, _MS_SHARED | _MS_REC, None) == 0:
        return
    _check_libc(libc.mount(target, target, b"none", _MS_BIND | _MS_REC, None), "bind mount", directory)
    _check_libc(libc.mount(b"none", target, None, _MS_SHARED | _MS_REC, None), "make shared", directory)


def _create_namespace_blocking(path: Path) -> None:
    """Create a network namespace and bind it at ``path``; an existing binding is kept."""
    if _is_mount_point(path):
        return
    _make_directory_shared(path.parent)
    # A left-over plain file (crash between create and mount) is reused as the mount point.
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o444))
    libc = _libc()
    # unshare(CLONE_NEWNET) gives only this (throw-away) thread a new namespace; binding its nsfs
    # file keeps the namespace alive after the thread ends.
    _check_libc(libc.unshare(_CLONE_NEWNET), "unshare", path)
    source = b"/proc/thread-self/ns/net"
    _check_libc(libc.mount(source, bytes(path), b"none", _MS_BIND, None), "bind namespace", path)


def _remove_namespace_blocking(path: Path) -> None:
    # MNT_DETACH: the namespace lives on while something still holds it (a process, a socket).
    if _libc().umount2(bytes(path), _MNT_DETACH) != 0:
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOENT):  # not mounted / no such file: nothing to undo
            raise OSError(code, f"umount: {os.strerror(code)}", str(path))
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _sysctl_path(key: str) -> Path:
    """/proc/sys path of a per-namespace sysctl.

    Only ``net.*`` keys are accepted: they are the ones that exist per network namespace; writing
    any other "inside a namespace" would silently change the whole machine. A key whose components
    contain dots (a device such as ``eth0.100``) can be given with '/' separators instead.
    """
    parts = key.split("/") if "/" in key else key.split(".")
    if parts[0] != "net" or len(parts) < 2 or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"sysctl {key!r} is not a per-namespace net.* key")
    return Path("/proc/sys", *parts)


def _normalize_sysctl(value: str) -> str:
    # The kernel separates multi-value sysctls with tabs and ends with a newline.
    return " ".join(str(value).split())


# ---- decoding pyroute2 messages ---------------------------------------------------------------------------


def _normalize_mac(mac: str) -> str:
    parts = mac.strip().lower().replace("-", ":").split(":")
    if len(parts) != 6 or not all(len(p) in (1, 2) for p in parts):
        raise ValueError(f"invalid MAC address {mac!r}")
    try:
        return ":".join(f"{int(p, 16):02x}" for p in parts)
    except ValueError:
        raise ValueError(f"invalid MAC address {mac!r}") from None


def _decode_vxlan(msg: Any) -> VxlanSettings | None:
    if msg.get(("linkinfo", "kind")) != "vxlan":
        return None
    data = msg.get(("linkinfo", "data"))
    if data is None:
        return None
    local = data.get("vxlan_local") or data.get("vxlan_local6")
    return VxlanSettings(
        vni=int(data.get("vxlan_id")),
        local_ip=ipaddress.ip_address(local) if local else ipaddress.IPv4Address(0),
        dstport=int(data.get("vxlan_port") or 0),
        learning=bool(data.get("vxlan_learning")),
        dev_index=data.get("vxlan_link") or None,
    )


def _decode_link(msg: Any, names_by_index: dict[int, str]) -> Link:
    master_index = msg.get("master")
    operstate = msg.get("operstate") or "unknown"
    return Link(
        name=msg.get("ifname"),
        index=int(msg["index"]),
        kind=msg.get(("linkinfo", "kind")),
        master=names_by_index.get(master_index) if master_index else None,
        mtu=int(msg.get("mtu") or 0),
        mac=(msg.get("address") or "").lower(),
        state=str(operstate).lower(),
        admin_up=bool(msg["flags"] & _IFF_UP),
        alias=msg.get("ifalias") or None,
        link_index=msg.get("link") or None,
        link_netnsid=msg.get("link_netnsid"),
        vxlan=_decode_vxlan(msg),
        qdisc=msg.get("qdisc") or None,
    )


class _Keep:
    """Marker: leave this attribute as it is."""


_KEEP = _Keep()


@contextlib.asynccontextmanager
async def _rtnl_session(sock: socket.socket, netns: str | None) -> AsyncIterator[_RtnlSession]:
    """Drive an rtnetlink socket (already in its namespace) with pyroute2; closes it after."""
    try:
        ipr = AsyncIPRoute(fileno=sock.fileno(), ext_ack=True)
    except BaseException:
        sock.close()
        raise
    sock.detach()  # the descriptor now belongs to pyroute2's socket object
    try:
        yield _RtnlSession(ipr, netns)
    finally:
        ipr.close()


class _RtnlSession:
    """One rtnetlink socket in one namespace, for the length of one driver call."""

    def __init__(self, ipr: AsyncIPRoute, netns: str | None) -> None:
        self.ipr = ipr
        self.netns = netns

    async def call(self, action: str, request: Callable[[], Any], tolerate: Iterable[int] = ()) -> Any:
        """Send one request; errnos in ``tolerate`` return None, others raise KernelRefused."""
        try:
            return await request()
        except NetlinkError as exc:
            if exc.code in tuple(tolerate):
                return None
            detail = str(exc.args[1]) if len(exc.args) > 1 else ""
            raise KernelRefused(action, self.netns, exc.code, detail) from exc

    async def link_message(self, *, name: str | None = None, index: int | None = None) -> Any | None:
        what = {"ifname": name} if name is not None else {"index": index}
        found = await self.call(
            f"get link {name or index}", lambda: self.ipr.link("get", **what), tolerate=(errno.ENODEV,)
        )
        return found[0] if found else None

    async def link(self, name: str) -> Link | None:
        msg = await self.link_message(name=name)
        if msg is None:
            return None
        names: dict[int, str] = {}
        master_index = msg.get("master")
        if master_index:
            master = await self.link_message(index=master_index)
            if master is not None:
                names[master_index] = master.get("ifname")
        return _decode_link(msg, names)

    async def require_link(self, name: str) -> Link:
        link = await self.link(name)
        if link is None:
            raise LinkNotFound(name, self.netns)
        return link

    async def links(self) -> list[Link]:
        messages = [m async for m in await self.call("dump links", lambda: self.ipr.link("dump"))]
        names = {int(m["index"]): m.get("ifname") for m in messages}
        return [_decode_link(m, names) for m in messages]

    async def index_of(self, name: str) -> int:
        msg = await self.link_message(name=name)
        if msg is None:
            raise LinkNotFound(name, self.netns)
        return int(msg["index"])

    async def converge(
        self,
        link: Link,
        *,
        mtu: int | None = None,
        mac: str | None = None,
        alias: str | None = None,
        master: str | None | _Keep = _KEEP,
        up: bool | None = None,
    ) -> Link:
        """Set what differs from the wish in one request, then read back and check it all."""
        mac = _normalize_mac(mac) if mac is not None else None
        changes: dict[str, Any] = {}
        if mtu is not None and link.mtu != mtu:
            changes["mtu"] = mtu
        if mac is not None and link.mac != mac:
            changes["address"] = mac
        if alias is not None and link.alias != alias:
            changes["ifalias"] = alias
        if not isinstance(master, _Keep) and link.master != master:
            changes["master"] = 0 if master is None else await self.index_of(master)
        if up is not None and link.admin_up != up:
            changes["state"] = "up" if up else "down"
        if changes:
            await self.call(
                f"set {sorted(changes)} on {link.name}",
                lambda: self.ipr.link("set", index=link.index, **changes),
            )
        after = await self.require_link(link.name)
        checks: list[tuple[str, object, object]] = [
            ("mtu", mtu, after.mtu),
            ("mac", mac, after.mac),
            ("alias", alias, after.alias),
            ("admin_up", up, after.admin_up),
        ]
        wrong = [
            f"{attr}={got!r} (wanted {want!r})"
            for attr, want, got in checks
            if want is not None and want != got
        ]
        if not isinstance(master, _Keep) and after.master != master:
            wrong.append(f"master={after.master!r} (wanted {master!r})")
        if wrong:
            raise NotConverged(f"{link.name} in {_where(self.netns)}: " + ", ".join(wrong))
        return after


# ---- the driver -------------------------------------------------------------------------------------------


class NetlinkDriver:
    """Kernel networking objects for one Neutrino owner (host); safe to call concurrently.

    Holds no kernel resources between calls, so it can be created once and shared.
    """

    def __init__(self, owner: OwnerTag, netns_dir: Path = NETNS_DIR) -> None:
        self.owner = owner
        self.netns_dir = netns_dir
        self._namespace_lock = asyncio.Lock()

    # -- plumbing --

    def _namespace_path(self, netns: str) -> Path:
        return self.netns_dir / checked_namespace_name(netns)

    async def _open_socket(self, netns: str | None, sock_type: int) -> socket.socket:
        if netns is None:
            return socket.socket(socket.AF_NETLINK, sock_type, NETLINK_ROUTE)
        path = self._namespace_path(netns)

        def open_inside() -> socket.socket:
            _enter_namespace(path)
            return socket.socket(socket.AF_NETLINK, sock_type, NETLINK_ROUTE)

        try:
            return await _run_in_fresh_thread(open_inside)
        except FileNotFoundError:
            raise NamespaceNotFound(netns) from None
        except OSError as exc:
            if exc.errno == errno.EINVAL:  # a file that is not a namespace binding
                raise NamespaceNotFound(netns) from exc
            raise

    @contextlib.asynccontextmanager
    async def _session(self, netns: str | None) -> AsyncIterator[_RtnlSession]:
        sock = await self._open_socket(netns, socket.SOCK_DGRAM)
        async with _rtnl_session(sock, netns) as session:
            yield session

    @contextlib.asynccontextmanager
    async def _session_or_none(self, netns: str | None) -> AsyncIterator[_RtnlSession | None]:
        """A session, or None when the namespace is gone (for removes: absent counts as done)."""
        try:
            sock = await self._open_socket(netns, socket.SOCK_DGRAM)
        except NamespaceNotFound:
            yield None
            return
        async with _rtnl_session(sock, netns) as session:
            yield session

    async def _clear_for(self, session: _RtnlSession, link: Link, reason: str) -> None:
        """Remove our own mis-shaped device so it can be recreated; refuse to touch foreign ones."""
        if not self.owner.owns(link.alias):
            raise LinkConflict(link.name, session.netns, reason)
        await session.call(
            f"delete {link.name}", lambda: session.ipr.link("del", index=link.index), tolerate=(errno.ENODEV,)
        )

    # -- namespaces --

    async def ensure_namespace(self, name: str) -> None:
        """Create the namespace if missing, set its loopback up and mark it as ours."""
        path = self._namespace_path(name)
        async with self._namespace_lock:
            await _run_in_fresh_thread(functools.partial(_create_namespace_blocking, path))
        async with self._session(name) as session:
            loopback = await session.require_link("lo")
            await session.converge(loopback, alias=self.owner.alias, up=True)

    async def remove_namespace(self, name: str) -> None:
        """Unbind the namespace; absent is success.

        The kernel frees the namespace, and destroys its devices (veth peers included), once the
        last process or socket inside it is gone: stop a namespace's processes before this.
        """
        path = self._namespace_path(name)
        async with self._namespace_lock:
            await asyncio.to_thread(_remove_namespace_blocking, path)
        if path.exists():
            raise NotConverged(f"namespace {name!r} is still bound at {path}")

    async def list_namespaces(self) -> tuple[str, ...]:
        try:
            names = await asyncio.to_thread(os.listdir, self.netns_dir)
        except FileNotFoundError:
            return ()
        return tuple(sorted(names))

    async def namespace_exists(self, name: str) -> bool:
        return await asyncio.to_thread(_is_mount_point, self._namespace_path(name))

    async def list_owned_namespaces(self) -> tuple[str, ...]:
        """Namespaces whose loopback carries this owner's mark (see ensure_namespace)."""
        owned = []
        for name in await self.list_namespaces():
            try:
                async with self._session(name) as session:
                    loopback = await session.link("lo")
            except (NamespaceNotFound, KernelRefused):
                continue
            if loopback is not None and self.owner.owns(loopback.alias):
                owned.append(name)
        return tuple(owned)

    # -- links: reading --

    async def get_link(self, name: str, *, netns: str | None = None) -> Link | None:
        async with self._session(netns) as session:
            return await session.link(name)

    async def list_links(self, *, netns: str | None = None) -> tuple[Link, ...]:
        async with self._session(netns) as session:
            return tuple(await session.links())

    async def list_owned(self, *, netns: str | None = None) -> tuple[Link, ...]:
        """Devices in the namespace that carry this owner's alias, for cleanup to remove.

        The loopback device is left out: its alias marks the namespace (see ensure_namespace), and
        it cannot be deleted anyway.
        """
        return tuple(
            link
            for link in await self.list_links(netns=netns)
            if self.owner.owns(link.alias) and link.name != "lo"
        )

    # -- links: creating --

    async def _create(self, session: _RtnlSession, name: str, request: Callable[[], Any]) -> Link:
        # EEXIST: someone created it between our look and our add; converge what is there.
        await session.call(f"create {name}", request, tolerate=(errno.EEXIST,))
        return await session.require_link(name)

    async def ensure_bridge(
        self, name: str, *, netns: str | None = None, mtu: int | None = None, up: bool = True
    ) -> Link:
        """A Linux bridge named ``name`` (STP off, the kernel default), marked as ours.

        Setting ``mtu`` pins the bridge's MTU; without it the kernel follows its ports' smallest MTU.
        """
        checked_device_name(name)
        async with self._session(netns) as session:
            link = await session.link(name)
            if link is not None and link.kind != "bridge":
                await self._clear_for(session, link, f"is a {link.kind}, not a bridge")
                link = None
            if link is None:
                link = await self._create(
                    session, name, lambda: session.ipr.link("add", ifname=name, kind="bridge")
                )
                if link.kind != "bridge":
                    raise LinkConflict(name, netns, f"appeared as a {link.kind} while creating a bridge")
            return await session.converge(link, mtu=mtu, alias=self.owner.alias, up=up)

    async def ensure_veth(
        self,
        name: str,
        peer: str,
        *,
        netns: str | None = None,
        peer_netns: str | None = None,
        mtu: int | None = None,
        mac: str | None = None,
        peer_mac: str | None = None,
        up: bool = True,
    ) -> tuple[Link, Link]:
        """A veth pair ``name`` (in ``netns``) <-> ``peer`` (in ``peer_netns``).

        ``peer_netns=None`` means the same namespace as ``name`` (to put the peer in this process's
        own namespace, swap the ends). An existing ``name`` whose peer is not ``peer`` is replaced (a
        veth's peer cannot change). ``mtu`` applies to both ends, ``up`` brings both ends up.
        Returns (name, peer) as read back.
        """
        checked_device_name(name)
        checked_device_name(peer)
        peer_ns = netns if peer_netns is None else peer_netns
        if peer_ns == netns and peer == name:
            raise ValueError("a veth and its peer in one namespace need different names")
        async with contextlib.AsyncExitStack() as stack:
            here = await stack.enter_async_context(self._session(netns))
            there = here if peer_ns == netns else await stack.enter_async_context(self._session(peer_ns))
            link, peer_link = await here.link(name), await there.link(peer)
            paired = (
                link is not None
                and peer_link is not None
                and link.kind == "veth"
                and peer_link.kind == "veth"
                and link.link_index == peer_link.index
                and peer_link.link_index == link.index
            )
            if not paired:
                if link is not None:
                    await self._clear_for(here, link, f"is not a veth paired with {peer!r}")
                if peer_link is not None:
                    peer_link = await there.link(peer)  # deleting ``link`` may have taken it along
                    if peer_link is not None:
                        await self._clear_for(there, peer_link, f"is not a veth paired with {name!r}")
                link, peer_link = await self._create_veth(
                    here, there, name, peer, peer_ns, mtu, mac, peer_mac
                )
            assert link is not None and peer_link is not None
            link = await here.converge(link, mtu=mtu, mac=mac, alias=self.owner.alias, up=up)
            peer_link = await there.converge(peer_link, mtu=mtu, mac=peer_mac, alias=self.owner.alias, up=up)
            return link, peer_link

    async def _create_veth(
        self,
        here: _RtnlSession,
        there: _RtnlSession,
        name: str,
        peer: str,
        peer_ns: str | None,
        mtu: int | None,
        mac: str | None,
        peer_mac: str | None,
    ) -> tuple[Link, Link]:
        peer_spec: dict[str, Any] = {"ifname": peer}
        if peer_mac is not None:
            peer_spec["address"] = _normalize_mac(peer_mac)
        if mtu is not None:
            peer_spec["mtu"] = mtu
        extra: dict[str, Any] = {}
        if mac is not None:
            extra["address"] = _normalize_mac(mac)
        if mtu is not None:
            extra["mtu"] = mtu
        with contextlib.ExitStack() as stack:
            if peer_ns != here.netns:
                peer_spec["net_ns_fd"] = stack.enter_context(self._namespace_fd(peer_ns))
            await here.call(
                f"create veth {name}/{peer}",
                lambda: here.ipr.link("add", ifname=name, kind="veth", peer=peer_spec, **extra),
                tolerate=(errno.EEXIST,),
            )
        link, peer_link = await here.require_link(name), await there.require_link(peer)
        if link.link_index != peer_link.index or peer_link.link_index != link.index:
            raise NotConverged(f"veth {name} and {peer} exist but are not one pair (a concurrent create?)")
        return link, peer_link

    @contextlib.contextmanager
    def _namespace_fd(self, netns: str | None) -> Iterator[int]:
        """An open fd of a namespace for IFLA_NET_NS_FD; None is this process's namespace."""
        path = Path("/proc/self/ns/net") if netns is None else self._namespace_path(netns)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NamespaceNotFound(str(netns)) from None
        try:
            yield fd
        finally:
            os.close(fd)

    async def ensure_vxlan(
        self,
        name: str,
        vni: int,
        local_ip: str | IPAddress,
        *,
        netns: str | None = None,
        dev: str | None = None,
        dstport: int = VXLAN_DEFAULT_PORT,
        learning: bool = False,
        mtu: int | None = None,
        up: bool = True,
    ) -> Link:
        """A unicast VXLAN device (no multicast group; floods go to FDB head-end entries).

        ``learning=False`` is Neutron's l2population setting: remote MACs come from fdb_append, not
        from snooping. An existing device with other VNI/local IP/port/learning/underlay is ours to
        recreate (its FDB entries go with it; the caller's reconcile puts them back).
        """
        checked_device_name(name)
        local = ipaddress.ip_address(local_ip)
        async with self._session(netns) as session:
            dev_index = await session.index_of(dev) if dev is not None else None
            want = VxlanSettings(vni, local, dstport, learning, dev_index)
            link = await session.link(name)
            if link is not None and link.vxlan != want:
                await self._clear_for(session, link, f"is not a VXLAN with {want}")
                link = None
            if link is None:
                spec: dict[str, Any] = {
                    "vxlan_id": vni,
                    "vxlan_port": dstport,
                    "vxlan_learning": int(learning),
                    ("vxlan_local" if local.version == 4 else "vxlan_local6"): str(local),
                }
                if dev_index is not None:
                    spec["vxlan_link"] = dev_index
                link = await self._create(
                    session, name, lambda: session.ipr.link("add", ifname=name, kind="vxlan", **spec)
                )
                if link.vxlan != want:
                    raise NotConverged(f"{name}: kernel shows {link.vxlan}, wanted {want}")
            return await session.converge(link, mtu=mtu, alias=self.owner.alias, up=up)

    # -- links: changing --

    async def _set(self, name: str, netns: str | None, **wish: Any) -> Link:
        async with self._session(netns) as session:
            return await session.converge(await session.require_link(name), **wish)

    async def converge_port(
        self,
        name: str,
        *,
        netns: str | None = None,
        mtu: int | None = None,
        bridge: str | None = None,
        up: bool | None = None,
    ) -> Link:
        """MTU, bridge membership and state of ``name`` in one request (None leaves that one alone).

        One socket and one RTM_NEWLINK instead of one per attribute: what wiring a new tap costs.
        The kernel applies the whole request under its RTNL lock, so no other configuration change
        sees the device half converged.
        """
        return await self._set(name, netns, mtu=mtu, master=_KEEP if bridge is None else bridge, up=up)

    async def set_master(self, name: str, bridge: str, *, netns: str | None = None) -> Link:
        """Make ``name`` a port of ``bridge``."""
        return await self._set(name, netns, master=bridge)

    async def set_nomaster(self, name: str, *, netns: str | None = None) -> Link:
        return await self._set(name, netns, master=None)

    async def set_up(self, name: str, *, netns: str | None = None) -> Link:
        return await self._set(name, netns, up=True)

    async def set_down(self, name: str, *, netns: str | None = None) -> Link:
        return await self._set(name, netns, up=False)

    async def set_mtu(self, name: str, mtu: int, *, netns: str | None = None) -> Link:
        return await self._set(name, netns, mtu=mtu)

    async def set_mac(self, name: str, mac: str, *, netns: str | None = None) -> Link:
        return await self._set(name, netns, mac=mac)

    async def move_link(self, name: str, *, to_netns: str | None, netns: str | None = None) -> Link:
        """Move a device to another namespace (None: this process's). Returns it as seen there.

        The kernel takes the device down, releases it from its bridge and drops its addresses when
        it moves. A device already in ``to_netns`` and absent from ``netns`` counts as moved.
        """
        if to_netns == netns:
            async with self._session(netns) as session:
                return await session.require_link(name)
        async with self._session(to_netns) as target:
            async with self._session(netns) as source:
                link = await source.link(name)
                if link is not None:
                    with self._namespace_fd(to_netns) as fd:
                        await source.call(
                            f"move {name}", lambda: source.ipr.link("set", index=link.index, net_ns_fd=fd)
                        )
            moved = await target.link(name)
            if moved is None:
                raise LinkNotFound(name, netns)
            return moved

    async def remove_link(self, name: str, *, netns: str | None = None) -> None:
        """Delete a device; absent (or its namespace gone) is success. A veth takes its peer along."""
        async with self._session_or_none(netns) as session:
            if session is None:
                return
            link = await session.link(name)
            if link is None:
                return
            await session.call(
                f"delete {name}", lambda: session.ipr.link("del", index=link.index), tolerate=(errno.ENODEV,)
            )
            if (await session.link(name)) is not None:
                raise NotConverged(f"{name} still exists in {_where(netns)} after delete")

    # -- addresses --

    async def list_addresses(
        self, *, device: str | None = None, netns: str | None = None, version: int | None = None
    ) -> tuple[Address, ...]:
        async with self._session(netns) as session:
            return tuple(await self._addresses(session, device, version))

    async def _addresses(
        self, session: _RtnlSession, device: str | None, version: int | None
    ) -> list[Address]:
        names = {link.index: link.name for link in await session.links()}
        wanted_index = None
        if device is not None:
            wanted_index = next((i for i, n in names.items() if n == device), None)
            if wanted_index is None:
                raise LinkNotFound(device, session.netns)
        family = {4: socket.AF_INET, 6: socket.AF_INET6}.get(version or 0, socket.AF_UNSPEC)
        found = []
        async for msg in await session.call(
            "dump addresses", lambda: session.ipr.addr("dump", family=family)
        ):
            index = int(msg["index"])
            if wanted_index is not None and index != wanted_index:
                continue
            # IFA_LOCAL is this end's address (IFA_ADDRESS is the peer's on point-to-point links).
            ip = msg.get("local") or msg.get("address")
            interface = ipaddress.ip_interface(f"{ip}/{msg['prefixlen']}")
            found.append(
                Address(names.get(index, str(index)), interface, _SCOPES.get(msg["scope"], str(msg["scope"])))
            )
        return found

    async def ensure_address(
        self, device: str, cidr: str | IPInterface, *, netns: str | None = None, nodad: bool = False
    ) -> Address:
        """Put ``cidr`` (e.g. "10.0.0.1/24") on ``device``; the same IP with another prefix goes.

        ``nodad`` skips IPv6 duplicate address detection, so the address is usable at once (what
        Neutron does for router ports).
        """
        interface = ipaddress.ip_interface(cidr)
        async with self._session(netns) as session:
            index = await session.index_of(device)
            present = await self._addresses(session, device, interface.version)
            for other in present:
                if other.interface.ip == interface.ip and other.interface != interface:
                    await self._delete_address(session, index, other.interface)
            if not any(a.interface == interface for a in present):
                spec: dict[str, Any] = {
                    "index": index,
                    "address": str(interface.ip),
                    "prefixlen": interface.network.prefixlen,
                }
                if interface.version == 4 and interface.network.prefixlen <= 30:
                    spec["broadcast"] = str(interface.network.broadcast_address)
                if nodad and interface.version == 6:
                    spec["flags"] = _IFA_F_NODAD
                await session.call(
                    f"add {interface} to {device}",
                    lambda: session.ipr.addr("add", **spec),
                    tolerate=(errno.EEXIST,),
                )
            for address in await self._addresses(session, device, interface.version):
                if address.interface == interface:
                    return address
            raise NotConverged(f"{interface} not on {device} in {_where(netns)} after adding it")

    async def _delete_address(self, session: _RtnlSession, index: int, interface: IPInterface) -> None:
        await session.call(
            f"delete {interface}",
            lambda: session.ipr.addr(
                "del", index=index, address=str(interface.ip), prefixlen=interface.network.prefixlen
            ),
            tolerate=(errno.EADDRNOTAVAIL, errno.ENODEV, errno.ENOENT),
        )

    async def remove_address(self, device: str, cidr: str | IPInterface, *, netns: str | None = None) -> None:
        """Remove ``cidr`` from ``device``; absent address, device or namespace is success."""
        interface = ipaddress.ip_interface(cidr)
        async with self._session_or_none(netns) as session:
            if session is None:
                return
            msg = await session.link_message(name=device)
            if msg is None:
                return
            await self._delete_address(session, int(msg["index"]), interface)
            if any(
                a.interface == interface for a in await self._addresses(session, device, interface.version)
            ):
                raise NotConverged(f"{interface} still on {device} in {_where(netns)}")

    # -- routes --

    async def _routes(self, session: _RtnlSession, version: int | None) -> list[Route]:
        names = {link.index: link.name for link in await session.links()}
        families = (
            [socket.AF_INET, socket.AF_INET6]
            if version is None
            else [socket.AF_INET if version == 4 else socket.AF_INET6]
        )
        found = []
        for family in families:
            async for msg in await session.call(
                "dump routes", lambda f=family: session.ipr.route("dump", family=f)
            ):
                table = msg.get("table") or msg.get("RTA_TABLE")
                if table != _RT_TABLE_MAIN or msg["type"] != _RTN_UNICAST:
                    continue
                zero = "0.0.0.0" if family == socket.AF_INET else "::"
                destination = ipaddress.ip_network(f"{msg.get('dst') or zero}/{msg['dst_len']}", strict=False)
                gateway = msg.get("gateway")
                oif = msg.get("oif")
                hops = msg.get("multipath")
                if hops:
                    gateways = (hop.get_attr("RTA_GATEWAY") for hop in hops)
                    found.append(Route(destination, None, None,
                                       tuple(sorted(ipaddress.ip_address(g) for g in gateways if g))))
                    continue
                found.append(
                    Route(
                        destination,
                        ipaddress.ip_address(gateway) if gateway else None,
                        names.get(oif) if oif else None,
                    )
                )
        return found

    async def list_routes(self, *, netns: str | None = None, version: int | None = None) -> tuple[Route, ...]:
        """Unicast routes of the main table (connected routes included)."""
        async with self._session(netns) as session:
            return tuple(await self._routes(session, version))

    async def ensure_route(
        self,
        destination: str | IPNetwork,
        *,
        gateway: str | IPAddress | None = None,
        device: str | None = None,
        netns: str | None = None,
    ) -> Route:
        """One main-table route to ``destination`` via ``gateway`` and/or out of ``device``."""
        network = ipaddress.ip_network(destination)
        via = ipaddress.ip_address(gateway) if gateway is not None else None
        if via is None and device is None:
            raise ValueError("a route needs a gateway or a device")
        async with self._session(netns) as session:
            current = [r for r in await self._routes(session, network.version) if r.destination == network]
            matches = [r for r in current if r.gateway == via and (device is None or r.device == device)]
            if not matches:
                spec: dict[str, Any] = {"dst": str(network), "family": _family(network.version)}
                if via is not None:
                    spec["gateway"] = str(via)
                if device is not None:
                    spec["oif"] = await session.index_of(device)
                await session.call(f"replace route {network}", lambda: session.ipr.route("replace", **spec))
                current = [
                    r for r in await self._routes(session, network.version) if r.destination == network
                ]
                matches = [r for r in current if r.gateway == via and (device is None or r.device == device)]
            if not matches:
                raise NotConverged(
                    f"route {network} via {via} dev {device} not in {_where(netns)}: {current}"
                )
            return matches[0]

    async def ensure_multipath_route(
        self, destination: str | IPNetwork, gateways: Iterable[str | IPAddress], *, netns: str | None = None
    ) -> Route:
        """One main-table ECMP route to ``destination`` over every gateway (equal weights), replacing
        whatever route to it was there."""
        network = ipaddress.ip_network(destination)
        hops = tuple(sorted({ipaddress.ip_address(g) for g in gateways}))
        if len(hops) < 2:
            raise ValueError("a multipath route needs two or more gateways")
        async with self._session(netns) as session:
            current = [r for r in await self._routes(session, network.version) if r.destination == network]
            if not any(r.nexthops == hops for r in current):
                spec = {"dst": str(network), "family": _family(network.version),
                        "multipath": [{"gateway": str(h)} for h in hops]}
                await session.call(f"replace route {network}", lambda: session.ipr.route("replace", **spec))
                current = [r for r in await self._routes(session, network.version) if r.destination == network]
            match = [r for r in current if r.nexthops == hops]
            if not match:
                raise NotConverged(f"route {network} via {hops} not in {_where(netns)}: {current}")
            return match[0]

    async def remove_route(self, destination: str | IPNetwork, *, netns: str | None = None) -> None:
        """Remove every main-table route to ``destination``; none is success."""
        network = ipaddress.ip_network(destination)
        async with self._session_or_none(netns) as session:
            if session is None:
                return
            # One delete per route to it (several may exist with different metrics).
            for _ in range(64):
                if not any(r.destination == network for r in await self._routes(session, network.version)):
                    return
                await session.call(
                    f"delete route {network}",
                    lambda: session.ipr.route(
                        "del", dst=str(network), family=_family(network.version), table=_RT_TABLE_MAIN
                    ),
                    tolerate=(errno.ESRCH, errno.ENOENT),
                )
            raise NotConverged(f"routes to {network} keep coming back in {_where(netns)}")

    async def ensure_default_route(
        self, gateway: str | IPAddress, *, device: str | None = None, netns: str | None = None
    ) -> Route:
        via = ipaddress.ip_address(gateway)
        default = "0.0.0.0/0" if via.version == 4 else "::/0"
        return await self.ensure_route(default, gateway=via, device=device, netns=netns)

    async def remove_default_route(self, *, version: int = 4, netns: str | None = None) -> None:
        await self.remove_route("0.0.0.0/0" if version == 4 else "::/0", netns=netns)

    # -- FDB (VXLAN head-end replication and l2population) --

    async def _fdb(self, session: _RtnlSession, device: str) -> list[FdbEntry]:
        index = await session.index_of(device)
        found = []
        async for msg in await session.call(
            f"dump fdb of {device}", lambda: session.ipr.fdb("dump", ifindex=index)
        ):
            if msg["ifindex"] != index or not msg.get("lladdr"):
                continue
            dst = msg.get("dst")
            found.append(
                FdbEntry(
                    device, _normalize_mac(msg.get("lladdr")), ipaddress.ip_address(dst) if dst else None
                )
            )
        return found

    async def list_fdb(self, device: str, *, netns: str | None = None) -> tuple[FdbEntry, ...]:
        async with self._session(netns) as session:
            return tuple(await self._fdb(session, device))

    async def fdb_append(
        self, device: str, mac: str, dst: str | IPAddress, *, netns: str | None = None
    ) -> FdbEntry:
        """``bridge fdb append MAC dev DEVICE dst DST self permanent``; existing is success.

        With ``FLOODING_MAC`` this adds one remote VTEP to the flood list (head-end replication);
        with an instance's MAC it pins where that MAC lives (l2population).
        """
        want = FdbEntry(device, _normalize_mac(mac), ipaddress.ip_address(dst))
        async with self._session(netns) as session:
            if want in await self._fdb(session, device):
                return want
            index = await session.index_of(device)
            await session.call(
                f"append fdb {want.mac} dst {want.dst} on {device}",
                lambda: session.ipr.fdb(
                    "append",
                    ifindex=index,
                    lladdr=want.mac,
                    dst=str(want.dst),
                    state=_NUD_PERMANENT,
                    flags=_NTF_SELF,
                ),
                tolerate=(errno.EEXIST,),
            )
            if want not in await self._fdb(session, device):
                raise NotConverged(f"fdb {want} missing after append in {_where(netns)}")
            return want

    async def fdb_remove(
        self, device: str, mac: str, dst: str | IPAddress, *, netns: str | None = None
    ) -> None:
        """Remove one (MAC, dst) entry; absent entry, device or namespace is success."""
        want = FdbEntry(device, _normalize_mac(mac), ipaddress.ip_address(dst))
        async with self._session_or_none(netns) as session:
            if session is None or (await session.link_message(name=device)) is None:
                return
            if want not in await self._fdb(session, device):
                return
            index = await session.index_of(device)
            await session.call(
                f"delete fdb {want.mac} dst {want.dst} on {device}",
                lambda: session.ipr.fdb(
                    "del",
                    ifindex=index,
                    lladdr=want.mac,
                    dst=str(want.dst),
                    state=_NUD_PERMANENT,
                    flags=_NTF_SELF,
                ),
                tolerate=(errno.ENOENT, errno.ENODEV),
            )
            if want in await self._fdb(session, device):
                raise NotConverged(f"fdb {want} still present after delete in {_where(netns)}")

    # -- sysctls --

    async def _in_namespace(self, netns: str | None, work: Callable[[], T]) -> T:
        if netns is None:
            return await asyncio.to_thread(work)
        path = self._namespace_path(netns)

        def inside() -> T:
            _enter_namespace(path)
            return work()

        try:
            return await _run_in_fresh_thread(inside)
        except FileNotFoundError as exc:
            if not path.exists():
                raise NamespaceNotFound(netns) from exc
            raise

    async def get_sysctl(self, key: str, *, netns: str | None = None) -> str:
        """Value of a net.* sysctl inside the namespace, whitespace-normalized."""
        path = _sysctl_path(key)
        return _normalize_sysctl(await self._in_namespace(netns, path.read_text))

    async def get_sysctls(self, keys: Iterable[str], *, netns: str | None = None) -> dict[str, str]:
        """Several net.* sysctls inside the namespace at once (one entry into it, where a
        ``get_sysctl`` each costs a thread and a namespace switch); keys that do not exist (a
        device gone) are left out."""
        paths = {key: _sysctl_path(key) for key in keys}

        def read() -> dict[str, str]:
            values = {}
            for key, path in paths.items():
                with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                    values[key] = _normalize_sysctl(path.read_text())
            return values

        return await self._in_namespace(netns, read)

    async def set_sysctl(self, key: str, value: str | int, *, netns: str | None = None) -> str:
        """Set a net.* sysctl inside the namespace (e.g. ``net.ipv4.ip_forward`` = 1); verified.

        Written from a thread that entered the namespace, because /proc/sys/net shows the
        namespace of the thread that opens it.
        """
        path = _sysctl_path(key)
        want = _normalize_sysctl(str(value))

        def converge() -> str:
            if _normalize_sysctl(path.read_text()) != want:
                path.write_text(want + "\n")
            return _normalize_sysctl(path.read_text())

        got = await self._in_namespace(netns, converge)
        if got != want:
            raise NotConverged(f"sysctl {key} is {got!r} in {_where(netns)}, wanted {want!r}")
        return got

    # -- neighbour announcements --

    async def send_gratuitous_arp(self, device: str, address: str, *, netns: str | None = None,
                                  count: int = 1) -> None:
        """Broadcast ``count`` gratuitous ARP requests (sender = target = ``address``, the device's
        MAC) out of ``device``, as ``arping -U`` does: neighbours holding an entry for ``address``
        update it to this MAC at once."""
        ip = ipaddress.IPv4Address(address)
        link = await self.get_link(device, netns=netns)
        if link is None:
            raise LinkNotFound(device, netns)
        mac = bytes.fromhex(link.mac.replace(":", ""))
        frame = (b"\xff" * 6 + mac + b"\x08\x06"                    # Ethernet: broadcast, ARP
                 + b"\x00\x01\x08\x00\x06\x04\x00\x01"          # Ethernet/IPv4, request
                 + mac + ip.packed + b"\x00" * 6 + ip.packed)

        def send() -> None:
            with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
                sock.bind((device, 0))
                for _ in range(count):
                    sock.send(frame)

        await self._in_namespace(netns, send)

    # -- events --

    def watch_links(self, *, netns: str | None = None) -> LinkWatch:
        """Subscribe to link events of one namespace; use as ``async with ... as watch``."""
        return LinkWatch(self, netns)


def _family(version: int) -> int:
    return socket.AF_INET if version == 4 else socket.AF_INET6


class LinkWatch:
    """Link add/change/remove events of one namespace, from the RTNLGRP_LINK multicast group.

    ::

        async with driver.watch_links(netns=ns) as watch:
            wire(watch.snapshot)          # links present when the subscription started
            async for event in watch:     # every change after that
                ...

    The subscription is live once ``async with`` has entered, so nothing that happens after that
    is missed, and ``snapshot`` (read after subscribing) shows everything from before. A link in
    the snapshot is reported as ``changed``, never ``added``. If the kernel drops events because
    the socket's buffer overflowed, the watch yields one ``overflow`` event, re-reads the links and
    reports the difference as synthetic ``added``/``removed`` events: a consumer stays correct
    without having to resync itself, though intermediate ``changed`` events are lost.
    """

    # Large enough that a burst of a few thousand link events is not dropped.
    RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024

    def __init__(self, driver: NetlinkDriver, netns: str | None) -> None:
        self._driver = driver
        self.netns = netns
        self.snapshot: tuple[Link, ...] = ()
        self._socket: socket.socket | None = None
        self._known: dict[int, str] = {}
        self._pending: deque[LinkEvent] = deque()
        self._marshal = MarshalRtnl()

    async def __aenter__(self) -> LinkWatch:
        sock = await self._driver._open_socket(self.netns, socket.SOCK_RAW)
        try:
            with contextlib.suppress(OSError):
                # SO_RCVBUFFORCE (root) may exceed net.core.rmem_max; fall back to SO_RCVBUF.
                sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, self.RECEIVE_BUFFER_BYTES)
            sock.bind((0, _RTMGRP_LINK))
            sock.setblocking(False)
            self._socket = sock
            await self._refresh()
        except BaseException:
            sock.close()
            self._socket = None
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    async def _refresh(self) -> tuple[Link, ...]:
        links = await self._driver.list_links(netns=self.netns)
        self.snapshot = links
        self._known = {link.index: link.name for link in links}
        return links

    def __aiter__(self) -> LinkWatch:
        return self

    async def __anext__(self) -> LinkEvent:
        loop = asyncio.get_running_loop()
        while not self._pending:
            if self._socket is None:
                raise StopAsyncIteration
            try:
                data = await loop.sock_recv(self._socket, 1 << 16)
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                await self._recover_from_overflow()
                continue
            for msg in self._marshal.parse(data):
                event = self._classify(msg)
                if event is not None:
                    self._pending.append(event)
        return self._pending.popleft()

    def _classify(self, msg: Any) -> LinkEvent | None:
        kind_of_message = msg.get("event")
        # Bridge port notifications (family AF_BRIDGE) share the group; they are not link births
        # or deaths (an RTM_DELLINK of that family means "left the bridge").
        if kind_of_message not in ("RTM_NEWLINK", "RTM_DELLINK") or msg.get("family") == _AF_BRIDGE:
            return None
        link = _decode_link(msg, self._known)
        if kind_of_message == "RTM_DELLINK":
            self._known.pop(link.index, None)
            event: LinkEventType = "removed"
        else:
            event = "changed" if link.index in self._known else "added"
            self._known[link.index] = link.name
        return LinkEvent(event, link.name, link.index, link.kind, link)

    async def _recover_from_overflow(self) -> None:
        before = dict(self._known)
        links = await self._refresh()
        self._pending.append(LinkEvent("overflow", "", 0, None, None))
        now = {link.index: link for link in links}
        for index, name in before.items():
            if index not in now:
                self._pending.append(LinkEvent("removed", name, index, None, None))
        for index, link in now.items():
            if index not in before:
                self._pending.append(LinkEvent("added", link.name, index, link.kind, link))
