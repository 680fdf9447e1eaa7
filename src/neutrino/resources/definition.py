"""The shape of a declarative resource definition: the API contract as data.

One :class:`Resource` per collection, listing its attributes with their flags (the C/R/U/F/S/RO
columns of the API digest). The generic controller reads these; nothing in the HTTP layer is
written per resource.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace
from typing import Any

from neutrino.resources import types as t


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
_ANY_ID = t.String(None)


@dataclass(frozen=True, slots=True)
class Attribute:
    name: str
    type: Any = field(default_factory=t.Any_)
    default: Any = MISSING  # MISSING: not filled in on create
    allow_post: bool = False
    allow_put: bool = False
    required: bool = False
    visible: bool = True
    filterable: bool = False
    sortable: bool = False
    # Column in the resource's table for generic filters/sorts; None = the service handles it.
    column: str | None = None
    # Converter for filter values when it differs from the body converter.
    filter_type: Any = None
    # Policy checks ``<action>_<resource>:<name>`` when the request sets it to a non-default value.
    enforce_policy: bool = False
    # Type of the value as responses show it, when that differs from what requests send (Neutron
    # shows subnet pool prefix lengths as strings); None = ``type``. Documentation only.
    view_type: Any = None
    # Alias of the extension that brings this attribute ("" = the resource's own). As in Neutron,
    # the attribute exists (accepted in bodies, filterable, shown) only while that extension is
    # listed in ``/v2.0/extensions``: see :meth:`Resource.with_extensions`.
    extension: str = ""

    @property
    def is_required(self) -> bool:
        return self.allow_post and self.required

    @property
    def filter_converter(self) -> Any:
        """What converts this attribute's filter values. A UUID attribute filters by any text, as
        Neutron's (which converts no id filter): ``?id=33`` lists nothing rather than failing."""
        if self.filter_type is not None:
            return self.filter_type
        return _ANY_ID if isinstance(self.type, t.Uuid) else self.type

    def convert_filter(self, value: str) -> Any:
        return self.filter_converter.convert(value)


@dataclass(frozen=True, slots=True)
class MemberAction:
    """``<method> /v2.0/{collection}/{id}/{name}[/{sub_id}]`` dispatched to ``<service>.<handler>``.

    One name may be declared once per (method, sub_id) pair: the scheduler endpoints list with
    ``GET agents/{id}/dhcp-networks``, add with ``POST`` on the same URL and remove with
    ``DELETE agents/{id}/dhcp-networks/{network_id}``.
    """

    name: str
    method: str = "PUT"
    handler: str = ""
    policy: str = ""  # policy action; defaults to the action name
    status: int = 200
    # Body is wrapped as {resource: {...}} (True) or passed as is (False).
    wrapped_body: bool = False
    fetch_target: bool = True  # look the member up (404 if invisible) before the policy check
    # The URL names one more id after the action; the handler receives it after the member id.
    sub_id: bool = False
    # Registry key of the service that handles it when not the resource's own (the scheduling
    # services answer the scheduler actions of agents, networks and routers).
    service: str = ""
    # A None result is answered as JSON ``null`` with ``status`` instead of an empty body: Neutron's
    # scheduler POSTs answer ``null`` and clients call ``resp.json()`` on it.
    null_body: bool = False
    # A PUT/POST that must carry a body (``activate`` of a port binding takes none).
    body_required: bool = True

    @property
    def handler_name(self) -> str:
        return self.handler or self.name.replace("-", "_")


@dataclass(frozen=True, slots=True)
class Parent:
    """A sub-collection's parent, e.g. port forwardings under ``floatingips/{id}``."""

    resource: str
    collection_path: str
    id_attribute: str  # the attribute of the child holding the parent id (not sent in bodies)


