"""The metadata planner (pure): one namespace's proxy, map and redirect vs. what was read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from neutrino.agent.roles.metadata.actions import (
    Action,
    AddMetadataAddress,
    AwaitDevice,
    AwaitNamespace,
    LoadRedirect,
    LoadRedirect6,
    RemoveProxy,
    StartProxy,
    WriteMap,
)
from neutrino.agent.roles.metadata.desired import ProxyWish
from neutrino.dataplane.nftables import body_digest


@dataclass(frozen=True, slots=True)
class ProxyView:
    exists: bool               # the namespace
    running: bool              # its proxy
    map: str | None = None
    redirect_digest: str | None = None
    redirect6_digest: str | None = None
    devices: frozenset[str] = frozenset()      # qr- devices in the namespace
    v6_addressed: frozenset[str] = frozenset()  # those carrying fe80::a9fe:a9fe


@dataclass(frozen=True, slots=True)
class MetadataView:
    namespaces: Mapping[str, ProxyView] = field(default_factory=dict)
    known: tuple[str, ...] = ()  # namespaces with a proxy directory


def plan(netns: str, wish: ProxyWish | None, actual: MetadataView) -> tuple[Action, ...]:
    view = actual.namespaces.get(netns, ProxyView(False, False))
    if wish is None:
        if netns in actual.known or view.running:
            return (RemoveProxy(netns, view.redirect_digest is not None, view.redirect6_digest is not None),)
        return ()
    if not view.exists:
        return (AwaitNamespace(netns),)
    actions: list[Action] = []
    if view.map != wish.map:
        actions.append(WriteMap(netns, wish.map))
    if not view.running:
        actions.append(StartProxy(netns, wish.port))
    if wish.redirect is not None and view.redirect_digest != body_digest(wish.redirect):
        actions.append(LoadRedirect(netns, wish.redirect))
    for device in wish.v6_devices:
        if device not in view.devices:
            actions.append(AwaitDevice(netns, device))
        elif device not in view.v6_addressed:
            actions.append(AddMetadataAddress(netns, device))
    if wish.redirect6 is not None and view.redirect6_digest != body_digest(wish.redirect6):
        actions.append(LoadRedirect6(netns, wish.redirect6))
    return tuple(actions)
