"""The metadata role's changes, as data."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AwaitNamespace:
    """The namespace is made by the dhcp or l3 role; until it exists this object waits (retried)."""

    netns: str


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
class RemoveProxy:
    netns: str
    redirect: bool


Action = AwaitNamespace | WriteMap | StartProxy | LoadRedirect | RemoveProxy
