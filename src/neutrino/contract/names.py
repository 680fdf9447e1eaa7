"""The one place where kernel device and namespace names are made.

Names follow Neutron's linuxbridge agent so operators recognise them: ``tap<port[:11]>``,
``brq<network[:11]>``, ``vxlan-<vni>``, ``qdhcp-<network>``, ``qrouter-<router>``,
``qr-<port[:11]>``, ``qg-<port[:11]>``, ``ns-<port[:11]>``. Every function is pure; callers never
build these strings themselves, so a rename happens here and nowhere else.

Network namespaces are global to the kernel while devices are per namespace. Several simulated
hosts sharing one kernel therefore only collide on namespace names, which is why the namespace
functions take a ``prefix``/``suffix`` (for example ``suffix="@host-a"``); device names need none.
"""

from __future__ import annotations

import enum
import ipaddress
import re

# IFNAMSIZ is 16 with the terminating NUL: device names are at most 15 characters.
IFNAMSIZ_MAX_CHARS = 15
# Namespace names are file names under /run/netns: NAME_MAX is 255 bytes.
NETNS_NAME_MAX_CHARS = 255
# Neutron puts the first 11 characters of the id after a 3-character prefix: 14 <= 15.
ID_PREFIX_CHARS = 11
# VXLAN Network Identifiers are 24-bit; 0 is not usable as a segment.
VNI_MIN = 1
VNI_MAX = 2**24 - 1

# What the kernel refuses in a device name (net/core/dev.c dev_valid_name): '/', ':' and
# whitespace; also "." and ".." are reserved.
_FORBIDDEN_IN_DEVICE_NAME = re.compile(r"[/:\s]")


class DeviceRole(enum.Enum):
    """What a Neutrino-named device is for; found from its name alone."""

    TAP = "tap"
    BRIDGE = "brq"
    VXLAN = "vxlan-"
    ROUTER_INTERFACE = "qr-"
    ROUTER_GATEWAY = "qg-"
    DHCP_INTERFACE = "ns-"
    HA_INTERFACE = "ha-"


# Neutron ids are UUIDs (8-4-4-4-12 hex); their first 11 characters are 8 hex, '-', 2 hex.
_UUID_HEAD = r"[0-9a-f]{8}-[0-9a-f]{2}"
_DEVICE_NAME_PATTERNS: tuple[tuple[DeviceRole, re.Pattern[str]], ...] = (
    (DeviceRole.TAP, re.compile(rf"tap{_UUID_HEAD}")),
    (DeviceRole.BRIDGE, re.compile(rf"brq{_UUID_HEAD}")),
    (DeviceRole.VXLAN, re.compile(r"vxlan-[1-9][0-9]{0,7}")),
    (DeviceRole.ROUTER_INTERFACE, re.compile(rf"qr-{_UUID_HEAD}")),
    (DeviceRole.ROUTER_GATEWAY, re.compile(rf"qg-{_UUID_HEAD}")),
    (DeviceRole.DHCP_INTERFACE, re.compile(rf"ns-{_UUID_HEAD}")),
    (DeviceRole.HA_INTERFACE, re.compile(rf"ha-{_UUID_HEAD}")),
)

DHCP_NAMESPACE_PREFIX = "qdhcp-"
ROUTER_NAMESPACE_PREFIX = "qrouter-"


def _device_name(prefix: str, resource_id: str) -> str:
    if not resource_id:
        raise ValueError(f"an id is needed to name a {prefix!r} device")
    return checked_device_name(prefix + resource_id[:ID_PREFIX_CHARS])


def checked_device_name(name: str) -> str:
    """Return ``name`` if the kernel would accept it as a device name, else raise ValueError."""
    if not name or name in (".", ".."):
        raise ValueError(f"invalid device name {name!r}")
    if len(name) > IFNAMSIZ_MAX_CHARS:
        raise ValueError(f"device name {name!r} is longer than {IFNAMSIZ_MAX_CHARS} characters (IFNAMSIZ)")
    if _FORBIDDEN_IN_DEVICE_NAME.search(name):
        raise ValueError(f"device name {name!r} contains '/', ':' or whitespace")
    return name


def checked_namespace_name(name: str) -> str:
    """Return ``name`` if it can be a network namespace name (a file under /run/netns)."""
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise ValueError(f"invalid network namespace name {name!r}")
    if len(name.encode()) > NETNS_NAME_MAX_CHARS:
        raise ValueError(f"network namespace name {name!r} is longer than {NETNS_NAME_MAX_CHARS} bytes")
    return name


