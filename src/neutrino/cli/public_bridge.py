"""The host side of the all-in-one's demo external network: DevStack's ``br-ex`` with its gateway address.

``neutrino up`` maps the physical network ``public`` to a bridge of the host (``[all_in_one]
public_bridge``); the l2 role then plugs the taps of flat networks on that physnet straight into it,
as Neutron's Linux bridge agent does with ``bridge_mappings``. The bridge carries the subnet's
gateway address, so instances on ``public`` reach the host (and, through the opt-in NAT, beyond).

A bridge this code creates carries the host's owner alias, so ``neutrino cleanup --host H`` removes
it; the running agent never does (its pruning only touches ``brq``/``vxlan-`` devices that no
mapping names). A bridge that exists without our mark is the operator's: it is used as it is, never
re-marked, re-addressed or removed.

Outbound NAT is off unless ``public_nat`` is set: it then enables IPv4 forwarding in the host
namespace and masquerades traffic from ``floating_range`` that leaves through another interface, in
an nftables table ``neutrino-public-<bridge>`` commented with the owner mark (cleanup removes it).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import dataclass

from neutrino.config import AllInOneSettings
from neutrino.contract.names import checked_device_name
from neutrino.dataplane.netlink import NetlinkDriver, NetlinkDriverError
from neutrino.dataplane.ownership import OwnerTag

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PublicBridgePlan:
    """What the host needs for the demo external network, checked once from the settings."""

    bridge: str
    gateway: ipaddress.IPv4Interface
    nat: bool

    @property
    def nat_table(self) -> str:
        return f"neutrino-public-{self.bridge}"

    @classmethod
    def from_settings(cls, settings: AllInOneSettings) -> PublicBridgePlan:
        """Raise ValueError for a bridge name the kernel refuses or a gateway outside the range."""
        network = ipaddress.ip_network(settings.floating_range, strict=True)
        gateway = ipaddress.ip_address(settings.public_network_gateway)
        if network.version != 4 or gateway not in network:
            raise ValueError(f"public_network_gateway {gateway} must be an IPv4 address in floating_range "
                             f"{network}")
        interface = ipaddress.IPv4Interface(f"{gateway}/{network.prefixlen}")
        return cls(checked_device_name(settings.public_bridge), interface, settings.public_nat)


async def ensure_public_bridge(plan: PublicBridgePlan, owner: OwnerTag, *, netns: str | None = None,
                               driver: NetlinkDriver | None = None) -> bool:
    """Create (or converge) the bridge, its gateway address and the opt-in NAT; False if it cannot be used.

    ``netns`` is the namespace that plays the host's root namespace (``[agent] netns``).
    Never raises for the kernel's refusals: the server still starts, the l2 role reports the
    mapping's device missing and ports on ``public`` stay DOWN until the bridge exists.
    """
    driver = driver or NetlinkDriver(owner)
    try:
        existing = await driver.get_link(plan.bridge, netns=netns)
        if existing is not None and not owner.owns(existing.alias):
            if existing.kind != "bridge":
                log.warning("%s is a %s, not a bridge: the public network cannot be wired", plan.bridge,
                            existing.kind or "device")
                return False
            log.info("using the existing bridge %s as it is (not created by Neutrino: no address or NAT "
                     "is added, cleanup leaves it)", plan.bridge)
            return True
        await driver.ensure_bridge(plan.bridge, netns=netns)
        await driver.ensure_address(plan.bridge, plan.gateway, netns=netns)
    except (NetlinkDriverError, OSError) as exc:
        log.warning("could not set up the public bridge %s (%s): instances on the public network stay "
                    "unwired", plan.bridge, exc)
        return False
    if plan.nat:
        await _ensure_nat(plan, owner, driver, netns)
    return True


async def _ensure_nat(plan: PublicBridgePlan, owner: OwnerTag, driver: NetlinkDriver, netns: str | None) -> None:
    network = plan.gateway.network
    # Adding, deleting and re-creating in one nft transaction replaces an older rule set atomically.
    script = (
        f"table ip {plan.nat_table}\n"
        f"delete table ip {plan.nat_table}\n"
        f"table ip {plan.nat_table} {{\n"
        f'  comment "{owner.alias}"\n'
        "  chain postrouting {\n"
        "    type nat hook postrouting priority srcnat; policy accept;\n"
        f'    ip saddr {network} ip daddr != {network} oifname != "{plan.bridge}" masquerade\n'
        "  }\n"
        "}\n"
    )
    try:
        await driver.set_sysctl("net.ipv4.ip_forward", 1, netns=netns)
        status, err = await _nft(netns, script)
    except (NetlinkDriverError, OSError) as exc:
        log.warning("public_nat: could not enable forwarding or NAT for %s: %s", network, exc)
        return
    if status != 0:
        log.warning("public_nat: nft refused the NAT rules for %s: %s", network, err.strip())
    else:
        log.info("public_nat: traffic from %s leaving the host is masqueraded (table ip %s)", network,
                 plan.nat_table)


async def _nft(netns: str | None, script: str) -> tuple[int, str]:
    command = ["nft", "-f", "-"] if netns is None else ["ip", "netns", "exec", netns, "nft", "-f", "-"]
    process = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(process.communicate(script.encode()), timeout=30)
    return process.returncode or 0, err.decode(errors="replace")
