"""``neutrino instance create|delete|list|exec``: simulated VMs that use Neutron the way Nova does.

Wiring: ``register(subparsers)`` adds the ``instance`` command; each subcommand sets ``func``, a
callable taking the parsed ``args`` and returning the exit status. Every subcommand takes
``--config``/``--state-dir`` (the state directory holds the instance records, found as by every
other command) and the cloud options of the ``openstack`` CLI (``--os-cloud``, ``OS_CLOUD``,
``OS_CLIENT_CONFIG_FILE``), plus ``--compute-cloud`` for the credentials Nova would use to bind.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import sys
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from neutrino.config import Settings, load_settings

EXIT_FAILURE = 1


def register(subparsers: Any) -> None:
    """Add ``instance`` and its subcommands to the ``neutrino`` argument parser's subparsers."""
    instance = subparsers.add_parser(
        "instance", help="simulated VMs (network namespaces) plugged into Neutrino as Nova would"
    )
    actions = instance.add_subparsers(dest="instance_action", metavar="{create,delete,list,exec}", required=True)

    create = _with_common(actions.add_parser("create", help="create a port, bind it to a host, plug the VIF"))
    create.add_argument("name", help="instance name (letters, digits, . _ -)")
    create.add_argument("--network", required=True, help="network name or id")
    create.add_argument("--host", help="host to bind to (default: the agent host of the configuration, "
                                        "else this machine's hostname)")
    create.add_argument("--fixed-ip", action="append", default=[], metavar="IP|subnet=S,ip-address=IP",
                        help="wanted address (repeatable)")
    create.add_argument("--security-group", action="append", default=[], metavar="NAME_OR_ID",
                        help="security group (repeatable; default: the project's default group)")
    create.add_argument("--no-port-security", action="store_true",
                        help="create the port with port security disabled: no security groups, no anti-spoofing")
    addressing = create.add_mutually_exclusive_group()
    addressing.add_argument("--dhcp", action="store_const", const=True, default=None,
                            help="configure eth0 with a DHCP client (the default when the port has an address "
                                 "on a DHCP-enabled subnet)")
    addressing.add_argument("--static", dest="dhcp", action="store_const", const=False,
                            help="configure eth0 with the port's addresses statically, without DHCP")
    create.add_argument("--key-file", metavar="PUBKEY", help="OpenSSH public key the metadata service serves")
    create.add_argument("--user-data", metavar="FILE", help="user data the metadata service serves")
    create.add_argument("--dhcp-timeout", type=float, default=30.0, metavar="SECONDS",
                        help="with DHCP, how long to wait for the port to be ACTIVE and a lease "
                             "(0: do not wait; default 30)")
    create.add_argument("--host-netns", metavar="NAMESPACE",
                        help="put the tap in this namespace (a simulated host) instead of this one")
    create.set_defaults(func=_entry(_create))

    delete = _with_common(actions.add_parser("delete", help="unplug the VIF, delete the port, forget the instance"))
    delete.add_argument("names", nargs="+", metavar="NAME")
    delete.set_defaults(func=_entry(_delete))

    listing = _with_common(actions.add_parser("list", help="instances with their port status and addresses"))
    listing.add_argument("-f", "--format", choices=("table", "json"), default="table")
    listing.set_defaults(func=_entry(_list, needs_root=False))

    execute = _with_common(actions.add_parser(
        "exec", help="run a command inside an instance",
        usage="neutrino instance exec [options] NAME -- COMMAND [ARG...]",
        description="Options go before NAME; everything after -- is the command."))
    execute.add_argument("name")
    execute.add_argument("command", nargs="*", metavar="COMMAND")
    execute.set_defaults(func=_entry(_exec))


def _with_common(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--config", help="configuration file (TOML); see docs/configuration.md")
    parser.add_argument("--state-dir", help="state directory (default: $NEUTRINO_STATE_DIR or the user data dir)")
    parser.add_argument("--os-cloud", metavar="CLOUD", help="the user's cloud in clouds.yaml (default: $OS_CLOUD)")
    parser.add_argument("--compute-cloud", metavar="CLOUD",
                        help="cloud with the compute service's credentials, used to bind ports "
                             "(default: $NEUTRINO_COMPUTE_CLOUD or neutrino-compute)")
    return parser


# ---- plumbing shared by the subcommands -------------------------------------------------------------------


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, dict[str, Any]] = {}
    if args.state_dir:
        overrides["server"] = {"state_dir": str(Path(args.state_dir).resolve())}
    return load_settings(args.config, overrides=overrides)


