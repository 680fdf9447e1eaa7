"""Policy rule expressions: oslo.policy's rule syntax parsed into an immutable tree, and its evaluation.

Why a parser of our own: operators bring policy files written for Neutron, so the syntax they use
(``rule:x``, ``role:x``, ``project_id:%(project_id)s``, ``field:networks:shared=True``, ``and`` /
``or`` / ``not``, parentheses, ``@`` and ``!``) must mean here what it means there. The tree is plain
frozen data so rule sets can be compared, printed back (:func:`render`) and shared freely.

Evaluation happens in two steps so that listing many objects is cheap:

1. :func:`bind` specialises a rule for one caller: everything the caller's credentials alone decide
   (roles, ``is_admin``, referenced rules such as ``admin_only``) is folded to a constant, leaving
   a residual that only looks at the target. A rule that does not depend on the target at all
   becomes a constant and is never evaluated per object.
2. The resulting :class:`BoundRule` is called once per target.

:func:`check` does both for a one-off decision. Both paths share the same leaf semantics.

Target lookups (``%(network:project_id)s``) are plain key lookups in the target mapping: the
caller puts the keys a rule needs (``network:project_id``, ``ext_parent:project_id``,
``security_group:project_id``) into the target; nothing here fetches other objects. ``tenant_id``
and ``project_id`` are interchangeable in key names, as they are in Neutron.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

# ---- errors ------------------------------------------------------------------------------------


class PolicyRuleError(ValueError):
    """A rule set is unusable (bad syntax, unknown rule reference, reference cycle, bad file).

    These are operator configuration errors raised when rules are loaded, never shown to API
    clients, so they live here rather than in :mod:`neutrino.errors`.
    """


class PolicySyntaxError(PolicyRuleError):
    """A rule string does not follow oslo.policy syntax."""


class UnknownRuleError(PolicyRuleError):
    """A ``rule:name`` reference names no rule in the rule set."""


# ---- credentials -------------------------------------------------------------------------------


class CallerLike(Protocol):
    """What a rule needs to know about the caller; :class:`neutrino.context.RequestContext` fits."""

    @property
    def user_id(self) -> str: ...

    @property
    def project_id(self) -> str: ...

    @property
    def roles(self) -> frozenset[str]: ...


@dataclass(frozen=True, slots=True)
class Credentials:
    """The caller as policy sees it. Hashable, so per-caller work can be cached by it.

    Role names are compared case-insensitively (as oslo.policy does), hence stored lower-cased.
    Tokens already carry implied roles (admin ⇒ manager ⇒ member ⇒ reader), so no expansion here.
    """

    user_id: str
    project_id: str
    roles: frozenset[str] = frozenset()
    user_name: str = ""
    project_name: str = ""

    def __post_init__(self) -> None:
        lowered = frozenset(role.lower() for role in self.roles)
        if lowered != self.roles:
            object.__setattr__(self, "roles", lowered)

    @classmethod
    def of(cls, caller: CallerLike) -> Credentials:
        """Credentials of a request context (or any object with user_id, project_id, roles)."""
        if isinstance(caller, Credentials):
            return caller
        return cls(
            user_id=caller.user_id or "",
            project_id=caller.project_id or "",
            roles=frozenset(caller.roles),
            user_name=getattr(caller, "user_name", "") or "",
            project_name=getattr(caller, "project_name", "") or "",
        )

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def value_of(self, kind: str) -> Any:
        """The credential a generic ``kind:match`` check compares against; None when unknown."""
        if kind in ("project_id", "tenant_id", "project", "tenant"):
            return self.project_id
        if kind in ("user_id", "user"):
            return self.user_id
        if kind == "roles":
            return self.roles
        if kind == "is_admin":
            return self.is_admin
        if kind in ("user_name", "project_name"):
            return getattr(self, kind)
        return None


# ---- the expression tree -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TargetKey:
    """``%(key)s`` inside a match: the value comes from the target."""

    key: str


@dataclass(frozen=True, slots=True)
class Template:
    """A check's right-hand side: literal text and target lookups, e.g. ``%(network:project_id)s``."""

    parts: tuple[str | TargetKey, ...]

    @property
    def is_constant(self) -> bool:
        return all(isinstance(part, str) for part in self.parts)

    @property
    def text(self) -> str:
        return "".join(p if isinstance(p, str) else f"%({p.key})s" for p in self.parts)

    def render(self, target: Mapping[str, Any]) -> str | None:
        """The match with target values filled in; None when a key is missing from the target."""
        if len(self.parts) == 1:
            part = self.parts[0]
            if isinstance(part, str):
                return part
            value = lookup(target, part.key)
            return None if value is _MISSING else str(value)
        pieces: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                pieces.append(part)
                continue
            value = lookup(target, part.key)
            if value is _MISSING:
                return None
            pieces.append(str(value))
        return "".join(pieces)


