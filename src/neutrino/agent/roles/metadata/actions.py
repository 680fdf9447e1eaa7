"""The metadata role's changes, as data."""

from __future__ import annotations

from dataclasses import dataclass

from neutrino.agent.actions import AwaitNamespace


@dataclass(frozen=True, slots=True)
class WriteMap:
    netns: str
    content: str


@dataclass(frozen=True, slots=True)
class StartProxy:
    netns: str
    port: int


@dataclass(frozen=True, slots=True)
class LoadRedirect:
    netns: str
    body: str


@dataclass(frozen=True, slots=True)
class AwaitDevice:
    """A router's ``qr-`` device is made by the l3 role; until it exists this object waits (retried)."""

    netns: str
    device: str


@dataclass(frozen=True, slots=True)
class AddMetadataAddress:
    """fe80::a9fe:a9fe on a ``qr-`` device, so the router answers instances' neighbour solicitations."""

    netns: str
    device: str


@dataclass(frozen=True, slots=True)
class LoadRedirect6:
    netns: str
    body: str


@dataclass(frozen=True, slots=True)
class RemoveProxy:
    netns: str
    redirect: bool
    redirect6: bool = False


Action = (AwaitNamespace | AwaitDevice | WriteMap | StartProxy | AddMetadataAddress | LoadRedirect | LoadRedirect6
          | RemoveProxy)
