"""From ``sync_state("metering")`` to one nftables table per router namespace (pure).

Per router with a gateway and at least one label: the table ``inet neutrino-metering`` in its
``qrouter-`` namespace, with two named counters per label (``m-<label>-ingress``/``-egress``) and a
chain per label (``label-<label>``) that the ``forward`` base chain jumps to. In a label's chain,
the ``excluded`` rules come first and end the chain (``return``) uncounted; every other rule counts
the packet on its direction's counter and ends the chain, so a packet is counted at most once per
label. As Neutron's iptables driver, rules match forwarded traffic on the gateway device (filter
``FORWARD``: after DNAT, before SNAT, so the inside addresses are seen): ``egress`` leaves by
``qg-``, ``ingress`` comes in by it. The deprecated ``remote_ip_prefix`` is the source address of
egress traffic and the destination of ingress traffic (Neutron's reading of it); the
``source_ip_prefix``/``destination_ip_prefix`` pair means what it says.

Counters are never re-created while their label stays: a change rewrites the chains around them in
one transaction (:func:`script`), so what a label counted survives rule changes; the table is read
back without resetting anything. The last rule of ``forward`` carries the owner's mark
(``neutrino:<host>``) and a digest of the whole wish: a table another host made (simulated hosts
share a kernel) is never taken for ours.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

from neutrino.contract.metering import MeteringLabel, MeteringRouter, MeteringRule, MeteringState
from neutrino.contract.names import router_gateway_name, router_namespace
from neutrino.dataplane.nftables import NftTable

FAMILY = "inet"
TABLE = "neutrino-metering"
BASE_CHAIN = "forward"
DIRECTIONS = ("ingress", "egress")


def counter_name(label_id: str, direction: str) -> str:
    return f"m-{label_id}-{direction}"


def label_chain(label_id: str) -> str:
    return f"label-{label_id}"


@dataclass(frozen=True, slots=True)
class RouterMeters:
    """What one router namespace should hold, and what reports need of it."""

    netns: str
    router_id: str
    project_id: str
    labels: tuple[MeteringLabel, ...]
    counters: tuple[str, ...]
    chains: tuple[tuple[str, tuple[str, ...]], ...]  # (label chain, its rules)
    digest: str  # "<owner mark> <digest of the rest>"

    @property
    def rule_counts(self) -> dict[str, int]:
        """Rules per chain as the kernel should list them (``forward``: the jumps and the digest rule)."""
        return {BASE_CHAIN: len(self.chains) + 1, **{name: len(rules) for name, rules in self.chains}}


def rule_match(rule: MeteringRule, device: str) -> str | None:
    """The nftables match of one metering rule on the gateway ``device``; None if its prefixes mix
    IPv4 and IPv6 (no packet can match such a rule)."""
    egress = rule.direction == "egress"
    if rule.remote_ip_prefix:
        fields = [("saddr" if egress else "daddr", rule.remote_ip_prefix)]
    else:
        fields = [(f, p) for f, p in (("saddr", rule.source_ip_prefix), ("daddr", rule.destination_ip_prefix)) if p]
    versions = {ipaddress.ip_network(prefix, strict=False).version for _, prefix in fields}
    if len(versions) != 1:
        return None
    keyword = "ip" if versions == {4} else "ip6"
    matches = " ".join(f"{keyword} {f} {ipaddress.ip_network(p, strict=False)}" for f, p in fields)
    return f'{"oifname" if egress else "iifname"} "{device}" {matches}'


def label_rules(label: MeteringLabel, device: str) -> tuple[str, ...]:
    excluded, counted = [], []
    for rule in label.rules:
        match = rule_match(rule, device)
        if match is None or rule.direction not in DIRECTIONS:
            continue
        if rule.excluded:
            excluded.append(f"{match} return")
        else:
            counted.append(f'{match} counter name "{counter_name(label.id, rule.direction)}" return')
    return (*excluded, *counted)


def router_meters(router: MeteringRouter, prefix: str = "", owner: str = "") -> RouterMeters | None:
    """None when nothing is to be counted there (no gateway, no label): the table goes."""
    if not router.gw_port_id or not router.labels:
        return None
    device = router_gateway_name(router.gw_port_id)
    labels = tuple(sorted(router.labels, key=lambda label: label.id))
    counters = tuple(counter_name(label.id, d) for label in labels for d in DIRECTIONS)
    chains = tuple((label_chain(label.id), label_rules(label, device)) for label in labels)
    digest = f"{owner} {hashlib.sha256(repr((device, counters, chains)).encode()).hexdigest()[:16]}"
    return RouterMeters(router_namespace(router.router_id, prefix=prefix), router.router_id, router.project_id,
                        labels, counters, chains, digest)


def wishes(state: MeteringState, prefix: str = "", owner: str = "") -> dict[str, RouterMeters]:
    out = {}
    for router in state.routers:
        wish = router_meters(router, prefix, owner)
        if wish is not None:
            out[wish.netns] = wish
    return out


def table_digest(table: NftTable) -> str | None:
    chain = table.chains.get(BASE_CHAIN)
    return chain.last_comment if chain is not None else None


def owned_by(table: NftTable, owner: str) -> bool:
    return (table_digest(table) or "").startswith(owner + " ")


def matches(wish: RouterMeters, table: NftTable) -> bool:
    """The table is what the wish says: same digest, every chain with its rules, the same counters."""
    return (table_digest(table) == wish.digest
            and {name: c.rule_count for name, c in table.chains.items()} == wish.rule_counts
            and set(table.counters) == set(wish.counters))


def script(wish: RouterMeters, existing: NftTable | None) -> tuple[str, tuple[str, ...]]:
    """The ``nft -f`` transaction taking ``existing`` (None: no table) to ``wish``, and the counters it
    creates. Declaring what exists is a no-op for nftables, so kept counters keep their values."""
    t = f"{FAMILY} {TABLE}"
    have_chains = set(existing.chains) if existing is not None else set()
    have_counters = set(existing.counters) if existing is not None else set()
    wanted_chains = [name for name, _ in wish.chains]
    stale_chains = sorted(have_chains - set(wanted_chains) - {BASE_CHAIN})
    stale_counters = sorted(have_counters - set(wish.counters))
    lines = [f"table {t} {{"]
    lines += [f"  counter {name} {{ }}" for name in wish.counters]
    lines.append(f"  chain {BASE_CHAIN} {{ type filter hook forward priority filter; policy accept; }}")
    lines += [f"  chain {name} {{ }}" for name in wanted_chains]
    lines.append("}")
    lines += [f"flush chain {t} {name}" for name in (BASE_CHAIN, *wanted_chains, *stale_chains)]
    lines += [f"delete chain {t} {name}" for name in stale_chains]
    lines += [f"delete counter {t} {name}" for name in stale_counters]
    lines += [f"add rule {t} {BASE_CHAIN} jump {name}" for name in wanted_chains]
    lines += [f"add rule {t} {name} {rule}" for name, rules in wish.chains for rule in rules]
    lines.append(f'add rule {t} {BASE_CHAIN} accept comment "{wish.digest}"')
    return "\n".join(lines) + "\n", tuple(c for c in wish.counters if c not in have_counters)


__all__ = ["BASE_CHAIN", "DIRECTIONS", "FAMILY", "TABLE", "RouterMeters", "counter_name", "label_chain",
           "matches", "owned_by", "router_meters", "rule_match", "script", "wishes"]
