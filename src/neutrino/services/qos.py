"""QoS policies and their rules: what traffic limits and markings a network's or a port's traffic
should get.

- :class:`QosPolicyService` serves ``qos/policies``: sharing through RBAC (``qos_policy`` entries,
  ``shared`` is per caller), one default policy per project (a keyed table, so two concurrent
  "make default" requests cannot both win), and refusal to delete a policy networks or ports use.
  It is also what the core's networks and ports are given to check the ``qos_policy_id`` they are
  asked to use (its ``check`` and ``project_default``), and what new networks take as their project's default.
- :class:`QosRuleService` serves one rule kind under ``qos/policies/{id}/<kind>_rules``;
  :class:`QosRuleAliasService` the same rules by id alone (``qos/alias_<kind>_rules``).
  The checks that need no database are pure functions here (:func:`rule_conflict`).
- :class:`QosRuleTypeService` answers ``qos/rule-types``.

The backend supports exactly what its data plane enforces (:data:`~neutrino.services.qos_agents.SUPPORTED`):
``qos/rule-types`` lists those kinds (``all_rules`` every kind the API accepts), and attaching a policy
that holds anything else to a port or network, or adding such a rule to a policy in use, is refused
with 409 ``QosRuleNotSupported``. The qos agent role enforces ``bandwidth_limit`` (tc), ``dscp_marking``
and ``packet_rate_limit`` (nftables) and an egress ``minimum_bandwidth`` (htb on the uplink of a flat
network or the VXLAN underlay whose capacity the agent is told). An ingress ``minimum_bandwidth`` and
``minimum_packet_rate`` can be created (rules are data) but not attached: in Neutron they are Placement
guarantees that no data plane enforces, and with no Placement here nothing would keep them
(docs/architecture.md, "Minimum bandwidth").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.context import RequestContext
from neutrino.db.engine import Database
from neutrino.db.schema import core as core_db
from neutrino.db.schema.qos import qos_default_policies, qos_policies, qos_rules
from neutrino.errors import Conflict, InUse, NotAuthorized, NotFound
from neutrino.resources.qos import RULE_KIND_BY_TYPE, RULE_KINDS, VALID_DSCP_MARKS, RuleKind
from neutrino.services import rbac
from neutrino.services.events import ChangeEvent, Notifier
from neutrino.services.listing import ListQuery, TableQuery, fetch_one, select_rows
from neutrino.services.qos_agents import SHAPED, SUPPORTED, SUPPORTED_DIRECTIONS, enforced
from neutrino.services.standard import (
    bump_revision,
    check_revision,
    delete_tags,
    load_tags,
    new_id,
    new_standard_values,
    project_view,
    standard_view,
    utcnow,
)
from neutrino.services.unit_of_work import Transaction, UnitOfWork

OBJECT_TYPE = "qos_policy"
TAG_TYPE = "policy"  # the resource name tags are kept under
DRIVER_NAME = "neutrino"
_CHUNK = 5000
policies, rules, defaults = qos_policies, qos_rules, qos_default_policies


class QosPolicyInUse(InUse):
    message = "QoS Policy %(policy_id)s is used by %(object_type)s %(object_id)s."


class QosRuleNotSupported(Conflict):
    message = "Rule %(rule_type)s is not supported by this backend: %(reason)s"

    @classmethod
    def on_attach(cls, rule_type: str, direction: str | None, policy_id: str) -> QosRuleNotSupported:
        return cls(rule_type=_kind_name(rule_type, direction),
                   reason=f"QoS policy {policy_id} cannot be attached.")

    @classmethod
    def in_use(cls, rule_type: str, direction: str | None, policy_id: str) -> QosRuleNotSupported:
        return cls(rule_type=_kind_name(rule_type, direction),
                   reason=f"QoS policy {policy_id} is attached to a port or network, so it cannot hold it.")


def _kind_name(rule_type: str, direction: str | None) -> str:
    return f"{rule_type} ({direction})" if direction and rule_type in SUPPORTED_DIRECTIONS else rule_type


class QoSPolicyDefaultAlreadyExists(Conflict):
    message = "A default QoS policy exists for project %(project_id)s."


class QosRuleNotFound(NotFound):
    message = "QoS rule %(rule_id)s for policy %(policy_id)s could not be found."


class QoSRulesConflict(Conflict):
    message = "Rule %(new_rule_type)s conflicts with rule %(rule_id)s which already exists in QoS Policy %(policy_id)s."


class QoSRuleParameterConflict(Conflict):
    message = ("Unable to add the rule with value %(rule_value)s to the policy %(policy_id)s as the existing rule "
               "of type %(existing_rule)s restricts the bandwidth to %(existing_value)s.")


class QosRuleTypeNotFound(NotFound):
    message = "QoS rule type %(rule_type)s could not be found."


# ---- rules as plain data, and the checks on them ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    """One stored rule: its kind, direction ("" when the kind has none) and parameters."""

    id: str
    policy_id: str
    type: str
    direction: str
    values: Mapping[str, Any]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Rule:
        kind = RULE_KIND_BY_TYPE[row["rule_type"]]
        values = {p: row[p] for p in kind.parameters if p != "direction"}
        return cls(row["id"], row["qos_policy_id"], row["rule_type"], row["direction"], values)

    def view(self) -> dict[str, Any]:
        """As the rule's own URLs show it: id and parameters."""
        out: dict[str, Any] = {"id": self.id, **self.values}
        if RULE_KIND_BY_TYPE[self.type].directions:
            out["direction"] = self.direction
        return out

    def embedded_view(self) -> dict[str, Any]:
        """As the policy's ``rules`` list shows it: with its type and policy."""
        return {**self.view(), "qos_policy_id": self.policy_id, "type": self.type}