@dataclass(frozen=True, slots=True)
class Always:
    """``@`` or an empty rule: always passes."""


@dataclass(frozen=True, slots=True)
class Never:
    """``!``: never passes."""


@dataclass(frozen=True, slots=True)
class RuleRef:
    """``rule:name``: the named rule of the rule set."""

    name: str


@dataclass(frozen=True, slots=True)
class RoleCheck:
    """``role:name``: the caller holds the role (case-insensitive)."""

    role: Template


@dataclass(frozen=True, slots=True)
class FieldCheck:
    """``field:<resource>:<field>=<value>``: a target attribute has a value (``=~regex`` matches).

    ``field:networks:<f>`` also reads ``network:<f>`` from the target, so a port or subnet target
    can carry its network's ``shared`` flag without pretending to have one itself.
    """

    resource: str
    field: str
    value: str
    regex: bool = False


@dataclass(frozen=True, slots=True)
class CredentialCheck:
    """``kind:match``: a caller credential equals the match, e.g. ``project_id:%(project_id)s``,
    ``tenant_id:%(network:tenant_id)s``, ``is_admin:True``, ``user_id:%(user_id)s``."""

    kind: str
    match: Template


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Expr, ...]


Expr = Always | Never | RuleRef | RoleCheck | FieldCheck | CredentialCheck | Not | And | Or

ALWAYS = Always()
NEVER = Never()

# ---- target lookups ----------------------------------------------------------------------------

_MISSING: Any = object()


def lookup(target: Mapping[str, Any], key: str) -> Any:
    """``target[key]``, treating ``tenant_id`` and ``project_id`` as the same name (Neutron does)."""
    value = target.get(key, _MISSING)
    if value is not _MISSING:
        return value
    if key.endswith("tenant_id"):
        return target.get(key[: -len("tenant_id")] + "project_id", _MISSING)
    if key.endswith("project_id"):
        return target.get(key[: -len("project_id")] + "tenant_id", _MISSING)
    return _MISSING


# ---- parsing -----------------------------------------------------------------------------------

_KEYWORDS = frozenset({"and", "or", "not"})
_TEMPLATE_KEY = re.compile(r"%\(([^)]*)\)s")
_UNSUPPORTED_KINDS = frozenset({"http", "https"})


def parse(text: str) -> Expr:
    """Parse one oslo.policy rule string. An empty string means "always" (as in oslo.policy).

    Precedence, loosest first: ``or``, ``and``, ``not``; parentheses group.
    Raises :class:`PolicySyntaxError` naming what is wrong.
    """
    if not isinstance(text, str):
        raise PolicySyntaxError(f"a rule must be a string, not {type(text).__name__}")
    tokens = _tokenize(text)
    if not tokens:
        return ALWAYS
    parser = _Parser(text, tokens)
    expr = parser.parse_or()
    if parser.position != len(tokens):
        raise PolicySyntaxError(f"unexpected {tokens[parser.position]!r} in rule {text!r}")
    return expr


def _tokenize(text: str) -> list[str]:
    """Split on whitespace, then peel parentheses off the ends of each word (oslo's lexing)."""
    tokens: list[str] = []
    for word in text.split():
        leading = len(word) - len(word.lstrip("("))
        tokens.extend("(" * leading)
        word = word[leading:]
        if not word:
            continue
        stripped = word.rstrip(")")
        trailing = len(word) - len(stripped)
        if stripped:
            tokens.append(stripped.lower() if stripped.lower() in _KEYWORDS else stripped)
        tokens.extend(")" * trailing)
    return tokens