def _instances(args: argparse.Namespace, settings: Settings) -> Any:
    from neutrino.compute.clouds import NetworkingClient, choose_clouds
    from neutrino.compute.instances import Instances
    from neutrino.compute.records import InstanceStore

    choice = choose_clouds(os_cloud=args.os_cloud, compute_cloud=args.compute_cloud, environ=os.environ,
                           state_dir=settings.state_path)
    clients: dict[tuple[str, str | None], NetworkingClient] = {}

    def client(role: str, cloud: str | None) -> NetworkingClient:
        if (role, cloud) not in clients:
            clients[role, cloud] = NetworkingClient(cloud, choice.config_files)
        return clients[role, cloud]

    return Instances(
        InstanceStore(settings.state_path),
        # The cloud named on the command line or in OS_CLOUD wins over the one an instance was made with.
        user=lambda made_with: client("user", choice.user_cloud or made_with),
        compute=lambda: client("compute", choice.compute_cloud),
        now=lambda: datetime.now(UTC).isoformat(timespec="seconds"),
    )


Command = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


def _entry(command: Command, *, needs_root: bool = True) -> Callable[[argparse.Namespace], int]:
    """Run an async subcommand; expected failures become one line on stderr and exit status 1."""

    def run(args: argparse.Namespace) -> int:
        from neutrino.compute.errors import ComputeError
        from neutrino.dataplane.netlink import NetlinkDriverError

        settings = _settings(args)
        if needs_root and os.geteuid() != 0:
            print("neutrino: instances need root (network namespaces and devices)", file=sys.stderr)
            return EXIT_FAILURE
        try:
            return asyncio.run(command(args, settings))
        except (ComputeError, NetlinkDriverError, ValueError) as exc:
            print(f"neutrino: {exc}", file=sys.stderr)
            return EXIT_FAILURE

    return run


# ---- the subcommands ---------------------------------------------------------------------------------------


async def _create(args: argparse.Namespace, settings: Settings) -> int:
    from neutrino.compute.instances import CreateRequest, parse_fixed_ip
    from neutrino.contract.names import tap_name

    request = CreateRequest(
        name=args.name,
        network=args.network,
        host=args.host or settings.agent.host or socket.gethostname(),
        fixed_ips=tuple(parse_fixed_ip(text) for text in args.fixed_ip),
        security_groups=tuple(args.security_group),
        port_security=not args.no_port_security,
        dhcp=args.dhcp,
        dhcp_timeout=args.dhcp_timeout if args.dhcp is not False else 0.0,
        host_namespace=args.host_netns,
        public_key=Path(args.key_file).read_text().strip() if args.key_file else None,
        user_data=base64.b64encode(Path(args.user_data).read_bytes()).decode() if args.user_data else None,
    )
    created = await _instances(args, settings).create(request, instance_id=str(uuid.uuid4()))
    record, port = created.record, created.port
    where = f" (in namespace {record.host_namespace})" if record.host_namespace else ""
    print(f"instance {record.name} ({record.instance_id}) created")
    print(f"  port {port.id} on network {record.network_id}, status {port.status}, "
          f"bound to {record.host} (vif_type {port.binding_vif_type})")
    print(f"  namespace {record.namespace}, eth0 {port.mac_address}, host end {tap_name(port.id)}{where}")
    if created.addresses:
        print("  addresses " + " ".join(str(a) for a in created.addresses))
    if created.dhcp_lease_timed_out:
        print(f"neutrino: warning: no DHCP lease within {args.dhcp_timeout:g}s (is a DHCP agent serving the "
              "network?); the DHCP client keeps trying", file=sys.stderr)
    return 0


async def _delete(args: argparse.Namespace, settings: Settings) -> int:
    instances = _instances(args, settings)
    for name in args.names:
        record = await instances.delete(name)
        print(f"instance {record.name} deleted (port {record.port_id or '-'}, namespace {record.namespace})")
    return 0


async def _list(args: argparse.Namespace, settings: Settings) -> int:
    views = await _instances(args, settings).list()
    rows = []
    for view in views:
        record, port = view.record, view.port
        rows.append({
            "name": record.name,
            "id": record.instance_id,
            "status": port.status if port else "?",
            "addresses": list(port.ip_addresses) if port else [],
            "network_id": record.network_id,
            "port_id": record.port_id,
            "host": record.host,
            "namespace": record.namespace,
            "plugged": view.plugged,
            "dhcp": record.dhcp,
            **({"error": view.port_error} if view.port_error else {}),
        })
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    errors = {row["error"] for row in rows if "error" in row and row["error"] != "port not found"}
    for error in sorted(errors):
        print(f"neutrino: warning: {error}", file=sys.stderr)
    header = ("NAME", "STATUS", "ADDRESSES", "HOST", "PLUGGED", "PORT")
    table = [header] + [
        (r["name"], r["status"], ",".join(r["addresses"]) or "-", r["host"], "yes" if r["plugged"] else "no",
         r["port_id"] or "-")
        for r in rows
    ]
    widths = [max(len(str(line[i])) for line in table) for i in range(len(header))]
    for line in table:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
    return 0


async def _exec(args: argparse.Namespace, settings: Settings) -> int:
    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    status = await _instances(args, settings).exec(args.name, command)
    # A command killed by a signal reports -N; shells report 128 + N.
    return status if status >= 0 else 128 - status
