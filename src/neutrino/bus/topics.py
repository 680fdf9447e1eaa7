"""Event topic names and the AMQP topic-matching rule, shared by both transports.

Topics are dot-separated words, e.g. ``event.port.compute-1`` or ``event.network.all``. Subscription
patterns use AMQP topic-exchange wildcards: ``*`` matches exactly one word, ``#`` matches zero or more
words. The in-process transport implements the same rule here so that a subscription behaves the same
under both transports.
"""

from __future__ import annotations

# AMQP 0-9-1 routing keys are shortstr: at most 255 bytes.
MAX_TOPIC_BYTES = 255
ALL_HOSTS = "all"


def event_topic(resource: str, host: str | None = None) -> str:
    """The topic of a change event for ``resource`` aimed at one host, or at every host when ``host`` is None.

    A host name may itself contain dots (FQDNs), so match host-scoped topics with ``event.*.<host>``
    or ``event.#``, not ``event.port.*``.
    """
    if not resource or "." in resource or "*" in resource or "#" in resource:
        raise ValueError(f"resource name {resource!r} must be one topic word")
    if host is not None and (not host or "*" in host or "#" in host):
        raise ValueError(f"host name {host!r} cannot be used in a topic")
    return check_topic(f"event.{resource}.{host if host is not None else ALL_HOSTS}")


def check_topic(topic: str) -> str:
    """Return ``topic`` if it is a publishable topic (no wildcards, no empty words, fits a routing key)."""
    if not topic or len(topic.encode()) > MAX_TOPIC_BYTES:
        raise ValueError(f"topic {topic!r} must be 1..{MAX_TOPIC_BYTES} bytes")
    words = topic.split(".")
    if any(not word or word in ("*", "#") for word in words):
        raise ValueError(f"topic {topic!r} has an empty or wildcard word")
    return topic


def check_pattern(pattern: str) -> str:
    """Return ``pattern`` if it is a valid subscription pattern."""
    if not pattern or len(pattern.encode()) > MAX_TOPIC_BYTES:
        raise ValueError(f"topic pattern {pattern!r} must be 1..{MAX_TOPIC_BYTES} bytes")
    if any(not word for word in pattern.split(".")):
        raise ValueError(f"topic pattern {pattern!r} has an empty word")
    return pattern


def topic_matches(pattern: str, topic: str) -> bool:
    """Whether ``topic`` is routed to a queue bound with ``pattern`` (AMQP topic-exchange semantics)."""
    return _match(tuple(pattern.split(".")), tuple(topic.split(".")))


def _match(pattern: tuple[str, ...], words: tuple[str, ...]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        # '#' swallows zero words, or one word and stays in place.
        return _match(rest, words) or (bool(words) and _match(pattern, words[1:]))
    if not words:
        return False
    return (head == "*" or head == words[0]) and _match(rest, words[1:])
