"""What an instance does with a DHCP lease: the script dhclient runs (``-sf``) inside the instance.

The distribution's dhclient-script is not used on purpose: it rewrites /etc/resolv.conf, may set
the machine's hostname and runs the hooks in /etc/dhcp (which restart services), all of which would
reach the host, because an instance namespace shares the host's filesystem and UTS namespace. This
hook only touches the instance's own interface: address, MTU, routes.

``lease_plan(environment)`` decides, purely, from the variables dhclient passes (``reason``,
``interface``, ``new_*``/``old_*``); ``apply`` does it with the netlink driver in the namespace the
process runs in (dhclient and its script run inside the instance). Run as
``python -m neutrino.compute.lease_hook --owner HOST``; the exit status is what dhclient expects.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from neutrino.dataplane.netlink import IPAddress, IPInterface, IPNetwork, NetlinkDriver
from neutrino.dataplane.ownership import OwnerTag

# dhclient's reasons (dhclient-script(8)).
_BIND_REASONS = frozenset({"BOUND", "RENEW", "REBIND", "REBOOT"})
_UNBIND_REASONS = frozenset({"EXPIRE", "FAIL", "RELEASE", "STOP"})
# The smallest MTU an IPv4 host must accept (RFC 791); smaller DHCP MTUs are ignored.
_MIN_MTU = 68


@dataclass(frozen=True, slots=True)
class LeaseRoute:
    destination: IPNetwork
    # None: on-link (RFC 3442 router 0.0.0.0).
    gateway: IPAddress | None


@dataclass(frozen=True, slots=True)
class LeasePlan:
    """What to change on the interface for one dhclient event."""

    interface: str
    bring_up: bool = False
    remove: tuple[IPInterface, ...] = ()
    add: IPInterface | None = None
    mtu: int | None = None
    default_gateway: IPAddress | None = None
    routes: tuple[LeaseRoute, ...] = ()
    # False tells dhclient the offered/remembered lease is not usable.
    accept: bool = True
    # A fresh binding: any other IPv4 address on the interface is stale (a lease the server refused
    # with a NAK after the port's address changed leaves no old_ip_address to remove).
    exclusive: bool = False


def _interface(address: str | None, mask: str | None) -> IPInterface | None:
    if not address:
        return None
    prefix = ipaddress.IPv4Network(f"0.0.0.0/{mask}").prefixlen if mask else 32
    return ipaddress.ip_interface(f"{address}/{prefix}")


def classless_routes(value: str) -> tuple[LeaseRoute, ...]:
    """Decode RFC 3442 option 121 as dhclient exports it (decimal octets, space or comma separated).

    Each route is: prefix width, the significant octets of the destination (ceil(width / 8)),
    then the 4 octets of the router. A malformed tail is ignored rather than half-applied.
    """
    numbers = [int(n) for n in value.replace(",", " ").split()]
    routes, i = [], 0
    while i < len(numbers):
        width = numbers[i]
        significant = (width + 7) // 8
        end = i + 1 + significant + 4
        if width > 32 or end > len(numbers):
            break
        octets = numbers[i + 1 : i + 1 + significant] + [0] * (4 - significant)
        destination = ipaddress.IPv4Network((".".join(map(str, octets)), width), strict=False)
        router = ipaddress.IPv4Address(".".join(map(str, numbers[i + 1 + significant : end])))
        routes.append(LeaseRoute(destination, None if int(router) == 0 else router))
        i = end
    return tuple(routes)


def lease_plan(environment: Mapping[str, str]) -> LeasePlan | None:
    """The change one dhclient event asks for, or None for events that need nothing."""
    reason = environment.get("reason", "")
    interface = environment.get("interface", "")
    if reason == "PREINIT":
        return LeasePlan(interface, bring_up=True)
    if reason == "TIMEOUT":
        # No server answered and dhclient offers a remembered lease: a stale address is worse than
        # none for tests that check what the DHCP server hands out.
        return LeasePlan(interface, accept=False)
    old = _interface(environment.get("old_ip_address"), environment.get("old_subnet_mask"))
    if reason in _UNBIND_REASONS:
        return LeasePlan(interface, remove=(old,) if old else ())
    if reason not in _BIND_REASONS:
        return None
    new = _interface(environment.get("new_ip_address"), environment.get("new_subnet_mask"))
    mtu_text = environment.get("new_interface_mtu", "")
    mtu = int(mtu_text) if mtu_text.isdigit() and int(mtu_text) >= _MIN_MTU else None
    gateway: IPAddress | None = None
    routes: list[LeaseRoute] = []
    classless = environment.get("new_rfc3442_classless_static_routes", "")
    if classless.strip():
        # RFC 3442: when option 121 is present the router option is ignored.
        for route in classless_routes(classless):
            if route.destination.prefixlen == 0:
                gateway = gateway or route.gateway
            else:
                routes.append(route)
    else:
        routers = environment.get("new_routers", "").split()
        gateway = ipaddress.ip_address(routers[0]) if routers else None
    stale = (old,) if old is not None and old != new else ()
    return LeasePlan(interface, bring_up=True, remove=stale, add=new, mtu=mtu, default_gateway=gateway,
                     routes=tuple(routes), exclusive=reason in ("BOUND", "REBOOT"))


async def apply(plan: LeasePlan, driver: NetlinkDriver) -> None:
    """Make the interface (in this process's namespace) match ``plan``."""
    device = plan.interface
    if plan.mtu is not None:
        await driver.set_mtu(device, plan.mtu)
    if plan.bring_up:
        await driver.set_up(device)
    for old in plan.remove:
        await driver.remove_address(device, old)
    if plan.exclusive and plan.add is not None:
        for address in await driver.list_addresses(device=device, version=4):
            if address.scope == "global" and address.interface != plan.add:
                await driver.remove_address(device, address.interface)
    if plan.add is not None:
        await driver.ensure_address(device, plan.add)
    for route in plan.routes:
        await driver.ensure_route(route.destination, gateway=route.gateway, device=device)
    if plan.default_gateway is not None:
        await driver.ensure_default_route(plan.default_gateway, device=device)


def main(argv: Sequence[str] | None = None, environment: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="neutrino-lease-hook")
    parser.add_argument("--owner", required=True, help="host whose mark new kernel objects carry")
    args = parser.parse_args(argv)
    plan = lease_plan(os.environ if environment is None else environment)
    if plan is None:
        return 0
    if not plan.accept:
        return 1
    try:
        asyncio.run(apply(plan, NetlinkDriver(OwnerTag(args.owner))))
    except Exception as exc:  # noqa: BLE001 - dhclient only sees the exit status; say why on stderr
        print(f"neutrino lease hook: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