def rule_conflict(new: Rule, others: Sequence[Rule]) -> Conflict | None:
    """Why ``new`` may not join a policy holding ``others`` (None: it may), checked in Neutron's
    order: a minimum bandwidth may not exceed the maximum of the same direction (whichever came
    first), then one rule per (type, direction)."""
    for rule in others:
        if rule.id == new.id or rule.direction != new.direction:
            continue
        if new.type == "minimum_bandwidth" and rule.type == "bandwidth_limit" \
                and new.values["min_kbps"] > rule.values["max_kbps"]:
            return QoSRuleParameterConflict(rule_value=new.values["min_kbps"], policy_id=new.policy_id,
                                            existing_rule=rule.type, existing_value=rule.values["max_kbps"])
        if new.type == "bandwidth_limit" and rule.type == "minimum_bandwidth" \
                and new.values["max_kbps"] < rule.values["min_kbps"]:
            return QoSRuleParameterConflict(rule_value=new.values["max_kbps"], policy_id=new.policy_id,
                                            existing_rule=rule.type, existing_value=rule.values["min_kbps"])
    for rule in others:
        if rule.id != new.id and rule.type == new.type and rule.direction == new.direction:
            return QoSRulesConflict(new_rule_type=new.type, rule_id=rule.id, policy_id=new.policy_id)
    if new.type == "minimum_packet_rate":  # "any" and a direction do not mix (Neutron's qos-pps-minimum)
        for rule in others:
            if rule.id != new.id and rule.type == new.type and "any" in (rule.direction, new.direction):
                return QoSRuleParameterConflict(rule_value=new.direction, policy_id=new.policy_id,
                                                existing_rule=rule.type, existing_value=rule.direction)
    return None


