"""The policy engine: may this caller do this action, set these attributes, read these fields?

Built once at start-up from the defaults (:mod:`neutrino.policy.defaults`) plus an optional operator
override file (oslo.policy's YAML or JSON format: ``"rule name": "rule string"``; an entry
replaces the default of the same name or adds a rule). Every rule is parsed, every ``rule:name``
reference resolved and cycles rejected at construction, so a broken policy file stops the server
at start-up with a message naming the rule, not at the first request.

How callers use it (the API layer does; services need not):

- ``enforce(ctx, "delete_network", network)`` for plain actions; it raises
  :class:`neutrino.errors.PolicyNotAuthorized`. Deciding 403 versus 404 (may the caller read the
  object?) is the caller's business: ``check(ctx, "get_network", network)``.
- ``enforce_attributes(ctx, "create_port", target, request, defaults)`` for create/update bodies:
  the action itself, then ``<action>:<attr>`` for each attribute the request really sets, then
  ``<action>:<attr>:<key>`` for keys inside dict / list-of-dict attributes. Failure reports the
  top-level action, as Neutron does ("create_network is disallowed by policy").
- ``readable_attributes(ctx, "port", port, candidates)`` (or, for lists,
  ``for_context(ctx).attribute_filter("port", candidates)`` once, then ``.readable(obj)`` per
  object) to drop fields such as ``binding:host_id`` from responses.

Targets are plain mappings of the object's attributes plus the derived keys rules read:
``network:project_id`` and ``network:shared`` (ports, subnets), ``ext_parent:project_id``
(sub-resources: a port forwarding's floating IP, a QoS rule's policy), ``security_group:project_id``
(security group rules), and per-caller ``shared`` / ``router:external`` flags. For a create the
target is the request body with ``project_id`` filled in; for an update it is the stored object
(the request's values are laid over it by ``enforce_attributes``).

Speed: rules are specialised per caller (:func:`neutrino.policy.rules.bind`) and cached, so a rule
that only depends on the caller's roles (``get_port:binding:host_id`` is admin/service only) is
decided once per caller, not once per object, and a list of 10k ports costs one small predicate
call per object and per target-dependent rule.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from neutrino.errors import PolicyNotAuthorized
from neutrino.policy.defaults import DEFAULT_RULES
from neutrino.policy.rules import (
    NEVER,
    BoundRule,
    CallerLike,
    Credentials,
    Expr,
    PolicyRuleError,
    PolicySyntaxError,
    UnknownRuleError,
    bind_residual,
    parse,
    referenced_rules,
    specialize,
)

FALLBACK_RULE = "default"
"""Rule used for an action that has no rule of its own (oslo.policy's ``policy_default_rule``)."""


class PolicyFileError(PolicyRuleError):
    """The override file cannot be read or is not a mapping of rule names to rule strings."""


# ---- override files ----------------------------------------------------------------------------


def load_override_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read an oslo.policy override file (``.json`` as JSON, anything else as YAML).

    An empty file means "no overrides". Raises :class:`PolicyFileError` with the file name.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyFileError(f"cannot read policy file {file}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text) if file.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise PolicyFileError(f"policy file {file} is not valid {_format_name(file)}: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PolicyFileError(f"policy file {file} must map rule names to rule strings, "
                              f"not hold a {type(data).__name__}")
    overrides: dict[str, str] = {}
    for name, rule in data.items():
        if not isinstance(name, str) or not name:
            raise PolicyFileError(f"policy file {file}: rule name {name!r} is not a non-empty string")
        if not isinstance(rule, str):
            raise PolicyFileError(f"policy file {file}: rule {name!r} must be a string, "
                                  f"not {type(rule).__name__} ({rule!r})")
        overrides[name] = rule
    return overrides


def _format_name(file: Path) -> str:
    return "JSON" if file.suffix.lower() == ".json" else "YAML"


# ---- rule set compilation ----------------------------------------------------------------------


def compile_rules(texts: Mapping[str, str]) -> dict[str, Expr]:
    """Parse every rule and check that references resolve and do not loop.

    Errors name the offending rule, e.g. ``rule 'create_port' refers to unknown rule:net_ownr``.
    """
    parsed: dict[str, Expr] = {}
    for name, text in texts.items():
        try:
            parsed[name] = parse(text)
        except PolicySyntaxError as exc:
            raise PolicySyntaxError(f"rule {name!r}: {exc}") from None
    for name, expr in parsed.items():
        missing = sorted(referenced_rules(expr) - parsed.keys())
        if missing:
            listed = ", ".join(f"rule:{m}" for m in missing)
            raise UnknownRuleError(f"rule {name!r} refers to unknown {listed}")
    _reject_cycles(parsed)
    return parsed


def _reject_cycles(parsed: Mapping[str, Expr]) -> None:
    finished: set[str] = set()
    for start in parsed:
        if start in finished:
            continue
        path: list[str] = []
        on_path: set[str] = set()
        # Iterative depth-first walk; each frame is (rule name, its not-yet-visited references).
        stack: list[tuple[str, list[str]]] = [(start, sorted(referenced_rules(parsed[start])))]
        path.append(start)
        on_path.add(start)
        while stack:
            name, pending = stack[-1]
            if not pending:
                stack.pop()
                path.pop()
                on_path.discard(name)
                finished.add(name)
                continue
            nxt = pending.pop()
            if nxt in on_path:
                cycle = " -> ".join([*path[path.index(nxt):], nxt])
                raise PolicyRuleError(f"rule reference cycle: {cycle}")
            if nxt in finished:
                continue
            stack.append((nxt, sorted(referenced_rules(parsed[nxt]))))
            path.append(nxt)
            on_path.add(nxt)


# ---- which attribute rules a request triggers --------------------------------------------------


def attribute_rule_names(action: str, request: Mapping[str, Any], defaults: Mapping[str, Any],
                         known: Iterable[str] | Mapping[str, Any]) -> tuple[str, ...]:
    """The ``<action>:<attr>`` and ``<action>:<attr>:<key>`` rules a request body triggers.

    Neutron's semantics: an attribute counts when it is in the request and its value differs from
    its default (``defaults``; pass an empty mapping for updates, where every key sent counts).
    For an attribute that counts, a rule for each key present in its dict value, or in any dict
    of its list value, applies too — whatever that key's value (``enable_snat: true`` included).
    Only rules that exist in ``known`` are returned.
    """
    names = known if isinstance(known, Mapping) else frozenset(known)
    found: list[str] = []
    for attr, value in request.items():
        if attr in defaults and _same_value(value, defaults[attr]):
            continue
        attr_rule = f"{action}:{attr}"
        if attr_rule in names:
            found.append(attr_rule)
        for key in _sub_keys(value):
            sub_rule = f"{attr_rule}:{key}"
            if sub_rule in names:
                found.append(sub_rule)
    return tuple(found)


def _same_value(value: Any, default: Any) -> bool:
    """Equal to the default? Booleans only equal booleans (Python says ``1 == True``)."""
    if isinstance(value, bool) or isinstance(default, bool):
        return isinstance(value, bool) and isinstance(default, bool) and value is default
    return bool(value == default)


def _sub_keys(value: Any) -> list[str]:
    if isinstance(value, Mapping):
        return [str(key) for key in value]
    if isinstance(value, list | tuple):
        keys: dict[str, None] = {}
        for item in value:
            if isinstance(item, Mapping):
                keys.update(dict.fromkeys(str(key) for key in item))
        return list(keys)
    return []


class _Overlay(Mapping[str, Any]):
    """The request's values over the stored target, without copying either."""

    __slots__ = ("_top", "_bottom")

    def __init__(self, top: Mapping[str, Any], bottom: Mapping[str, Any]) -> None:
        self._top = top
        self._bottom = bottom

    def __getitem__(self, key: str) -> Any:
        if key in self._top:
            return self._top[key]
        return self._bottom[key]

    def __iter__(self) -> Iterator[str]:
        yield from self._top
        for key in self._bottom:
            if key not in self._top:
                yield key

    def __len__(self) -> int:
        return len(self._top.keys() | self._bottom.keys())


# ---- per-caller view ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttributeFilter:
    """Which of a resource's attributes one caller may read, prepared once for many objects.

    Attributes without a ``get_<resource>:<attr>`` rule are always readable; rules the caller's
    roles decide are folded into ``always``/``never``; only the rest is evaluated per object.
    """

    always: frozenset[str]
    never: frozenset[str]
    per_object: tuple[tuple[str, BoundRule], ...]

    def readable(self, obj: Mapping[str, Any]) -> set[str]:
        """The candidate attributes this caller may see on ``obj``."""
        visible = set(self.always)
        for attr, rule in self.per_object:
            if rule(obj):
                visible.add(attr)
        return visible

    def hidden(self, obj: Mapping[str, Any]) -> set[str]:
        """The candidate attributes to remove from ``obj`` before it is shown to this caller."""
        hidden = set(self.never)
        for attr, rule in self.per_object:
            if not rule(obj):
                hidden.add(attr)
        return hidden


class CallerPolicy:
    """The policy as seen by one caller: rules specialised to its credentials, cached.

    Cheap to keep for a request (or longer: it holds no request state, only credentials).
    """

    def __init__(self, engine: PolicyEngine, credentials: Credentials) -> None:
        self.engine = engine
        self.credentials = credentials
        self._residuals: dict[str, Expr] = {}
        self._bound: dict[str, BoundRule] = {}
        self._filters: dict[tuple[str, frozenset[str]], AttributeFilter] = {}

    # -- rules --

    def _residual(self, name: str) -> Expr:
        residual = self._residuals.get(name)
        if residual is None:
            # References were checked for existence and cycles when the engine was built.
            residual = specialize(self.engine.rules[name], self.credentials, self._residual)
            self._residuals[name] = residual
        return residual

    def rule(self, name: str) -> BoundRule:
        """A rule bound to this caller; an unknown name falls back to the ``default`` rule
        (as in oslo.policy), or denies when there is none."""
        bound = self._bound.get(name)
        if bound is None:
            if name in self.engine.rules:
                residual = self._residual(name)
            elif FALLBACK_RULE in self.engine.rules:
                residual = self._residual(FALLBACK_RULE)
            else:
                residual = NEVER
            bound = bind_residual(residual, self.credentials)
            self._bound[name] = bound
        return bound

    # -- decisions --

    def check(self, action: str, target: Mapping[str, Any]) -> bool:
        return self.rule(action)(target)

    def enforce(self, action: str, target: Mapping[str, Any]) -> None:
        if not self.rule(action)(target):
            raise PolicyNotAuthorized(action=action)

    def enforce_attributes(self, action: str, target: Mapping[str, Any], request: Mapping[str, Any],
                           defaults: Mapping[str, Any] | None = None) -> None:
        """Enforce ``action`` and the attribute rules the request triggers (see
        :func:`attribute_rule_names`); rules see ``request`` laid over ``target``."""
        seen = _Overlay(request, target) if target is not request else request
        if not self.rule(action)(seen):
            raise PolicyNotAuthorized(action=action)
        for name in attribute_rule_names(action, request, defaults or {}, self.engine.rules):
            if not self.rule(name)(seen):
                raise PolicyNotAuthorized(action=action)

    def allowed_by_roles(self, action: str, request: Mapping[str, Any] | None = None,
                         defaults: Mapping[str, Any] | None = None) -> bool:
        """Whether ``action`` and the attribute rules ``request`` triggers all fold to "allowed"
        for these credentials alone (admins, mostly): then no target is ever looked at."""
        if self.rule(action).constant is not True:
            return False
        names = attribute_rule_names(action, request or {}, defaults or {}, self.engine.rules)
        return all(self.rule(name).constant is True for name in names)

    def attribute_filter(self, resource: str, candidates: Iterable[str]) -> AttributeFilter:
        """Prepare read filtering of ``candidates`` for objects of ``resource`` (e.g. ``port``)."""
        names = frozenset(candidates)
        key = (resource, names)
        prepared = self._filters.get(key)
        if prepared is None:
            always: set[str] = set()
            never: set[str] = set()
            per_object: list[tuple[str, BoundRule]] = []
            for attr in sorted(names):
                rule_name = f"get_{resource}:{attr}"
                if rule_name not in self.engine.rules:
                    always.add(attr)
                    continue
                bound = self.rule(rule_name)
                if bound.constant is True:
                    always.add(attr)
                elif bound.constant is False:
                    never.add(attr)
                else:
                    per_object.append((attr, bound))
            prepared = AttributeFilter(frozenset(always), frozenset(never), tuple(per_object))
            self._filters[key] = prepared
        return prepared

    def readable_attributes(self, resource: str, obj: Mapping[str, Any],
                            candidates: Iterable[str]) -> set[str]:
        return self.attribute_filter(resource, candidates).readable(obj)


# ---- the engine --------------------------------------------------------------------------------


class PolicyEngine:
    """An immutable rule set plus a bounded cache of per-caller views.

    ``PolicyEngine()`` uses Neutron's defaults; ``overrides`` replace or add rules.
    Construction raises :class:`PolicyRuleError` (syntax, unknown reference, cycle).
    """

    def __init__(self, rules: Mapping[str, str] = DEFAULT_RULES,
                 overrides: Mapping[str, str] | None = None, *, caller_cache_size: int = 1024) -> None:
        texts = dict(rules)
        texts.update(overrides or {})
        self.rule_texts: Mapping[str, str] = texts
        self.rules: Mapping[str, Expr] = compile_rules(texts)
        self._callers: OrderedDict[Credentials, CallerPolicy] = OrderedDict()
        self._caller_cache_size = caller_cache_size

    @classmethod
    def from_override_file(cls, path: str | os.PathLike[str] | None,
                           rules: Mapping[str, str] = DEFAULT_RULES) -> PolicyEngine:
        """The defaults with an operator's override file applied (``None``: defaults only)."""
        overrides = load_override_file(path) if path is not None else {}
        try:
            return cls(rules, overrides)
        except PolicyRuleError as exc:
            if path is None:
                raise
            raise type(exc)(f"policy file {Path(path)}: {exc}") from None

    def has_rule(self, name: str) -> bool:
        return name in self.rules

    def for_context(self, caller: CallerLike) -> CallerPolicy:
        """The per-caller view; callers with the same credentials share one (LRU-bounded)."""
        credentials = Credentials.of(caller)
        view = self._callers.get(credentials)
        if view is None:
            view = CallerPolicy(self, credentials)
            self._callers[credentials] = view
            if len(self._callers) > self._caller_cache_size:
                self._callers.popitem(last=False)
        else:
            self._callers.move_to_end(credentials)
        return view

    def check(self, ctx: CallerLike, action: str, target: Mapping[str, Any]) -> bool:
        return self.for_context(ctx).check(action, target)

    def enforce(self, ctx: CallerLike, action: str, target: Mapping[str, Any]) -> None:
        """Raise :class:`~neutrino.errors.PolicyNotAuthorized` ("<action> is disallowed by policy")."""
        self.for_context(ctx).enforce(action, target)

    def enforce_attributes(self, ctx: CallerLike, action: str, target: Mapping[str, Any],
                           request: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> None:
        """Enforce ``action`` plus the attribute rules ``request`` triggers.

        ``request``: the body's attributes as the client sent them (after conversion).
        ``defaults``: attribute defaults on create (a value equal to its default triggers no
        rule); leave empty on update. Failure raises PolicyNotAuthorized for ``action`` itself.
        """
        self.for_context(ctx).enforce_attributes(action, target, request, defaults)

    def allowed_by_roles(self, ctx: CallerLike, action: str, request: Mapping[str, Any] | None = None,
                         defaults: Mapping[str, Any] | None = None) -> bool:
        """See :meth:`CallerPolicy.allowed_by_roles`."""
        return self.for_context(ctx).allowed_by_roles(action, request, defaults)

    def readable_attributes(self, ctx: CallerLike, resource: str, obj: Mapping[str, Any],
                            candidates: Iterable[str]) -> set[str]:
        """Which of ``candidates`` the caller may see on ``obj`` (``get_<resource>:<attr>`` rules)."""
        return self.for_context(ctx).readable_attributes(resource, obj, candidates)

    def attribute_filter(self, ctx: CallerLike, resource: str, candidates: Iterable[str]) -> AttributeFilter:
        """Prepared read filter for many objects of one resource (list responses)."""
        return self.for_context(ctx).attribute_filter(resource, candidates)
