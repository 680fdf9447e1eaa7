"""``neutrino cleanup [--host NAME]``: remove every kernel object and process Neutrino made, and nothing else.

What counts as Neutrino's (never a name alone; see ``dataplane.ownership``):

* a network namespace whose loopback carries a ``neutrino:<host>`` alias (the driver's mark);
* a device carrying that alias, in the root namespace or any namespace that stays; a device named
  like a tap must *also* follow Neutrino's tap naming (``tap<uuid[:11]>``), so another program's
  ``tap0`` is never touched whatever its alias says;
* an nftables table whose name starts with ``neutrino`` (with ``--host``: only one whose comment is
  that host's mark ``neutrino:<host>``, the convention for the firewall driver);
* the qos role's shaping on a Neutrino-named tap that stays (the tap is another program's, or in a
  namespace that stays), told apart as the role tells it (``dataplane.tc``): the tap's ingress qdisc
  when its IFB (``ifb`` + the tap's suffix) is one being removed, so no redirect is left pointing at
  a deleted IFB, and its tbf root qdisc with the handle ``4e51:``; and the htb root qdisc ``4e51:``
  the role keeps on an uplink for minimum bandwidth guarantees. A qdisc carries no owner mark, so
  with ``--host`` a root qdisc is the host's when its tap's IFB is, or when the namespace holds one
  of the qos role's tables (``QOS_TABLES``) with the host's mark: the role keeps one while it
  shapes anything, and there is one qos role per namespace (its resync claims every ``4e51:``);
* a ``dnsmasq`` or ``dhclient`` process named by a pid file under the state directory (with
  ``--host``: only if it runs inside one of that host's namespaces), and every process running
  inside a namespace being removed (it would keep the namespace, and its devices, alive);
* the DHCP agents' dnsmasq files (``<state>/dhcp/<host>/<network>/``) and the metadata agents'
  proxy files (``<state>/metadata/<host>/<namespace>/``); with ``--host``: that host's.

``--host NAME`` narrows everything to objects marked ``neutrino:NAME``, so simulated hosts sharing a
kernel (and parallel test runs) never remove each other's objects. The work is split the usual way:
:func:`take_inventory` reads the kernel, :func:`plan_cleanup` decides (pure), :func:`apply_cleanup`
acts and says what it removed. Instance records in the state directory are left alone (they are
not kernel objects): ``neutrino instance delete`` also removes their ports.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neutrino.agent.roles.qos.plan import PPS_TABLE
from neutrino.agent.roles.qos.plan import TABLE as QOS_TABLE
from neutrino.agent.roles.qos.uplink import TABLE as MINBW_TABLE
from neutrino.config import load_settings
from neutrino.contract.names import is_neutrino_device_name
from neutrino.dataplane.netlink import NetlinkDriver, NetlinkDriverError
from neutrino.dataplane.ownership import OwnerTag, owner_of
from neutrino.dataplane.processes import (
    NamespaceIdentity,
    ProcessFacts,
    namespace_identity,
    process_facts,
    read_pid_file,
    terminate,
)
from neutrino.dataplane.tc import TcDriver, ifb_of, parse_qdiscs

# Programs Neutrino runs and finds again by pid file: DHCP servers (agent) and clients (instances).
MANAGED_PROGRAMS = frozenset({"dnsmasq", "dhclient"})
TABLE_PREFIX = "neutrino"
# The qos role's tables: one with a host's mark says which host shapes in that namespace.
QOS_TABLES = frozenset({QOS_TABLE, PPS_TABLE, MINBW_TABLE})
# Owner used only to read and delete; cleanup never creates anything.
_READER = OwnerTag("cleanup")


# ---- what the kernel shows ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NamespaceFacts:
    name: str
    # The alias of its loopback device (the namespace's mark), if any.
    alias: str | None


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    # None: the root namespace (the one cleanup runs in).
    netns: str | None
    name: str
    kind: str | None
    alias: str | None


@dataclass(frozen=True, slots=True)
class TableFacts:
    netns: str | None
    family: str
    name: str
    comment: str | None


@dataclass(frozen=True, slots=True)
class QdiscFacts:
    """One qdisc the qos role may have put on a device: ``root`` (our ``4e51:`` tbf on a tap, htb on an
    uplink) or ``ingress`` (a tap's)."""

    netns: str | None
    device: str
    kind: str


@dataclass(frozen=True, slots=True)
class FoundProcess:
    process: ProcessFacts
    # The namespace it runs in, if that is one under /run/netns.
    netns: str | None
    # The pid file under the state directory that names it, if any.
    pid_file: Path | None


@dataclass(frozen=True, slots=True)
class KernelInventory:
    namespaces: tuple[NamespaceFacts, ...] = ()
    devices: tuple[DeviceFacts, ...] = ()
    tables: tuple[TableFacts, ...] = ()
    processes: tuple[FoundProcess, ...] = ()
    # (host, directory) of every DHCP agent network directory under the state directory.
    dhcp_directories: tuple[tuple[str, Path], ...] = ()
    qdiscs: tuple[QdiscFacts, ...] = ()


@dataclass(frozen=True, slots=True)
class CleanupPlan:
    """What to remove, in the order it is removed."""

    processes: tuple[FoundProcess, ...] = ()
    tables: tuple[TableFacts, ...] = ()
    qdiscs: tuple[QdiscFacts, ...] = ()  # removed before the devices (the IFBs they redirect to)
    devices: tuple[DeviceFacts, ...] = ()
    namespaces: tuple[str, ...] = ()
    # The DHCP agents' dnsmasq directories (<state>/dhcp/<host>/<network>), removed last.
    directories: tuple[Path, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.processes or self.tables or self.qdiscs or self.devices or self.namespaces
                    or self.directories)


# ---- deciding ------------------------------------------------------------------------------------------------


def _owned(alias: str | None, host: str | None) -> bool:
    owner = owner_of(alias)
    return owner is not None and (host is None or owner.host == host)


def plan_cleanup(inventory: KernelInventory, host: str | None) -> CleanupPlan:
    """Pick Neutrino's objects (all owners, or only ``host``'s) out of what the kernel shows."""
    doomed = {ns.name for ns in inventory.namespaces if _owned(ns.alias, host)}
    alias = OwnerTag(host).alias if host is not None else None

    def process_is_ours(found: FoundProcess) -> bool:
        if found.netns in doomed:
            return True
        # With --host, a process is attributed to the host only through the namespace it runs in.
        return host is None and found.pid_file is not None and found.process.comm in MANAGED_PROGRAMS

    def table_is_ours(table: TableFacts) -> bool:
        if table.netns in doomed or not table.name.startswith(TABLE_PREFIX):
            return False
        return host is None or table.comment == alias

    def device_is_ours(device: DeviceFacts) -> bool:
        if device.netns in doomed or device.name == "lo" or not _owned(device.alias, host):
            return False
        return not device.name.startswith("tap") or is_neutrino_device_name(device.name)

    devices = tuple(d for d in inventory.devices if device_is_ours(d))
    removed = {(d.netns, d.name) for d in devices}

    shaping = {t.netns for t in inventory.tables if t.name in QOS_TABLES and (host is None or t.comment == alias)}

    def qdisc_is_ours(qdisc: QdiscFacts) -> bool:
        where = qdisc.netns
        if where in doomed or (where, qdisc.device) in removed:
            return False  # goes with its namespace or its device
        root_is_ours = qdisc.kind == "root" and (host is None or where in shaping)
        if not qdisc.device.startswith("tap"):
            return root_is_ours  # an uplink's htb (only those are listed for other devices)
        if not is_neutrino_device_name(qdisc.device):
            return False
        return (where, ifb_of(qdisc.device)) in removed or root_is_ours

    return CleanupPlan(
        processes=tuple(p for p in inventory.processes if process_is_ours(p)),
        tables=tuple(t for t in inventory.tables if table_is_ours(t)),
        qdiscs=tuple(q for q in inventory.qdiscs if qdisc_is_ours(q)),
        devices=devices,
        namespaces=tuple(sorted(doomed)),
        directories=tuple(path for owner, path in inventory.dhcp_directories if host is None or owner == host),
    )


# ---- reading the kernel ----------------------------------------------------------------------------------------


_NFT_TIMEOUT = 30.0
_TIMED_OUT = 124  # the exit status timeout(1) uses


async def _nft(netns: str | None, *args: str) -> tuple[int, str, str]:
    command = ["nft", *args] if netns is None else ["ip", "netns", "exec", netns, "nft", *args]
    process = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=_NFT_TIMEOUT)
    except TimeoutError:
        # A namespace holding a huge ruleset (another program's benchmark, say) can take minutes to
        # list; cleanup must still finish. The process is killed, not left behind as an orphan.
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        return _TIMED_OUT, "", f"nft {' '.join(args)} in {_where(netns)} timed out after {_NFT_TIMEOUT}s"
    return process.returncode or 0, out.decode(), err.decode()