def new_rule(kind: RuleKind, policy_id: str, rule_id: str, item: Mapping[str, Any],
             current: Rule | None = None) -> Rule:
    """The rule a create (``current`` None) or update request describes, defaults filled in."""
    values: dict[str, Any] = {}
    for attr in kind.attributes:
        if attr.name == "direction":
            continue
        if attr.name in item:
            values[attr.name] = item[attr.name]
        elif current is not None:
            values[attr.name] = current.values[attr.name]
        else:
            values[attr.name] = attr.default
    direction = ""
    if kind.directions:
        default = next(a.default for a in kind.attributes if a.name == "direction")
        direction = item.get("direction", current.direction if current else default)
    return Rule(rule_id, policy_id, kind.type, direction, values)


def rule_row(rule: Rule) -> dict[str, Any]:
    return {"id": rule.id, "qos_policy_id": rule.policy_id, "rule_type": rule.type, "direction": rule.direction,
            **rule.values}


def supported_parameters(kind: RuleKind) -> list[dict[str, Any]]:
    """``qos-rule-type-details``: each parameter as a range or a list of choices."""
    out: list[dict[str, Any]] = []
    for attr in kind.attributes:
        choices = VALID_DSCP_MARKS if attr.name == "dscp_mark" else getattr(attr.type, "values", None)
        if choices is not None:
            out.append({"parameter_name": attr.name, "parameter_type": "choices",
                        "parameter_values": list(choices)})
        else:
            out.append({"parameter_name": attr.name, "parameter_type": "range",
                        "parameter_values": {"start": attr.type.low, "end": attr.type.high}})
    return out


# ---- policies ------------------------------------------------------------------------------------


def policy_visible(ctx: RequestContext) -> ColumnElement[bool] | None:
    """Own policies plus policies shared with the caller's project (RBAC ``access_as_shared``)."""
    return rbac.visible(policies, OBJECT_TYPE, ctx)


async def rules_of(conn: AsyncConnection, policy_ids: Sequence[str]) -> dict[str, list[Rule]]:
    out: dict[str, list[Rule]] = {}
    ids = list(policy_ids)
    for start in range(0, len(ids), _CHUNK):
        found = await conn.execute(select(rules).where(rules.c.qos_policy_id.in_(ids[start:start + _CHUNK]))
                                   .order_by(rules.c.rule_type, rules.c.direction, rules.c.id))
        for row in found.mappings():
            out.setdefault(row["qos_policy_id"], []).append(Rule.from_row(row))
    return out


