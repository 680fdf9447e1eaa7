"""What one Linux bridge agent is told about its host: its name, tunnel endpoint, physical mappings, namespace."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from neutrino.agent.config import HostScoped
from neutrino.contract.names import checked_device_name
from neutrino.dataplane.ownership import OwnerTag


@dataclass(frozen=True, slots=True)
class LinuxBridgeConfig(HostScoped):
    """The l2 role's settings; frozen so the pure planner can take it as an argument.

    ``netns`` is the namespace that plays this host's root namespace (see ``HostScoped``); every
    kernel read and write of the role happens there.

    ``bridge_mappings`` maps a physical network to a device of the host: an interface (a NIC, or a
    veth standing in for one) that is enslaved into the network's ``brq`` bridge, or an existing
    bridge (like DevStack's ``br-ex``) that the network's taps then join directly.
    """

    host: str
    tunnel_ip: str | None = None
    bridge_mappings: Mapping[str, str] = field(default_factory=dict)
    netns: str | None = None
    owner: OwnerTag | None = None

    def __post_init__(self) -> None:
        self.settle_host()
        for physnet, device in self.bridge_mappings.items():
            if not physnet:
                raise ValueError("a bridge mapping needs a physical network name")
            checked_device_name(device)
        object.__setattr__(self, "bridge_mappings", MappingProxyType(dict(self.bridge_mappings)))


def parse_bridge_mappings(pairs: Iterable[str]) -> dict[str, str]:
    """``["physnet1:eth1", "public:br-ex"]`` (the configuration file's form) as a mapping.

    A physical network given twice is an error: one network cannot leave through two devices.
    """
    mappings: dict[str, str] = {}
    for pair in pairs:
        physnet, sep, device = pair.strip().partition(":")
        physnet, device = physnet.strip(), device.strip()
        if not sep or not physnet or not device:
            raise ValueError(f"bridge mapping {pair!r} is not 'physnet:device'")
        if physnet in mappings:
            raise ValueError(f"physical network {physnet!r} is mapped twice")
        mappings[physnet] = checked_device_name(device)
    return mappings