class _Parser:
    """Recursive descent over the token list: or_expr := and_expr ('or' and_expr)* and so on."""

    def __init__(self, text: str, tokens: list[str]) -> None:
        self.text = text
        self.tokens = tokens
        self.position = 0

    def _peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self) -> str:
        token = self._peek()
        if token is None:
            raise PolicySyntaxError(f"rule {self.text!r} ends where a check was expected")
        self.position += 1
        return token

    def parse_or(self) -> Expr:
        operands = [self.parse_and()]
        while self._peek() == "or":
            self.position += 1
            operands.append(self.parse_and())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def parse_and(self) -> Expr:
        operands = [self.parse_not()]
        while self._peek() == "and":
            self.position += 1
            operands.append(self.parse_not())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def parse_not(self) -> Expr:
        if self._peek() == "not":
            self.position += 1
            return Not(self.parse_not())
        return self.parse_atom()

    def parse_atom(self) -> Expr:
        token = self._take()
        if token == "(":
            if self._peek() == ")":
                raise PolicySyntaxError(f"empty parentheses in rule {self.text!r}")
            inner = self.parse_or()
            if self._take() != ")":
                raise PolicySyntaxError(f"missing ')' in rule {self.text!r}")
            return inner
        if token == ")" or token in _KEYWORDS:
            raise PolicySyntaxError(f"unexpected {token!r} in rule {self.text!r}")
        return parse_check(token)


def parse_check(token: str) -> Expr:
    """One check token: ``@``, ``!``, ``rule:x``, ``role:x``, ``field:r:f=v``, or ``kind:match``."""
    if token == "@":
        return ALWAYS
    if token == "!":
        return NEVER
    kind, sep, match = token.partition(":")
    if not sep or not kind or not match:
        raise PolicySyntaxError(f"{token!r} is not a check (expected kind:match, '@' or '!')")
    if kind == "rule":
        return RuleRef(match)
    if kind == "role":
        return RoleCheck(_parse_template(match))
    if kind == "field":
        return _parse_field(token, match)
    if kind in _UNSUPPORTED_KINDS:
        raise PolicySyntaxError(f"{kind!r} checks are not supported ({token!r})")
    return CredentialCheck(kind, _parse_template(match))


def _parse_field(token: str, match: str) -> FieldCheck:
    resource, sep, assignment = match.partition(":")
    field, eq, value = assignment.partition("=")
    if not (resource and sep and field and eq):
        raise PolicySyntaxError(f"{token!r}: expected field:<resource>:<field>=<value>")
    if value.startswith("~"):
        try:
            re.compile(value[1:])
        except re.error as exc:
            raise PolicySyntaxError(f"{token!r}: bad regular expression: {exc}") from None
        return FieldCheck(resource, field, value[1:], regex=True)
    return FieldCheck(resource, field, value)


def _parse_template(match: str) -> Template:
    parts: list[str | TargetKey] = []
    position = 0
    for found in _TEMPLATE_KEY.finditer(match):
        if found.start() > position:
            parts.append(match[position : found.start()])
        if not found.group(1):
            raise PolicySyntaxError(f"empty target key in {match!r}")
        parts.append(TargetKey(found.group(1)))
        position = found.end()
    if position < len(match):
        parts.append(match[position:])
    if "%(" in "".join(p for p in parts if isinstance(p, str)):
        raise PolicySyntaxError(f"malformed target lookup in {match!r} (expected %(key)s)")
    return Template(tuple(parts))


# ---- inspection --------------------------------------------------------------------------------


def render(expr: Expr) -> str:
    """The expression in oslo.policy syntax (fully parenthesised where it matters)."""
    if isinstance(expr, Always):
        return "@"
    if isinstance(expr, Never):
        return "!"
    if isinstance(expr, RuleRef):
        return f"rule:{expr.name}"
    if isinstance(expr, RoleCheck):
        return f"role:{expr.role.text}"
    if isinstance(expr, FieldCheck):
        return f"field:{expr.resource}:{expr.field}={'~' if expr.regex else ''}{expr.value}"
    if isinstance(expr, CredentialCheck):
        return f"{expr.kind}:{expr.match.text}"
    if isinstance(expr, Not):
        return f"not {_render_operand(expr.operand)}"
    joiner = " and " if isinstance(expr, And) else " or "
    return joiner.join(_render_operand(op) for op in expr.operands)


def _render_operand(expr: Expr) -> str:
    text = render(expr)
    return f"({text})" if isinstance(expr, And | Or) else text


def referenced_rules(expr: Expr) -> frozenset[str]:
    """Names of the rules an expression refers to with ``rule:name`` (not transitively)."""
    if isinstance(expr, RuleRef):
        return frozenset({expr.name})
    if isinstance(expr, Not):
        return referenced_rules(expr.operand)
    if isinstance(expr, And | Or):
        names: frozenset[str] = frozenset()
        for operand in expr.operands:
            names |= referenced_rules(operand)
        return names
    return frozenset()


