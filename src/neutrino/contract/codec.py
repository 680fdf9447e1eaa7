"""One codec for every contract record: frozen dataclasses <-> JSON-able dicts.

A record is a dataclass whose fields are ``str``, ``int``, ``float``, ``bool``, ``Any``, another
record, ``X | None``, ``tuple[X, ...]``, a fixed tuple such as ``tuple[str, str]`` or a
``Mapping[str, Any]``. The wire form follows the field names and types; where the wire has another
shape than the record, the field says so with :func:`wire` metadata:

* ``name``: the wire key differs from the field name (``FloatingIp.floatingip_id`` is ``"id"``);
* ``row``: a ``tuple[tuple[...], ...]`` field whose items travel as objects with these keys
  (``(subnet_id, ip_address)`` pairs as ``{"subnet_id": ..., "ip_address": ...}``);
* ``absent``: the value a missing key decodes to (older peers leave additive keys out);
* ``rest``: a mapping field that carries every key no other field claims (sections later roles add);
* ``omit_none``: the key is left out while the value is None.

Fields with ``init=False`` (a record's constant tag such as ``role``) are written, never read.
Decoding tolerates unknown keys (a newer peer's additive fields) and converts ``int``, ``float``
and ``bool`` fields, so ``"mtu": "1450"`` reads as 1450. Missing keys take the field's default,
else its ``absent``, else None for an optional field and ``()`` for a variadic tuple; any other
missing key is a :class:`DecodeError`.

Each record class is compiled once into per-field converters; a thousand ports decode without
re-reading type hints.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

__all__ = ["DecodeError", "decode", "encode", "wire"]

T = TypeVar("T")
Convert = Callable[[Any], Any]

_NOTHING: Any = object()
_KEY = "neutrino.contract.codec"


class DecodeError(ValueError):
    """The data does not make a record of the asked type."""


def wire(
    *,
    name: str | None = None,
    row: tuple[str, ...] | None = None,
    absent: Any = _NOTHING,
    rest: bool = False,
    omit_none: bool = False,
) -> dict[str, Any]:
    """``dataclasses.field(metadata=wire(...))``: how one field differs on the wire (see the module)."""
    return {_KEY: _Wire(name, row, absent, rest, omit_none)}


@dataclasses.dataclass(frozen=True, slots=True)
class _Wire:
    name: str | None
    row: tuple[str, ...] | None
    absent: Any
    rest: bool
    omit_none: bool


_PLAIN = _Wire(None, None, _NOTHING, False, False)


@dataclasses.dataclass(frozen=True, slots=True)
class _Record:
    encode: Convert
    decode: Convert


_compiled: dict[type[Any], _Record] = {}


def encode(record: Any) -> dict[str, Any]:
    """The JSON-able dict of ``record`` (a contract dataclass)."""
    result: dict[str, Any] = _compile(type(record)).encode(record)
    return result


def decode(cls: type[T], data: Mapping[str, Any]) -> T:
    """A ``cls`` record from its wire dict; raises :class:`DecodeError` for what is not one."""
    result: T = _compile(cls).decode(data)
    return result


def _compile(cls: type[Any]) -> _Record:
    """Straight-line encode and decode functions for ``cls`` (as ``dataclasses`` makes ``__init__``)."""
    compiled = _compiled.get(cls)
    if compiled is not None:
        return compiled
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a contract record (a dataclass)")
    hints = typing.get_type_hints(cls)
    env: dict[str, Any] = {"cls": cls, "Mapping": Mapping, "DecodeError": DecodeError, "NOTHING": _NOTHING}
    enc = ["def encode(r):", "    out = {}"]
    dec = ["def decode(data):", "    if not isinstance(data, Mapping):",
           f"        raise DecodeError({cls.__name__ + ' must be an object, not '!r} + type(data).__name__)",
           "    kw = {}", "    try:"]
    rest: str | None = None
    fields = dataclasses.fields(cls)
    for index, field in enumerate(fields):
        how: _Wire = field.metadata.get(_KEY, _PLAIN)
        tp, key, attr = hints[field.name], how.name or field.name, field.name
        if how.rest:
            rest = attr
            continue
        to_wire, from_wire = f"e{index}", f"d{index}"
        env[to_wire], env[from_wire] = _encoder(tp, how.row), _decoder(tp, how.row)
        value = "v" if env[to_wire] is _identity else f"{to_wire}(v)"
        enc.append(f"    v = r.{attr}")
        if how.omit_none:
            enc.append(f"    if v is not None: out[{key!r}] = {value}")
        else:
            enc.append(f"    out[{key!r}] = {value}")
        if not field.init:
            continue
        has_default = field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING
        missing = how.absent
        if missing is _NOTHING and _optional(tp):
            missing = None
        elif missing is _NOTHING and _variadic_tuple(tp):
            missing = ()
        converted = {_identity: "v", int: "int(v)", float: "float(v)", bool: "bool(v)"}.get(
            env[from_wire], f"{from_wire}(v)")
        dec.append(f"        v = data.get({key!r}, NOTHING)")
        if has_default:
            dec.append(f"        if v is not NOTHING: kw[{attr!r}] = {converted}")
        elif missing is _NOTHING:
            dec.append("        if v is NOTHING:")
            dec.append(f"            raise DecodeError({f'{cls.__name__} needs {key!r}'!r})")
            dec.append(f"        kw[{attr!r}] = {converted}")
        else:
            env[f"m{index}"] = missing
            dec.append(f"        kw[{attr!r}] = m{index} if v is NOTHING else {converted}")
    if rest is not None:
        env["known"] = frozenset((f.metadata.get(_KEY, _PLAIN).name or f.name) for f in fields if f.name != rest)
        enc.append(f"    for k, v in r.{rest}.items(): out.setdefault(k, v)")
        dec.append(f"        kw[{rest!r}] = {{k: v for k, v in data.items() if k not in known}}")
    enc.append("    return out")
    dec += ["    except DecodeError:", "        raise",
            "    except (TypeError, ValueError, KeyError) as exc:",
            f"        raise DecodeError({cls.__name__ + ': '!r} + str(exc)) from exc",
            "    return cls(**kw)"]
    exec("\n".join(enc) + "\n" + "\n".join(dec), env)  # noqa: S102 - code made from the class's own fields
    compiled = _Record(env["encode"], env["decode"])
    _compiled[cls] = compiled
    return compiled


def _args(tp: Any) -> tuple[Any, ...]:
    return typing.get_args(tp)


def _optional(tp: Any) -> bool:
    return _is_union(tp) and type(None) in _args(tp)


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _variadic_tuple(tp: Any) -> bool:
    args = _args(tp)
    return typing.get_origin(tp) is tuple and len(args) == 2 and args[1] is Ellipsis


def _identity(value: Any) -> Any:
    return value


def _decoder(tp: Any, row: tuple[str, ...] | None = None) -> Convert:
    if tp is Any or tp is str:
        return _identity
    if tp is bool:
        return bool
    if tp is int:
        return int
    if tp is float:
        return float
    if dataclasses.is_dataclass(tp):
        return _compile(tp).decode  # type: ignore[arg-type]
    origin = typing.get_origin(tp)
    if _is_union(tp):
        others = [a for a in _args(tp) if a is not type(None)]
        if len(others) != 1:
            raise TypeError(f"only X | None unions are contract types, not {tp!r}")
        inner = _decoder(others[0])
        return lambda value: None if value is None else inner(value)
    if origin is tuple:
        args = _args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            item = _row_decoder(args[0], row) if row is not None else _decoder(args[0])
            return lambda value: tuple([item(v) for v in value])
        parts = [_decoder(a) for a in args]
        return lambda value: tuple(p(v) for p, v in zip(parts, value, strict=True))
    if origin in (Mapping, dict):
        return dict
    raise TypeError(f"{tp!r} is not a contract type")


def _row_decoder(tp: Any, row: tuple[str, ...]) -> Convert:
    parts = [_decoder(a) for a in _args(tp)]
    if typing.get_origin(tp) is not tuple or len(parts) != len(row):
        raise TypeError(f"a row of {row!r} needs a fixed tuple of as many items, not {tp!r}")
    if all(part is _identity for part in parts):
        return lambda value: tuple([value[key] for key in row])
    pairs = tuple(zip(row, parts, strict=True))
    return lambda value: tuple([convert(value[key]) for key, convert in pairs])


def _encoder(tp: Any, row: tuple[str, ...] | None = None) -> Convert:
    if tp in (Any, str, bool, int, float):
        return _identity
    if dataclasses.is_dataclass(tp):
        return _compile(tp).encode  # type: ignore[arg-type]
    origin = typing.get_origin(tp)
    if _is_union(tp):
        others = [a for a in _args(tp) if a is not type(None)]
        inner = _encoder(others[0])
        if inner is _identity:
            return _identity
        return lambda value: None if value is None else inner(value)
    if origin is tuple:
        args = _args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            if row is not None:
                keys = row
                return lambda value: [dict(zip(keys, item, strict=True)) for item in value]
            item = _encoder(args[0])
            if item is _identity:
                return list
            return lambda value: [item(v) for v in value]
        parts = [_encoder(a) for a in args]
        return lambda value: [p(v) for p, v in zip(parts, value, strict=True)]
    if origin in (Mapping, dict):
        return dict
    raise TypeError(f"{tp!r} is not a contract type")
