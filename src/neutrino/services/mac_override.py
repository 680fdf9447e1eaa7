"""``port-mac-override``: the MAC of a ``direct-physical`` port comes from its device.

Such a port is a whole physical function handed to an instance, whose MAC is the device's: the
compute service puts it in the binding profile (``device_mac_address``) when it binds the port, and
the port takes it when that binding is committed (whether or not a driver could bind it, as in
Neutron). A port unbound, or whose device is released, gets a freshly generated MAC again, so an
idle port never keeps a device's MAC that another port may be bound to next.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from neutrino.services.ipam.mac import normalize_mac

DIRECT_PHYSICAL = "direct-physical"
PROFILE_KEY = "device_mac_address"
FRESH = ""  # take a newly generated MAC


def overridden_mac(vnic_type: str, host: str, profile: Mapping[str, Any] | None, *, rebound: bool,
                   released: bool = False) -> str | None:
    """The MAC the port must take now: the profile's (canonical; InvalidInput if it is none),
    :data:`FRESH`, or None to keep its own. ``rebound``: the binding was (re)made or removed;
    ``released``: the port's device_id and device_owner were cleared."""
    if vnic_type != DIRECT_PHYSICAL:
        return None
    if rebound and host:
        wanted = (profile or {}).get(PROFILE_KEY)
        return normalize_mac(wanted) if wanted else FRESH
    if rebound or released:
        return FRESH
    return None