def tap_name(port_id: str) -> str:
    """Host end of an instance's veth (what os-vif calls the tap), plugged into the network bridge."""
    return _device_name("tap", port_id)


def port_id_head(device: str) -> str:
    """The head of the port id a ``tap`` name carries; any other name is returned as it is (a port id)."""
    return device[len("tap"):] if device.startswith("tap") else device


def ifb_name(port_id: str) -> str:
    """The IFB device that shapes what an instance sends (its tap's ingress is redirected there)."""
    return _device_name("ifb", port_id)


def bridge_name(network_id: str) -> str:
    """The Linux bridge that carries one network on one host."""
    return _device_name("brq", network_id)


def vxlan_name(vni: int) -> str:
    """The VXLAN device of one segment; enslaved to the network's bridge."""
    if isinstance(vni, bool) or not isinstance(vni, int) or not VNI_MIN <= vni <= VNI_MAX:
        raise ValueError(f"VNI must be an integer in [{VNI_MIN}, {VNI_MAX}], got {vni!r}")
    return checked_device_name(f"vxlan-{vni}")


def router_interface_name(port_id: str) -> str:
    """A router's internal interface, inside ``qrouter-<router>``."""
    return _device_name("qr-", port_id)


def router_gateway_name(port_id: str) -> str:
    """A router's external gateway interface, inside ``qrouter-<router>``."""
    return _device_name("qg-", port_id)


def ha_interface_name(port_id: str) -> str:
    """An HA router's port on its project's HA network (VRRP), inside ``qrouter-<router>``."""
    return _device_name("ha-", port_id)


def dhcp_interface_name(port_id: str) -> str:
    """The DHCP port's interface, inside ``qdhcp-<network>``."""
    return _device_name("ns-", port_id)


def dhcp_namespace(network_id: str, prefix: str = "", suffix: str = "") -> str:
    """Namespace of a network's DHCP server; prefix/suffix keep simulated hosts apart."""
    if not network_id:
        raise ValueError("a network id is needed to name a DHCP namespace")
    return checked_namespace_name(f"{prefix}{DHCP_NAMESPACE_PREFIX}{network_id}{suffix}")


def router_namespace(router_id: str, prefix: str = "", suffix: str = "") -> str:
    """Namespace of a router; prefix/suffix keep simulated hosts apart."""
    if not router_id:
        raise ValueError("a router id is needed to name a router namespace")
    return checked_namespace_name(f"{prefix}{ROUTER_NAMESPACE_PREFIX}{router_id}{suffix}")


def router_of_namespace(name: str, prefix: str = "", suffix: str = "") -> str | None:
    """The router id a ``router_namespace`` name (made with this prefix and suffix) carries, else None."""
    head = prefix + ROUTER_NAMESPACE_PREFIX
    if not name.startswith(head) or not name.endswith(suffix) or len(name) <= len(head) + len(suffix):
        return None
    return name[len(head) : len(name) - len(suffix)]


def device_role(name: str) -> DeviceRole | None:
    """Which Neutrino naming convention ``name`` follows, or None if it follows none.

    Only ids shaped like Neutron's (UUIDs) are recognised, so a ``tap0`` made by some other
    program is never mistaken for ours. A name match alone is not ownership: the driver marks
    what it creates (see ``ownership``), and cleanup must check that mark too.
    """
    for role, pattern in _DEVICE_NAME_PATTERNS:
        if pattern.fullmatch(name):
            return role
    return None


def is_neutrino_device_name(name: str) -> bool:
    """True if ``name`` follows one of Neutrino's device naming conventions."""
    return device_role(name) is not None


def is_neutrino_namespace_name(name: str, prefix: str = "", suffix: str = "") -> bool:
    """True if ``name`` is a DHCP or router namespace name made with this prefix and suffix."""
    if not name.startswith(prefix) or not name.endswith(suffix):
        return False
    core = name[len(prefix) : len(name) - len(suffix)]
    for kind_prefix in (DHCP_NAMESPACE_PREFIX, ROUTER_NAMESPACE_PREFIX):
        if core.startswith(kind_prefix) and len(core) > len(kind_prefix):
            return True
    return False


def eui64_link_local(mac: str) -> str:
    """The EUI-64 link-local address an interface with ``mac`` gives itself (RFC 4291 2.5.1): what
    the firewall lets a port send from, and what an HA router's master holds on its devices."""
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 0x02
    iid = octets[:3] + [0xFF, 0xFE] + octets[3:]
    return str(ipaddress.IPv6Address(bytes([0xFE, 0x80] + [0] * 6 + iid)))