def _table_comment(listing: str) -> str | None:
    # `nft list table` prints the table's comment as the first statement inside its block;
    # nft 1.0.6 leaves it out of the JSON output.
    for line in listing.splitlines()[1:]:
        text = line.strip()
        if text.startswith("comment "):
            with contextlib.suppress(ValueError):
                return str(json.loads(text[len("comment ") :]))
        if text:
            return None
    return None


async def _tables(netns: str | None) -> list[TableFacts]:
    status, out, err = await _nft(netns, "-j", "list", "tables")
    if status == _TIMED_OUT:
        print(f"neutrino: {err}; its tables are left alone", file=sys.stderr)
    if status != 0:
        return []
    found = []
    for item in json.loads(out or "{}").get("nftables", []):
        table = item.get("table")
        if not table or not str(table.get("name", "")).startswith(TABLE_PREFIX):
            continue
        status, listing, _ = await _nft(netns, "-t", "list", "table", table["family"], table["name"])
        comment = _table_comment(listing) if status == 0 else None
        found.append(TableFacts(netns, table["family"], table["name"], comment))
    return found


async def _qdiscs(netns: str | None) -> list[QdiscFacts]:
    """The root tbf (ours: handle ``4e51:``) and ingress qdiscs of the namespace's taps, and our htb
    root on any device (an uplink)."""
    command = ["tc", "-j", "qdisc", "show"]
    if netns is not None:
        command = ["ip", "netns", "exec", netns, *command]
    process = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    if process.returncode:
        return []
    found = []
    for device, shaping in parse_qdiscs(json.loads(out or b"[]")).items():
        if device.startswith("tap"):
            found += [QdiscFacts(netns, device, kind) for kind, present in
                      (("root", shaping.root is not None), ("ingress", shaping.ingress)) if present]
        elif shaping.htb:
            found.append(QdiscFacts(netns, device, "root"))
    return found


