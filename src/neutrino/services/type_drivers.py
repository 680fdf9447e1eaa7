"""Type drivers: flat, vlan, vxlan, local — validating provider requests and choosing segment ids.

Pure decisions: given the configured ranges, a request and the ids already used, say what the
segment is. The network service stores it; the database's unique constraint on
(network_type, physical_network, segmentation_id) settles races between servers.
"""

from __future__ import annotations

import random
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from neutrino.config import MechanismSettings
from neutrino.errors import Conflict, InvalidInput, ServiceUnavailable

VXLAN_OVERHEAD = 50  # IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14)
MAX_VNI = 2 ** 24 - 1


class NoNetworkAvailable(ServiceUnavailable):
    message = "Unable to create the network. No tenant network is available for allocation."


class FlatNetworkInUse(Conflict):
    message = "Unable to create the flat network. Physical network %(physical_network)s is in use."


class VlanIdInUse(Conflict):
    message = ("Unable to create the network. The VLAN %(vlan_id)s on physical network "
               "%(physical_network)s is in use.")


class TunnelIdInUse(Conflict):
    message = "Unable to create the network. The tunnel ID %(tunnel_id)s is in use."


class SegmentsSetInConjunctionWithProviders(InvalidInput):
    pass


class SegmentsContainDuplicateEntry(InvalidInput):
    pass


@dataclass(frozen=True, slots=True)
class Segment:
    network_type: str
    physical_network: str | None
    segmentation_id: int | None

    def as_provider(self) -> dict[str, Any]:
        return {"provider:network_type": self.network_type,
                "provider:physical_network": self.physical_network,
                "provider:segmentation_id": self.segmentation_id}


def _parse_ranges(specs: list[str]) -> list[tuple[int, int]]:
    out = []
    for spec in specs:
        lo, _, hi = spec.partition(":")
        out.append((int(lo), int(hi or lo)))
    return out


def _parse_vlan_ranges(specs: list[str]) -> dict[str, list[tuple[int, int]]]:
    out: dict[str, list[tuple[int, int]]] = {}
    for spec in specs:
        parts = spec.split(":")
        ranges = out.setdefault(parts[0], [])
        if len(parts) == 3:
            ranges.append((int(parts[1]), int(parts[2])))
    return out


class TypeDrivers:
    """The configured type drivers, as one object the network service consults."""

    def __init__(self, settings: MechanismSettings) -> None:
        self.settings = settings
        self.enabled = tuple(settings.type_drivers)
        self.tenant_types = tuple(settings.tenant_network_types)
        self.vni_ranges = _parse_ranges(settings.vni_ranges)
        self.vlan_ranges = _parse_vlan_ranges(settings.network_vlan_ranges)
        self.flat_networks = tuple(settings.flat_networks)

    def mtu_for(self, segment: Segment) -> int:
        if segment.network_type == "vxlan":
            return self.settings.physical_mtu - VXLAN_OVERHEAD
        return self.settings.physical_mtu

    # ---- validation --------------------------------------------------------------------------

    def validate_provider(self, seg: Mapping[str, Any]) -> Segment:
        """Check one requested segment; segmentation_id None means "allocate one for me"."""
        ntype = seg.get("provider:network_type")
        physnet = seg.get("provider:physical_network")
        seg_id = seg.get("provider:segmentation_id")
        if not ntype:
            raise InvalidInput("network_type required")
        if ntype not in self.enabled:
            raise InvalidInput(f"network_type value '{ntype}' not supported")
        if ntype == "flat":
            if seg_id is not None:
                raise InvalidInput("segmentation_id specified for flat provider network")
            if not physnet:
                raise InvalidInput("physical_network required for flat provider network")
            if "*" not in self.flat_networks and physnet not in self.flat_networks:
                raise InvalidInput(f"physical_network '{physnet}' unknown for flat provider network")
            return Segment("flat", physnet, None)
        if ntype == "vlan":
            if seg_id is not None and not 1 <= int(seg_id) <= 4094:
                raise InvalidInput("segmentation_id out of range (1 through 4094)")
            if physnet and physnet not in self.vlan_ranges:
                raise InvalidInput(f"physical_network '{physnet}' unknown for VLAN provider network")
            if seg_id is not None and not physnet:
                raise InvalidInput("physical_network required for VLAN provider network")
            return Segment("vlan", physnet or None, None if seg_id is None else int(seg_id))
        if ntype == "vxlan":
            if physnet:
                raise InvalidInput("provider:physical_network specified for vxlan network")
            if seg_id is not None and not 1 <= int(seg_id) <= MAX_VNI:
                raise InvalidInput(f"segmentation_id out of range (1 through {MAX_VNI})")
            return Segment("vxlan", None, None if seg_id is None else int(seg_id))
        if ntype == "local":
            if physnet or seg_id is not None:
                raise InvalidInput("physical_network and segmentation_id are not allowed for local network")
            return Segment("local", None, None)
        raise InvalidInput(f"network_type value '{ntype}' not supported")

    # ---- allocation --------------------------------------------------------------------------

    def needs_allocation(self, seg: Segment) -> bool:
        return seg.network_type in ("vxlan", "vlan") and seg.segmentation_id is None

    def candidate_ranges(self, seg: Segment) -> list[tuple[str | None, int, int]]:
        if seg.network_type == "vxlan":
            return [(None, lo, hi) for lo, hi in self.vni_ranges]
        if seg.network_type == "vlan":
            physnets = [seg.physical_network] if seg.physical_network else list(self.vlan_ranges)
            return [(p, lo, hi) for p in physnets for lo, hi in self.vlan_ranges.get(p or "", [])]
        return []

    def choose_id(self, seg: Segment, used: Mapping[str | None, Container[int]], rng: random.Random,
                  ranges: Sequence[tuple[str | None, int, int]] | None = None,
                  blocked: Sequence[tuple[str | None, int, int]] = ()) -> Segment:
        """Pick a free id from ``ranges`` (the configured ranges by default) outside the ``blocked``
        ones; random first, then a scan for dense ranges."""
        ranges = self.candidate_ranges(seg) if ranges is None else list(ranges)

        def free(physnet: str | None, cand: int) -> bool:
            return cand not in used.get(physnet, ()) and not any(
                p == physnet and lo <= cand <= hi for p, lo, hi in blocked)

        for _ in range(32):
            if not ranges:
                break
            physnet, lo, hi = rng.choice(ranges)
            cand = rng.randint(lo, hi)
            if free(physnet, cand):
                return Segment(seg.network_type, physnet, cand)
        for physnet, lo, hi in ranges:
            for cand in range(lo, hi + 1):
                if free(physnet, cand):
                    return Segment(seg.network_type, physnet, cand)
        raise NoNetworkAvailable()

    def in_use_error(self, seg: Segment) -> Conflict:
        if seg.network_type == "flat":
            return FlatNetworkInUse(physical_network=seg.physical_network)
        if seg.network_type == "vlan":
            return VlanIdInUse(vlan_id=seg.segmentation_id, physical_network=seg.physical_network)
        return TunnelIdInUse(tunnel_id=seg.segmentation_id)

    def tenant_segment(self) -> Segment:
        if not self.tenant_types:
            raise NoNetworkAvailable()
        return Segment(self.tenant_types[0], None, None)