class QosPolicyService:
    """The ``qos/policies`` collection, and the references networks and ports make to policies."""

    def __init__(self, database: Database, notifier: Notifier) -> None:
        self.db = database
        self.notifier = notifier
        self.uow = UnitOfWork(self.db, notifier)

    def table_query(self, ctx: RequestContext) -> TableQuery:
        def shared(values: Sequence[Any]) -> ColumnElement[bool]:
            granted = rbac.granted(OBJECT_TYPE, policies.c.id, ctx, (rbac.SHARED,))
            return or_(*[granted if v else ~granted for v in values])

        def is_default(values: Sequence[Any]) -> ColumnElement[bool]:
            marked = exists().where(defaults.c.qos_policy_id == policies.c.id)
            return or_(*[marked if v else ~marked for v in values])

        return TableQuery("policy", policies, {
            "id": "id", "name": "name", "description": "description", "project_id": "project_id",
            "tenant_id": "project_id", "revision_number": "revision_number", "created_at": "created_at",
            "updated_at": "updated_at"}, {"shared": shared, "is_default": is_default}, tag_type=TAG_TYPE,
            unseen_marker_ignored=True)

    # ---- reading ---------------------------------------------------------------------------

    async def views(self, conn: AsyncConnection, ctx: RequestContext, rows: Sequence[Any]) -> list[dict[str, Any]]:
        ids = [r["id"] for r in rows]
        if not ids:
            return []
        by_policy = await rules_of(conn, ids)
        shared = await rbac.shared_ids(conn, OBJECT_TYPE, ids, ctx)
        default_ids = {p for (p,) in await conn.execute(select(defaults.c.qos_policy_id).where(
            defaults.c.qos_policy_id.in_(ids)))}
        tag_map = await load_tags(conn, TAG_TYPE, ids)
        return [{
            "id": r["id"], "name": r["name"], "description": r["description"], **project_view(r["project_id"]),
            "shared": r["id"] in shared, "is_default": r["id"] in default_ids,
            "rules": [rule.embedded_view() for rule in by_policy.get(r["id"], [])],
            "tags": tag_map.get(r["id"], []), **standard_view(r),
        } for r in rows]

    async def list(self, ctx: RequestContext, query: ListQuery) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            rows = await select_rows(conn, self.table_query(ctx), query, policy_visible(ctx))
            return await self.views(conn, ctx, rows)

    async def get(self, ctx: RequestContext, policy_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            row = await fetch_one(conn, policies, "policy", policy_id, policy_visible(ctx))
            return (await self.views(conn, ctx, [row]))[0]

    async def get_in(self, conn: AsyncConnection, ctx: RequestContext, policy_id: str, *,
                     for_update: bool = False) -> Any:
        """The policy row as the caller sees it (``QosPolicyNotFound`` otherwise)."""
        return await fetch_one(conn, policies, "policy", policy_id, policy_visible(ctx), for_update=for_update)

    async def policy_target(self, ctx: RequestContext, obj: dict[str, Any]) -> dict[str, Any]:
        return {}

    # ---- writing ---------------------------------------------------------------------------

    async def create_many(self, ctx: RequestContext, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        async def work(tx: Transaction) -> list[dict[str, Any]]:
            conn = tx.conn
            ids = [await self._create_in(conn, item) for item in items]
            rows = (await conn.execute(select(policies).where(policies.c.id.in_(ids)))).mappings().all()
            by_id = {r["id"]: r for r in rows}
            return await self.views(conn, ctx, [by_id[i] for i in ids])

        result = await self.uow.run(work,
            events=lambda result: [ChangeEvent(OBJECT_TYPE, p["id"], "create", p["revision_number"])
                                   for p in result])
        return result

    async def _create_in(self, conn: AsyncConnection, item: dict[str, Any]) -> str:
        project = item["project_id"]
        policy_id = new_id()
        await conn.execute(insert(policies).values(id=policy_id, project_id=project,
                                                   **new_standard_values(item, utcnow())))
        if item.get("shared"):
            await rbac.add_grant(conn, OBJECT_TYPE, policy_id, rbac.SHARED, "*", project)
        if item.get("is_default"):
            await self._make_default(conn, project, policy_id)
        return policy_id

    @staticmethod
    async def _make_default(conn: AsyncConnection, project_id: str, policy_id: str) -> None:
        """Mark the project's default; another one already marked is a 409 (the key decides races)."""
        current = (await conn.execute(select(defaults.c.qos_policy_id).where(
            defaults.c.project_id == project_id))).scalar()
        if current == policy_id:
            return
        if current is not None:
            raise QoSPolicyDefaultAlreadyExists(project_id=project_id)
        await conn.execute(insert(defaults).values(project_id=project_id, qos_policy_id=policy_id))

    async def update(self, ctx: RequestContext, policy_id: str, changes: dict[str, Any],
                     if_revision: int | None = None) -> dict[str, Any]:
        async def work(tx: Transaction) -> dict[str, Any]:
            conn = tx.conn
            row = await self.get_in(conn, ctx, policy_id, for_update=True)
            check_revision(row["revision_number"], if_revision)
            if "is_default" in changes:
                if changes["is_default"]:
                    await self._make_default(conn, row["project_id"], policy_id)
                else:
                    await conn.execute(delete(defaults).where(defaults.c.qos_policy_id == policy_id))
            if "shared" in changes:
                await self._set_shared(conn, row, bool(changes["shared"]))
            await bump_revision(conn, policies, policy_id,
                                {k: changes[k] for k in ("name", "description") if k in changes})
            new = await fetch_one(conn, policies, "policy", policy_id)
            return (await self.views(conn, ctx, [new]))[0]

        result = await self.uow.run(work,
            events=lambda result: [ChangeEvent(OBJECT_TYPE, policy_id, "update", result["revision_number"])])
        return result

    async def _set_shared(self, conn: AsyncConnection, row: Any, shared: bool) -> None:
        if shared:
            await rbac.add_grant(conn, OBJECT_TYPE, row["id"], rbac.SHARED, "*", row["project_id"])
            return
        r = core_db.rbac_policies
        granted = {t for (t,) in await conn.execute(select(r.c.target_project).where(
            r.c.object_type == OBJECT_TYPE, r.c.object_id == row["id"], r.c.action == rbac.SHARED))}
        if "*" not in granted:
            return  # not shared with everyone: nothing to take back
        still = granted - {"*"}
        if await self.rbac_dependents(conn, row["id"], "*", still, owner_counts=True):
            raise rbac.RbacPolicyInUse(object_id=row["id"])
        await rbac.remove_grants(conn, OBJECT_TYPE, row["id"], rbac.SHARED, "*")

    async def delete(self, ctx: RequestContext, policy_id: str, if_revision: int | None = None) -> None:
        async def work(tx: Transaction) -> None:
            conn = tx.conn
            row = await self.get_in(conn, ctx, policy_id, for_update=True)
            check_revision(row["revision_number"], if_revision)
            user = await self._first_user(conn, policy_id)
            if user is not None:
                raise QosPolicyInUse(policy_id=policy_id, object_type=user[0], object_id=user[1])
            await conn.execute(delete(rules).where(rules.c.qos_policy_id == policy_id))
            await conn.execute(delete(defaults).where(defaults.c.qos_policy_id == policy_id))
            await rbac.remove_grants(conn, OBJECT_TYPE, policy_id)
            await delete_tags(conn, TAG_TYPE, policy_id)
            await conn.execute(delete(policies).where(policies.c.id == policy_id))

        await self.uow.run(work, events=lambda _: [ChangeEvent(OBJECT_TYPE, policy_id, "delete")])

    @staticmethod
    def _user_tables() -> list[tuple[str, Any]]:
        """(object type, table) of everything that may name a policy in ``qos_policy_id``; floating
        IPs and routers join when their tables carry the column."""
        out: list[tuple[str, Any]] = [("network", core_db.networks), ("port", core_db.ports)]
        for object_type, name in (("floatingip", "floatingips"), ("router", "routers")):
            table = core_db.metadata.tables.get(name)
            if table is not None and "qos_policy_id" in table.c:
                out.append((object_type, table))
        return out

    async def _first_user(self, conn: AsyncConnection, policy_id: str) -> tuple[str, str] | None:
        for object_type, table in self._user_tables():
            found = (await conn.execute(select(table.c.id).where(table.c.qos_policy_id == policy_id).limit(1))).first()
            if found is not None:
                return object_type, found[0]
        return None

    # ---- what the core and RBAC ask -------------------------------------------------------------

    async def check(self, conn: AsyncConnection, ctx: RequestContext, policy_id: str) -> None:
        """A network or port may name only a policy the caller can see (404 otherwise) and whose
        rules the data plane enforces (409 ``QosRuleNotSupported``, as Neutron's drivers refuse)."""
        await self.get_in(conn, ctx, policy_id)
        for rule_type, direction in (await conn.execute(select(rules.c.rule_type, rules.c.direction).where(
                rules.c.qos_policy_id == policy_id).order_by(rules.c.id))).all():
            if not enforced(rule_type, direction):
                raise QosRuleNotSupported.on_attach(rule_type, direction, policy_id)

    async def refuse_if_unenforced_in_use(self, conn: AsyncConnection, rule: Rule) -> None:
        """A policy networks or ports use may gain only rules the data plane enforces (Neutron
        validates a new rule against the policy's bound ports the same way)."""
        if not enforced(rule.type, rule.direction) and await self._first_user(conn, rule.policy_id) is not None:
            raise QosRuleNotSupported.in_use(rule.type, rule.direction, rule.policy_id)

    @staticmethod
    async def project_default(conn: AsyncConnection, project_id: str) -> str | None:
        """The policy a new network of ``project_id`` gets when it names none (``qos-default``)."""
        return (await conn.execute(select(defaults.c.qos_policy_id).where(
            defaults.c.project_id == project_id))).scalar()

    async def rbac_dependents(self, conn: AsyncConnection, policy_id: str, removing_target: str,
                              still_granted: set[str], *, owner_counts: bool = False) -> bool:
        """Whether taking ``removing_target``'s access away would strand its networks or ports.

        ``owner_counts``: the owner's own networks and ports count too. Neutron's ``shared: false``
        on a QoS policy refuses (409) while the policy is bound to any network or port, the
        owner's included."""
        owner = (await conn.execute(select(policies.c.project_id).where(policies.c.id == policy_id))).scalar()
        for _, table in self._user_tables():
            stmt = select(table.c.id).where(table.c.qos_policy_id == policy_id, table.c.project_id != "")
            if not owner_counts:
                stmt = stmt.where(table.c.project_id != owner)
            if removing_target != "*":
                stmt = stmt.where(table.c.project_id == removing_target)
            if still_granted:
                stmt = stmt.where(table.c.project_id.not_in(still_granted))
            if (await conn.execute(stmt.limit(1))).first() is not None:
                return True
        return False


# ---- rules ---------------------------------------------------------------------------------------


def _rule_table_query(kind: RuleKind, resource: str) -> TableQuery:
    return TableQuery(resource, rules, {"id": "id", **{p: p for p in kind.parameters}})


class QosRuleService:
    """One rule kind under ``qos/policies/{policy_id}/<kind>_rules``."""

    def __init__(self, database: Database, notifier: Notifier, policy_service: QosPolicyService,
                 kind: RuleKind) -> None:
        self.db = database
        self.notifier = notifier
        self.uow = UnitOfWork(self.db, notifier)
        self.policies = policy_service
        self.kind = kind

    def _of_kind(self, policy_id: str | None = None) -> ColumnElement[bool]:
        clause = rules.c.rule_type == self.kind.type
        return clause if policy_id is None else clause & (rules.c.qos_policy_id == policy_id)

    async def _rule(self, conn: AsyncConnection, policy_id: str, rule_id: str) -> Rule:
        row = (await conn.execute(select(rules).where(rules.c.id == rule_id, self._of_kind(policy_id)))
               ).mappings().first()
        if row is None:
            raise QosRuleNotFound(rule_id=rule_id, policy_id=policy_id)
        return Rule.from_row(row)

    async def list(self, ctx: RequestContext, policy_id: str, query: ListQuery) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            await self.policies.get_in(conn, ctx, policy_id)
            rows = await select_rows(conn, _rule_table_query(self.kind, self.kind.name), query,
                                     self._of_kind(policy_id))
            return [Rule.from_row(r).view() for r in rows]

    async def get(self, ctx: RequestContext, policy_id: str, rule_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            await self.policies.get_in(conn, ctx, policy_id)
            return (await self._rule(conn, policy_id, rule_id)).view()

    async def policy_target(self, ctx: RequestContext, target: dict[str, Any]) -> dict[str, Any]:
        """Rules are governed by their policy's owner (``ext_parent``); an invisible policy is a 404."""
        policy_id = target.get("qos_policy_id")
        if not policy_id:
            return {}
        async with self.db.read() as conn:
            row = await self.policies.get_in(conn, ctx, policy_id)
        return {"ext_parent:project_id": row["project_id"], "ext_parent:tenant_id": row["project_id"]}

    async def create_many(self, ctx: RequestContext, policy_id: str, items: list[dict[str, Any]]
                          ) -> list[dict[str, Any]]:
        async def work(tx: Transaction) -> list[dict[str, Any]]:
            conn = tx.conn
            await self.policies.get_in(conn, ctx, policy_id, for_update=True)
            held = (await rules_of(conn, [policy_id])).get(policy_id, [])
            made = []
            for item in items:
                rule = new_rule(self.kind, policy_id, new_id(), item)
                conflict = rule_conflict(rule, held)
                if conflict is not None:
                    raise conflict
                await self.policies.refuse_if_unenforced_in_use(conn, rule)
                await conn.execute(insert(rules).values(**rule_row(rule)))
                held.append(rule)
                made.append(rule)
            await bump_revision(conn, policies, policy_id)
            return [r.view() for r in made]

        result = await self.uow.run(work,
            events=lambda result: [ChangeEvent(OBJECT_TYPE, policy_id, "update")])
        return result

    async def update(self, ctx: RequestContext, policy_id: str, rule_id: str, changes: dict[str, Any],
                     if_revision: int | None = None) -> dict[str, Any]:
        async def work(tx: Transaction) -> dict[str, Any]:
            conn = tx.conn
            await self.policies.get_in(conn, ctx, policy_id, for_update=True)
            current = await self._rule(conn, policy_id, rule_id)
            rule = new_rule(self.kind, policy_id, rule_id, changes, current)
            conflict = rule_conflict(rule, (await rules_of(conn, [policy_id])).get(policy_id, []))
            if conflict is not None:
                raise conflict
            await self.policies.refuse_if_unenforced_in_use(conn, rule)
            await conn.execute(update(rules).where(rules.c.id == rule_id).values(**rule_row(rule)))
            await bump_revision(conn, policies, policy_id)
            return rule.view()

        result = await self.uow.run(work,
            events=lambda result: [ChangeEvent(OBJECT_TYPE, policy_id, "update")])
        return result

    async def delete(self, ctx: RequestContext, policy_id: str, rule_id: str, if_revision: int | None = None) -> None:
        async def work(tx: Transaction) -> None:
            conn = tx.conn
            await self.policies.get_in(conn, ctx, policy_id, for_update=True)
            await self._rule(conn, policy_id, rule_id)
            await conn.execute(delete(rules).where(rules.c.id == rule_id))
            await bump_revision(conn, policies, policy_id)

        await self.uow.run(work, events=lambda _: [ChangeEvent(OBJECT_TYPE, policy_id, "update")])


class QosRuleAliasService:
    """``qos/alias_<kind>_rules/{rule_id}``: one kind's rules by id, through the rule service."""

    def __init__(self, database: Database, rule_service: QosRuleService) -> None:
        self.db = database
        self.rules = rule_service
        self.kind = rule_service.kind

    def _visible(self, ctx: RequestContext) -> ColumnElement[bool]:
        clause = rules.c.rule_type == self.kind.type
        scope = policy_visible(ctx)
        if scope is None:
            return clause
        return clause & select(policies.c.id).where(policies.c.id == rules.c.qos_policy_id, scope).exists()

    async def _policy_of(self, ctx: RequestContext, rule_id: str) -> str:
        async with self.db.read() as conn:
            found = (await conn.execute(select(rules.c.qos_policy_id).where(
                rules.c.id == rule_id, self._visible(ctx)))).scalar()
        if found is None:
            raise QosRuleNotFound(rule_id=rule_id, policy_id="")
        return str(found)

    @staticmethod
    def _alias_view(rule: Rule) -> dict[str, Any]:
        return {**rule.view(), "qos_policy_id": rule.policy_id}

    async def list(self, ctx: RequestContext, query: ListQuery) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            rows = await select_rows(conn, _rule_table_query(self.kind, f"alias_{self.kind.name}"), query,
                                     self._visible(ctx))
        return [self._alias_view(Rule.from_row(r)) for r in rows]

    async def get(self, ctx: RequestContext, rule_id: str) -> dict[str, Any]:
        policy_id = await self._policy_of(ctx, rule_id)
        return {**await self.rules.get(ctx, policy_id, rule_id), "qos_policy_id": policy_id}

    async def policy_target(self, ctx: RequestContext, target: dict[str, Any]) -> dict[str, Any]:
        rule_id = target.get("id")
        if not rule_id:
            return {}
        policy_id = target.get("qos_policy_id") or await self._policy_of(ctx, rule_id)
        return await self.rules.policy_target(ctx, {"qos_policy_id": policy_id})

    async def update(self, ctx: RequestContext, rule_id: str, changes: dict[str, Any],
                     if_revision: int | None = None) -> dict[str, Any]:
        policy_id = await self._policy_of(ctx, rule_id)
        return {**await self.rules.update(ctx, policy_id, rule_id, changes), "qos_policy_id": policy_id}

    async def delete(self, ctx: RequestContext, rule_id: str, if_revision: int | None = None) -> None:
        await self.rules.delete(ctx, await self._policy_of(ctx, rule_id), rule_id)


# ---- rule types ------------------------------------------------------------------------------------


class QosRuleTypeService:
    """``qos/rule-types``: the kinds the API accepts. Rule type details are admin only, as in
    Neutron (its plugin refuses others with ``NotAuthorized``)."""

    NOT_SUPPORTED = ("Rules of this type are accepted and stored, but this backend does not support them: a "
                     "policy holding one cannot be attached to a port or network (409 QosRuleNotSupported).")
    ENFORCED_BY = {"bandwidth_limit": "Enforced by the qos agent role with tc: tbf on the tap (ingress) and on "
                                      "an IFB device the tap's ingress is redirected to (egress).",
                   "dscp_marking": "Enforced by the qos agent role with nftables (bridge family).",
                   "packet_rate_limit": "Enforced by the qos agent role with nftables (bridge family): a per-port "
                                        "'limit rate over' drop, in the direction the rule names.",
                   "minimum_bandwidth": "Egress only: enforced by the qos agent role with an htb class per port "
                                        "on the uplink of a flat network, or on the VXLAN underlay, whose capacity "
                                        "the agent is configured with (resource_provider_bandwidths). An ingress "
                                        "minimum is refused on attach: nothing here enforces it (Neutron leaves it "
                                        "to Placement, and there is no Placement here)."}

    async def list(self, ctx: RequestContext, query: ListQuery) -> list[dict[str, Any]]:
        """The types the backend enforces; ``all_rules=true`` every type the API accepts."""
        all_rules = any(str(v).lower() in ("true", "1") for v in query.filters.get("all_rules") or ())
        return [{"type": k.type} for k in RULE_KINDS if all_rules or k.type in SUPPORTED]

    async def get(self, ctx: RequestContext, rule_type: str) -> dict[str, Any]:
        if not ctx.is_admin:
            raise NotAuthorized()
        kind = RULE_KIND_BY_TYPE.get(rule_type)
        if kind is None:
            raise QosRuleTypeNotFound(rule_type=rule_type)
        supported = kind.type in SUPPORTED
        parameters = supported_parameters(kind)
        if kind.type in SUPPORTED_DIRECTIONS:
            parameters = [{**p, "parameter_values": list(SUPPORTED_DIRECTIONS[kind.type])}
                          if p["parameter_name"] == "direction" else p for p in parameters]
        return {"type": kind.type, "drivers": [{
            "name": DRIVER_NAME, "supported_parameters": parameters, "enforced": kind.type in SHAPED,
            "description": self.ENFORCED_BY[kind.type] if supported else self.NOT_SUPPORTED}]}


__all__ = ["QosPolicyService", "QosRuleService", "QosRuleAliasService", "QosRuleTypeService", "Rule", "rule_conflict",
           "new_rule", "QosPolicyInUse", "QoSPolicyDefaultAlreadyExists", "QosRuleNotFound", "QoSRulesConflict",
           "QoSRuleParameterConflict", "QosRuleTypeNotFound", "QosRuleNotSupported"]
