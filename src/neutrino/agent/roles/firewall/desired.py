"""The compiled tables cut into objects the reconciler keeps one by one (pure).

Keys, lowest rank first (updates in this order, removals in reverse):

* ``("table", family)``: the table with its base chains, the ``trusted`` chain and its (empty) map
  declarations: rank 0;
* ``("set", name)``: a remote-group or address-group set with its elements, and ``("zone", bridge)``:
  a bridge's conntrack zone (an element of ``zones``): rank 1;
* ``("log", "inet")``: when some port logs (``logging``): the named limit every log rule passes
  and the drop-logging chains ``ldrop-in``/``-out``: rank 1;
* ``("group", id)``: a security group's two chains (``grp-<id>-in``/``-out``), which the chains of
  every port in the group jump to: rank 2; ``("lgroup", id)``: its logged twin (``lacc-``/``lgrp-``
  chains), when a port logs the group's accepted connections: rank 2;
* ``("port", tap)``: everything of one port in both tables, so its mark and its chains come and go
  in one transaction: its chains (``from-``, ``in-``, ``out-``) and its elements in ``from_port``,
  ``port_marks``, ``egress_ports`` and ``ingress_ports``: rank 3.

A membership change is then one ``set`` object with one element to add or delete; a rule change
one ``group`` object, whatever the number of ports in the group; a restart that finds everything
right plans nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from neutrino.agent.roles.firewall.compile import ChainSpec, Compiled, MapSpec, SetSpec

Key = tuple[str, str]
RANKS = {"table": 0, "set": 1, "zone": 1, "log": 1, "group": 2, "lgroup": 2, "port": 3}
LOG_CHAINS = ("ldrop-in", "ldrop-out")
LOGGED_GROUP_PREFIXES = ("lacc-", "lgrp-")
FAMILIES = ("bridge", "inet")
PORT_MAPS = {"bridge": ("from_port", "port_marks"), "inet": ("egress_ports", "ingress_ports")}


@dataclass(frozen=True, slots=True)
class Piece:
    """What one key owns: chains and map declarations, sets, and elements of maps owned by a table."""

    chains: tuple[tuple[str, ChainSpec], ...] = ()  # (family, chain)
    maps: tuple[tuple[str, MapSpec], ...] = ()  # declarations (their elements belong to other keys)
    sets: tuple[SetSpec, ...] = ()  # inet family
    elements: tuple[tuple[str, str, str, str], ...] = ()  # (family, map, key, value)
    comment: str | None = None  # a table's: the owner's mark, which ``neutrino cleanup --host`` reads
    limits: tuple[tuple[str, str], ...] = ()  # inet family: (name, spec) of named limits


def pieces(compiled: Compiled, owner: str | None = None) -> dict[Key, Piece]:
    """The keyed objects of the two tables; ``owner`` marks the tables (``OwnerTag.alias``)."""
    out: dict[Key, Piece] = {}
    by_family = {"bridge": compiled.bridge, "inet": compiled.inet}
    port_chain_prefixes = ("from-", "in-", "out-", "grp-", "ldrop-", *LOGGED_GROUP_PREFIXES)
    for family, table in by_family.items():
        out[("table", family)] = Piece(
            chains=tuple((family, c) for c in table.chains.values() if not c.name.startswith(port_chain_prefixes)),
            maps=tuple((family, MapSpec(m.name, m.declaration)) for m in table.maps.values()), comment=owner)
    for s in compiled.inet.sets.values():
        out[("set", s.name)] = Piece(sets=(s,))
    for name, chain in compiled.inet.chains.items():
        if name.startswith("grp-") and name.endswith("-in"):
            group_id = name[len("grp-"):-len("-in")]
            out[("group", group_id)] = Piece(chains=(("inet", chain), ("inet", compiled.inet.chains[f"grp-{group_id}-out"])))
    if compiled.inet.limits or any(c in compiled.inet.chains for c in LOG_CHAINS):
        out[("log", "inet")] = Piece(chains=tuple(("inet", compiled.inet.chains[c]) for c in LOG_CHAINS),
                                     limits=tuple(sorted(compiled.inet.limits.items())))
    for name in compiled.inet.chains:
        if name.startswith("lgrp-") and name.endswith("-in"):
            group_id = name[len("lgrp-"):-len("-in")]
            out[("lgroup", group_id)] = Piece(chains=tuple(
                ("inet", compiled.inet.chains[f"{prefix}{group_id}-{d}"])
                for prefix in ("lacc-", "lgrp-") for d in ("in", "out")))
    for bridge, zone in compiled.inet.maps["zones"].elements.items():
        out[("zone", bridge)] = Piece(elements=(("inet", "zones", bridge, zone),))
    for device in compiled.bridge.maps["from_port"].elements:
        chains = [(family, by_family[family].chains[name])
                  for family, name in (("bridge", f"from-{device}"), ("inet", f"in-{device}"),
                                       ("inet", f"out-{device}")) if name in by_family[family].chains]
        elements = [("bridge", m, device, compiled.bridge.maps[m].elements[device]) for m in PORT_MAPS["bridge"]]
        mark = compiled.bridge.maps["port_marks"].elements[device]
        for m in PORT_MAPS["inet"]:
            value = compiled.inet.maps[m].elements.get(mark)
            if value is not None:
                elements.append(("inet", m, mark, value))
        out[("port", device)] = Piece(tuple(chains), (), (), tuple(elements))
    return out


def rank(key: Key) -> int:
    return RANKS[key[0]]


__all__ = ["FAMILIES", "LOGGED_GROUP_PREFIXES", "LOG_CHAINS", "Key", "PORT_MAPS", "Piece", "pieces", "rank"]