def _pid_files(state_dir: Path) -> list[Path]:
    if not state_dir.is_dir():
        return []
    return sorted(p for p in state_dir.rglob("*") if p.is_file() and (p.suffix == ".pid" or p.name == "pid"))


def _processes(state_dir: Path, namespaces: dict[NamespaceIdentity, str]) -> list[FoundProcess]:
    found: dict[int, FoundProcess] = {}
    for pid_file in _pid_files(state_dir):
        pid = read_pid_file(pid_file)
        facts = process_facts(pid) if pid is not None else None
        if facts is not None:
            netns = namespaces.get(facts.namespace) if facts.namespace is not None else None
            found[facts.pid] = FoundProcess(facts, netns, pid_file)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in found:
            continue
        facts = process_facts(int(entry.name))
        if facts is not None and facts.namespace in namespaces:
            found[facts.pid] = FoundProcess(facts, namespaces[facts.namespace], None)
    return sorted(found.values(), key=lambda p: p.process.pid)


# Namespaces are inspected a few at a time: each costs a netlink socket and an nft process.
_INSPECTION_CONCURRENCY = 8


@dataclass(frozen=True, slots=True)
class _NamespaceContents:
    facts: NamespaceFacts
    devices: tuple[DeviceFacts, ...]
    tables: tuple[TableFacts, ...]
    qdiscs: tuple[QdiscFacts, ...]
    identity: NamespaceIdentity | None


