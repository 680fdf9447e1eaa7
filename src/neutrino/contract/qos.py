"""The qos role's desired state (``sync_state(host, "qos")``) as frozen data.

One entry per port bound to the host whose effective QoS policy (the port's own, else its
network's) has a rule this backend enforces; the server resolves the policy, so the agent sees
limits, not policies. Directions are the instance's, as in the API: ``egress`` is what the
instance sends, ``ingress`` what it receives. On the wire through :mod:`neutrino.contract.codec`.

A guaranteed minimum (``min_egress_kbps``) comes with the port's network type and physical
network, so the agent can find the uplink it is guaranteed on. Ingress minimums and minimum packet
rates are not sent: as in Neutron, no data plane enforces them (they only shape the port's
``resource_request``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

MIN_BURST_KBIT = 16  # a shaper's burst below one full frame would stall: at least a 1500-byte MTU


@dataclass(frozen=True, slots=True)
class BandwidthLimit:
    max_kbps: int
    max_burst_kbps: int = 0  # 0: the backend chooses (80% of the rate, as Neutron's Linux bridge driver)

    @property
    def burst_kbit(self) -> int:
        """The burst to configure: the rule's, else 80% of the rate, never below one frame."""
        return max(MIN_BURST_KBIT, self.max_burst_kbps or int(self.max_kbps * 0.8))


@dataclass(frozen=True, slots=True)
class PacketRateLimit:
    max_kpps: int
    max_burst_kpps: int = 0  # 0: the backend chooses (see the qos role)


@dataclass(frozen=True, slots=True)
class QosPort:
    port_id: str
    device: str
    policy_id: str
    egress: BandwidthLimit | None = None
    ingress: BandwidthLimit | None = None
    dscp_mark: int | None = None
    revision: int = 0
    egress_pps: PacketRateLimit | None = None  # additive (qos-pps): older servers leave them out
    ingress_pps: PacketRateLimit | None = None
    min_egress_kbps: int = 0  # additive (minimum_bandwidth, egress): 0 is no guarantee
    network_type: str = ""
    physical_network: str | None = None


@dataclass(frozen=True, slots=True)
class QosState:
    host: str
    ports: tuple[QosPort, ...] = ()
    generated_at: float = 0.0
    role: str = field(default="qos", init=False)


__all__ = ["BandwidthLimit", "PacketRateLimit", "QosPort", "QosState"]
