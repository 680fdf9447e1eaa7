"""Errors of the instance simulator, kept apart from the API's domain hierarchy in :mod:`neutrino.errors`.

These describe what went wrong on the *client* side of the Networking API (as Nova would see it):
an unknown instance, a cloud that refused a request, a kernel object that is missing. The CLI
prints their message as one line; nothing here is rendered as an HTTP response.
"""

from __future__ import annotations


class ComputeError(Exception):
    """Base of every error the instance simulator reports; the message is meant for the user."""


class InvalidInstanceName(ComputeError):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"invalid instance name {name!r}: {reason}")
        self.name = name


class InstanceNotFound(ComputeError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no instance named {name!r} in this state directory")
        self.name = name


class InstanceExists(ComputeError):
    def __init__(self, name: str) -> None:
        super().__init__(f"an instance named {name!r} already exists (delete it first)")
        self.name = name


class InstanceNotPlugged(ComputeError):
    """The instance's namespace is gone (e.g. after ``neutrino cleanup``); only delete makes sense."""

    def __init__(self, name: str, namespace: str) -> None:
        super().__init__(f"instance {name!r} has no namespace {namespace!r} (removed by cleanup?)")
        self.name = name


class CloudRequestFailed(ComputeError):
    """A Networking or Identity API request failed; says which cloud (credentials) made it and why."""

    def __init__(self, action: str, cloud: str | None, detail: str) -> None:
        who = f"cloud {cloud!r}" if cloud else "the default cloud"
        super().__init__(f"{action} (as {who}) failed: {detail}")
        self.action = action
        self.cloud = cloud
