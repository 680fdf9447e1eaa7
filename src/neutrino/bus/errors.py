"""Errors of the message bus, kept apart from the domain hierarchy in :mod:`neutrino.errors`.

These describe the transport, not the networking domain: a caller of :meth:`Bus.call` may rely on
getting exactly one of a reply, :class:`RemoteError`, :class:`BusTimeout`, :class:`BusUnavailable` or
:class:`BusVersionError` — never silence and never a transport library's own exception.
"""

from __future__ import annotations


class BusError(Exception):
    """Base of every error the bus raises to its users."""


class BusVersionError(BusError):
    """A message carries an envelope version this process does not speak; it was refused, not guessed at."""

    def __init__(self, version: object, supported: int) -> None:
        self.version = version
        self.supported = supported
        super().__init__(
            f"refused a bus message with envelope version {version!r}; this process speaks version {supported}"
        )


class MalformedEnvelope(BusError):
    """A message is not a well-formed envelope (bad JSON, missing or mistyped fields)."""


class BusTimeout(BusError):
    """A request was delivered but no reply came back within the caller's timeout."""

    def __init__(self, target: str, method: str, timeout: float) -> None:
        self.target = target
        self.method = method
        self.timeout = timeout
        super().__init__(f"no reply from {target!r} to {method!r} within {timeout:g}s")


class BusUnavailable(BusError):
    """A request could not be delivered: bus not started or closed, broker unreachable, nobody serving the target."""


class UnknownMethod(BusError):
    """Raised on the serving side for a method the target has no handler for; reaches the caller as RemoteError."""

    def __init__(self, target: str, method: str) -> None:
        self.target = target
        self.method = method
        super().__init__(f"{target!r} has no handler for method {method!r}")


class RemoteError(BusError):
    """The remote handler failed; ``type`` is its exception's class name and ``message`` its text."""

    def __init__(self, type: str, message: str) -> None:
        self.type = type
        self.message = message
        super().__init__(f"{type}: {message}")