async def _inspect(driver: NetlinkDriver, name: str, tables: bool, host: str | None) -> _NamespaceContents | None:
    try:
        links = await driver.list_links(netns=name)
    except NetlinkDriverError:
        return None  # not a namespace binding (a stale file), or removed meanwhile
    loopback = next((link for link in links if link.name == "lo"), None)
    alias = loopback.alias if loopback else None
    owner = owner_of(alias)
    # Tables inside a namespace another host owns are never this host's: not worth an nft run each.
    foreign = host is not None and owner is not None and owner.host != host
    return _NamespaceContents(
        NamespaceFacts(name, alias),
        tuple(DeviceFacts(name, link.name, link.kind, link.alias) for link in links),
        tuple(await _tables(name)) if tables and not foreign else (),
        tuple(await _qdiscs(name)) if shutil.which("tc") and not foreign else (),
        namespace_identity(driver.netns_dir / name),
    )


async def take_inventory(driver: NetlinkDriver, state_dir: Path, *, tables: bool = True,
                         host: str | None = None) -> KernelInventory:
    """Read namespaces, devices, nftables tables and relevant processes from the kernel (with
    ``host``, tables only where that host's may be)."""
    devices: list[DeviceFacts] = [
        DeviceFacts(None, link.name, link.kind, link.alias) for link in await driver.list_links()
    ]
    found_tables: list[TableFacts] = await _tables(None) if tables else []
    qdiscs: list[QdiscFacts] = await _qdiscs(None) if shutil.which("tc") else []
    gate = asyncio.Semaphore(_INSPECTION_CONCURRENCY)

    async def inspect(name: str) -> _NamespaceContents | None:
        async with gate:
            return await _inspect(driver, name, tables, host)

    contents = [c for c in await asyncio.gather(*map(inspect, await driver.list_namespaces())) if c]
    identities: dict[NamespaceIdentity, str] = {}
    for content in contents:
        devices.extend(content.devices)
        found_tables.extend(content.tables)
        qdiscs.extend(content.qdiscs)
        if content.identity is not None:
            identities[content.identity] = content.facts.name
    processes = await asyncio.to_thread(_processes, state_dir, identities)
    return KernelInventory(tuple(c.facts for c in contents), tuple(devices), tuple(found_tables), tuple(processes),
                           _dhcp_directories(state_dir), tuple(qdiscs))


def _dhcp_directories(state_dir: Path) -> tuple[tuple[str, Path], ...]:
    """(host, directory) of the DHCP agents' dnsmasq and the metadata agents' proxy files."""
    found: list[tuple[str, Path]] = []
    for role in ("dhcp", "metadata"):
        root = state_dir / role
        if root.is_dir():
            found.extend((host.name, item) for host in sorted(root.iterdir()) if host.is_dir()
                         for item in sorted(host.iterdir()) if item.is_dir())
    return tuple(found)


# ---- acting ------------------------------------------------------------------------------------------------------


def _where(netns: str | None) -> str:
    return "the root namespace" if netns is None else f"namespace {netns}"