# ---- leaf semantics (shared by every evaluation path) ------------------------------------------

_TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
_FALSE_WORDS = frozenset({"false", "0", "no", "off"})


def _as_bool(text: str) -> bool | None:
    lowered = text.lower()
    if lowered in _TRUE_WORDS:
        return True
    if lowered in _FALSE_WORDS:
        return False
    return None


def _credential_equals(credential: Any, match: str) -> bool:
    """Compare a caller credential with a rendered match the way oslo.policy's generic check does:
    membership for collections, string equality otherwise (booleans by meaning, not spelling)."""
    if isinstance(credential, frozenset | set | list | tuple):
        return match in {str(item) for item in credential}
    if isinstance(credential, bool):
        return _as_bool(match) is credential
    return str(credential) == match


def _field_value(check: FieldCheck, target: Mapping[str, Any]) -> Any:
    value = lookup(target, check.field)
    if value is _MISSING and check.resource == "networks":
        value = lookup(target, "network:" + check.field)
    return value


def _field_equals(value: Any, expected: str) -> bool:
    """``field:`` values are written as text; compare them with the target's typed value."""
    if isinstance(value, bool):
        return _as_bool(expected) is value
    if isinstance(value, int):
        try:
            return value == int(expected)
        except ValueError:
            return False
    return str(value) == expected


def _field_predicate(check: FieldCheck) -> Callable[[Mapping[str, Any]], bool]:
    if check.regex:
        pattern = re.compile(check.value)

        def matches(target: Mapping[str, Any]) -> bool:
            value = _field_value(check, target)
            return isinstance(value, str) and pattern.match(value) is not None

        return matches

    expected = check.value

    def equals(target: Mapping[str, Any]) -> bool:
        value = _field_value(check, target)
        if value is _MISSING or value is None:
            return False
        return _field_equals(value, expected)

    return equals


def _credential_predicate(check: CredentialCheck, creds: Credentials) -> Callable[[Mapping[str, Any]], bool]:
    """A target-dependent credential check bound to one caller.

    An empty or unknown credential never matches a target value: an internal context without a
    project must not "own" objects whose project is empty (router gateway and floating IP ports).
    """
    credential = creds.value_of(check.kind)
    if credential is None or credential == "":
        return _never
    match = check.match
    if len(match.parts) == 1 and isinstance(match.parts[0], TargetKey) and isinstance(credential, str):
        key = match.parts[0].key

        def owner_matches(target: Mapping[str, Any]) -> bool:
            value = lookup(target, key)
            return value is not _MISSING and str(value) == credential

        return owner_matches

    def matches(target: Mapping[str, Any]) -> bool:
        rendered = match.render(target)
        return rendered is not None and _credential_equals(credential, rendered)

    return matches


def _role_predicate(check: RoleCheck, creds: Credentials) -> Callable[[Mapping[str, Any]], bool]:
    roles = creds.roles

    def has_role(target: Mapping[str, Any]) -> bool:
        rendered = check.role.render(target)
        return rendered is not None and rendered.lower() in roles

    return has_role


def _always(target: Mapping[str, Any]) -> bool:
    return True


def _never(target: Mapping[str, Any]) -> bool:
    return False


# ---- specialisation for one caller -------------------------------------------------------------


def specialize(expr: Expr, creds: Credentials, resolve: Callable[[str], Expr]) -> Expr:
    """Fold what the caller alone decides; what remains depends only on the target.

    ``resolve(name)`` returns the (already specialised) expression of a referenced rule, so the
    result contains no :class:`RuleRef`. The result is :data:`ALWAYS` or :data:`NEVER` when the
    target cannot change the answer.
    """
    if isinstance(expr, Always | Never | FieldCheck):
        return expr
    if isinstance(expr, RuleRef):
        return resolve(expr.name)
    if isinstance(expr, RoleCheck):
        if expr.role.is_constant:
            return ALWAYS if expr.role.text.lower() in creds.roles else NEVER
        return expr
    if isinstance(expr, CredentialCheck):
        if expr.match.is_constant:
            credential = creds.value_of(expr.kind)
            if credential is None:
                return NEVER
            return ALWAYS if _credential_equals(credential, expr.match.text) else NEVER
        credential = creds.value_of(expr.kind)
        if credential is None or credential == "":
            return NEVER
        return expr
    if isinstance(expr, Not):
        inner = specialize(expr.operand, creds, resolve)
        if isinstance(inner, Always):
            return NEVER
        if isinstance(inner, Never):
            return ALWAYS
        return Not(inner)
    if isinstance(expr, And):
        kept: list[Expr] = []
        for operand in expr.operands:
            folded = specialize(operand, creds, resolve)
            if isinstance(folded, Never):
                return NEVER
            if not isinstance(folded, Always):
                kept.append(folded)
        if not kept:
            return ALWAYS
        return kept[0] if len(kept) == 1 else And(tuple(kept))
    if isinstance(expr, Or):
        kept = []
        for operand in expr.operands:
            folded = specialize(operand, creds, resolve)
            if isinstance(folded, Always):
                return ALWAYS
            if not isinstance(folded, Never):
                kept.append(folded)
        if not kept:
            return NEVER
        return kept[0] if len(kept) == 1 else Or(tuple(kept))
    raise TypeError(f"not a policy expression: {expr!r}")