@dataclass(frozen=True)
class Resource:
    name: str                 # singular body key: "network", "security_group"
    collection: str           # plural body key: "networks", "security_groups"
    path: str                 # URL segment(s): "networks", "security-groups", "qos/policies"
    attributes: tuple[Attribute, ...]
    service: str = ""         # registry key of the service object; defaults to ``name``
    standard_attrs: bool = True
    taggable: bool = False
    project_owned: bool = True
    allow_bulk: bool = True
    allow_create: bool = True
    allow_show: bool = True   # False: a list-only collection (floatingip_pools), no member URL
    allow_update: bool = True
    allow_delete: bool = True
    allow_pagination: bool = True
    parent: Parent | None = None
    member_actions: tuple[MemberAction, ...] = ()
    collection_actions: tuple[MemberAction, ...] = ()
    extension: str = ""       # alias of the extension that brings it ("" = core)
    # Policy resource name when it differs from ``name`` (e.g. "qos_policy" → "policy").
    policy_name: str = ""
    # The member id is a project id and updates/deletes check their rule against that project
    # without looking the member up first (looking an auto-allocated topology up makes it).
    member_is_project: bool = False
    # The service's ``get`` receives the requested ``fields`` (``fields=dry-run`` asks an
    # auto-allocated topology to be checked, not made).
    show_takes_fields: bool = False
    # Attributes Neutron does not fetch for an update's policy check (not ``required_by_policy``):
    # when the update is refused, whether the caller may read the object is decided without them,
    # so a project that sees another's address group only through ``shared`` gets 404, not 403
    # (deletes and member actions read the whole object, and answer 403).
    unfetched_on_write: tuple[str, ...] = ()
    # Where the tags sub-resource lives when not under ``path``: Neutron's tag extension names
    # QoS policies' tags ``/v2.0/policies/{id}/tags`` (its collection name, without ``qos/``).
    tags_path: str = ""
    description: str = ""
    # Names of attributes dropped because their extension is not listed: services may still put
    # them in the objects they return, and the API never shows them.
    unlisted_attributes: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {a.name: a for a in self.attributes})

    def with_extensions(self, listed: Collection[str]) -> Resource:
        """This resource as served when ``listed`` are the extensions in ``/v2.0/extensions``:
        without the attributes of any other extension."""
        dropped = frozenset(a.name for a in self.attributes if a.extension and a.extension not in listed)
        if not dropped:
            return self
        return replace(self, attributes=tuple(a for a in self.attributes if a.name not in dropped),
                       unlisted_attributes=self.unlisted_attributes | dropped)

    @property
    def service_key(self) -> str:
        return self.service or self.name

    @property
    def policy_resource(self) -> str:
        return self.policy_name or self.name

    def attribute(self, name: str) -> Attribute | None:
        return self._by_name.get(name)

    @property
    def attribute_names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def action(self, name: str, method: str, sub_id: bool = False) -> MemberAction | None:
        for act in self.member_actions:
            if act.name == name and act.method == method and act.sub_id == sub_id:
                return act
        return None

    def has_action(self, name: str) -> bool:
        return any(a.name == name for a in self.member_actions)


# ---- attribute builders shared by resource definitions ---------------------------------------


def id_attr() -> Attribute:
    return Attribute("id", t.Uuid(), filterable=True, sortable=True, column="id")


def name_attr(*, required: bool = False, strict: bool = True, default: Any = "") -> Attribute:
    return Attribute("name", t.String(255, strict_name=strict), default=MISSING if required else default,
                     allow_post=True, allow_put=True, required=required, filterable=True, sortable=True,
                     column="name")


def description_attr() -> Attribute:
    return Attribute("description", t.String(255), default="", allow_post=True, allow_put=True,
                     filterable=True, sortable=True, column="description")


def project_attrs() -> tuple[Attribute, ...]:
    return (
        Attribute("project_id", t.String(255), allow_post=True, filterable=True, sortable=True,
                  column="project_id"),
        Attribute("tenant_id", t.String(255), allow_post=True, filterable=True, sortable=True,
                  column="project_id"),
    )


def standard_attrs() -> tuple[Attribute, ...]:
    return (
        Attribute("created_at", t.String(), filterable=False, sortable=True, column="created_at"),
        Attribute("updated_at", t.String(), filterable=False, sortable=True, column="updated_at"),
        Attribute("revision_number", t.Integer(), filterable=True, sortable=True, column="revision_number"),
    )


def tags_attr(allow_post: bool = False) -> Attribute:
    return Attribute("tags", t.ListOf(t.String(255), unique=True), default=[], allow_post=allow_post)


def bool_attr(name: str, default: Any, *, post: bool = True, put: bool = True, column: str | None = None,
              filterable: bool = True, sortable: bool = True, policy: bool = False, extension: str = "") -> Attribute:
    return Attribute(name, t.Boolean(), default=default, allow_post=post, allow_put=put,
                     filterable=filterable, sortable=sortable, column=column or name.replace(":", "_"),
                     enforce_policy=policy, extension=extension)


TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")