async def apply_cleanup(driver: NetlinkDriver, plan: CleanupPlan) -> list[str]:
    """Remove what ``plan`` lists (processes, tables, devices, namespaces, in that order); say what went."""
    removed: list[str] = []
    stopped = await terminate(p.process for p in plan.processes)
    stopped_pids = {p.pid for p in stopped}
    for found in plan.processes:
        if found.process.pid not in stopped_pids:
            continue
        removed.append(f"stopped process {found.process.pid} ({found.process.comm}) in "
                       f"{_where(found.netns) if found.netns else 'its namespace'}")
        if found.pid_file is not None:
            found.pid_file.unlink(missing_ok=True)
    for table in plan.tables:
        status, _, err = await _nft(table.netns, "delete", "table", table.family, table.name)
        if status != 0 and "No such file" not in err:
            raise RuntimeError(f"deleting nftables table {table.family} {table.name}: {err.strip()}")
        removed.append(f"removed nftables table {table.family} {table.name} in {_where(table.netns)}")
    tc = TcDriver(_READER, driver.netns_dir)
    for qdisc in plan.qdiscs:  # before the IFBs: no redirect is left pointing at a deleted device
        clear = tc.clear_root if qdisc.kind == "root" else tc.clear_ingress
        await clear(qdisc.device, netns=qdisc.netns)
        removed.append(f"removed {qdisc.kind} qdisc of {qdisc.device} in {_where(qdisc.netns)}")
    for device in plan.devices:
        await driver.remove_link(device.name, netns=device.netns)
        removed.append(f"removed device {device.name} ({device.kind or 'device'}, {device.alias}) in "
                       f"{_where(device.netns)}")
    for namespace in plan.namespaces:
        await driver.remove_namespace(namespace)
        removed.append(f"removed namespace {namespace}")
    for directory in plan.directories:
        shutil.rmtree(directory, ignore_errors=True)
        removed.append(f"removed dnsmasq files {directory}")
    return removed


async def cleanup(state_dir: Path, host: str | None, *, dry_run: bool = False,
                  driver: NetlinkDriver | None = None) -> list[str]:
    """Inventory, plan and (unless ``dry_run``) apply; returns one line per object."""
    driver = driver or NetlinkDriver(OwnerTag(host) if host else _READER)
    inventory = await take_inventory(driver, state_dir, tables=shutil.which("nft") is not None, host=host)
    plan = plan_cleanup(inventory, host)
    if dry_run:
        return [f"would remove: {line}" for line in _describe_plan(plan)]
    return await apply_cleanup(driver, plan)


def _describe_plan(plan: CleanupPlan) -> Iterable[str]:
    for found in plan.processes:
        yield f"process {found.process.pid} ({found.process.comm})"
    for table in plan.tables:
        yield f"nftables table {table.family} {table.name} in {_where(table.netns)}"
    for qdisc in plan.qdiscs:
        yield f"{qdisc.kind} qdisc of {qdisc.device} in {_where(qdisc.netns)}"
    for device in plan.devices:
        yield f"device {device.name} in {_where(device.netns)}"
    for namespace in plan.namespaces:
        yield f"namespace {namespace}"
    for directory in plan.directories:
        yield f"dnsmasq files {directory}"


# ---- the command ---------------------------------------------------------------------------------------------------


def register(subparsers: Any) -> None:
    """Add ``cleanup`` to the ``neutrino`` argument parser's subparsers."""
    parser = subparsers.add_parser(
        "cleanup", help="remove every namespace, device, nftables table and process Neutrino created"
    )
    parser.add_argument("--host", help="only objects of this host (marked neutrino:HOST); default: all hosts")
    parser.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")
    parser.add_argument("--config", help="configuration file (TOML); see docs/configuration.md")
    parser.add_argument("--state-dir", help="state directory (default: $NEUTRINO_STATE_DIR or the user data dir)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    overrides: dict[str, dict[str, Any]] = {}
    if args.state_dir:
        overrides["server"] = {"state_dir": str(Path(args.state_dir).resolve())}
    settings = load_settings(args.config, overrides=overrides)
    if os.geteuid() != 0:
        print("neutrino: cleanup needs root (namespaces, devices, processes)", file=sys.stderr)
        return 1
    try:
        if args.host:
            OwnerTag(args.host)  # a host name that could never own anything is a typo
        lines = asyncio.run(cleanup(settings.state_path, args.host, dry_run=args.dry_run))
    except (NetlinkDriverError, RuntimeError, ValueError) as exc:
        print(f"neutrino: {exc}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    if not lines:
        print("nothing to remove" + (f" for host {args.host}" if args.host else ""))
    return 0