def compile_predicate(expr: Expr, creds: Credentials) -> Callable[[Mapping[str, Any]], bool]:
    """Turn a specialised expression into a plain function of the target."""
    if isinstance(expr, Always):
        return _always
    if isinstance(expr, Never):
        return _never
    if isinstance(expr, FieldCheck):
        return _field_predicate(expr)
    if isinstance(expr, CredentialCheck):
        return _credential_predicate(expr, creds)
    if isinstance(expr, RoleCheck):
        return _role_predicate(expr, creds)
    if isinstance(expr, Not):
        inner = compile_predicate(expr.operand, creds)
        return lambda target: not inner(target)
    if isinstance(expr, And):
        parts = tuple(compile_predicate(op, creds) for op in expr.operands)

        def all_pass(target: Mapping[str, Any]) -> bool:
            for part in parts:
                if not part(target):
                    return False
            return True

        return all_pass
    if isinstance(expr, Or):
        parts = tuple(compile_predicate(op, creds) for op in expr.operands)

        def any_passes(target: Mapping[str, Any]) -> bool:
            for part in parts:
                if part(target):
                    return True
            return False

        return any_passes
    if isinstance(expr, RuleRef):
        raise UnknownRuleError(f"rule:{expr.name} was not resolved before compiling")
    raise TypeError(f"not a policy expression: {expr!r}")


@dataclass(frozen=True, slots=True)
class BoundRule:
    """A rule specialised for one caller.

    ``constant`` is True/False when the caller alone decides the answer (then the target is never
    looked at), None when the answer depends on the target. ``residual`` is what is left to check.
    """

    residual: Expr
    predicate: Callable[[Mapping[str, Any]], bool]

    @property
    def constant(self) -> bool | None:
        if isinstance(self.residual, Always):
            return True
        if isinstance(self.residual, Never):
            return False
        return None

    def __call__(self, target: Mapping[str, Any]) -> bool:
        return self.predicate(target)


def bind_residual(residual: Expr, creds: Credentials) -> BoundRule:
    """Wrap an already specialised expression."""
    return BoundRule(residual, compile_predicate(residual, creds))


def bind(expr: Expr, creds: CallerLike, rules: Mapping[str, Expr] | None = None) -> BoundRule:
    """Specialise ``expr`` for a caller, resolving ``rule:`` references in ``rules``.

    Raises :class:`UnknownRuleError` for a reference to a rule not in ``rules`` and
    :class:`PolicyRuleError` for a reference cycle.
    """
    credentials = Credentials.of(creds)
    known = rules or {}
    done: dict[str, Expr] = {}
    in_progress: list[str] = []

    def resolve(name: str) -> Expr:
        if name in done:
            return done[name]
        if name in in_progress:
            cycle = " -> ".join([*in_progress[in_progress.index(name) :], name])
            raise PolicyRuleError(f"rule reference cycle: {cycle}")
        if name not in known:
            raise UnknownRuleError(f"rule:{name} is not defined")
        in_progress.append(name)
        try:
            done[name] = specialize(known[name], credentials, resolve)
        finally:
            in_progress.pop()
        return done[name]

    return bind_residual(specialize(expr, credentials, resolve), credentials)


def check(expr: Expr, target: Mapping[str, Any], creds: CallerLike,
          rules: Mapping[str, Expr] | None = None) -> bool:
    """Does ``expr`` allow this caller to act on ``target``? ``rules`` resolves ``rule:name``."""
    return bind(expr, creds, rules)(target)
