"""``neutrino identity ...``: manage the embedded identity's projects, users and roles offline.

Works directly on the database named by the settings (no server needed), e.g. to provision
accounts before a tempest run. Wiring: ``register(subparsers)`` adds the ``identity`` command; every
leaf command sets ``args.handler``, an ``async def handler(args, settings) -> int`` (exit status)
that the main program awaits with its loaded :class:`~neutrino.config.Settings`.
Projects, users and roles may be named by id or name (names are looked up in the ``default`` domain).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, TextIO

from neutrino.config import Settings
from neutrino.db.engine import Database
from neutrino.errors import BadRequest, NeutrinoError, NotFound
from neutrino.identity.model import Project, ProjectRef, Role, User, UserRef
from neutrino.identity.roles import MEMBER
from neutrino.identity.store import IdentityStore, build_identity_store
from neutrino.identity.tokens import format_time

Handler = Callable[[argparse.Namespace, Settings], Awaitable[int]]


def register(subparsers: Any) -> None:
    """Add ``identity`` and its subcommands to the ``neutrino`` argument parser's subparsers."""
    identity = subparsers.add_parser("identity", help="manage the embedded identity (projects, users, roles)")
    kinds = identity.add_subparsers(dest="identity_kind", metavar="{project,user,role,key}", required=True)

    project = kinds.add_parser("project", help="projects").add_subparsers(dest="identity_action", required=True)
    create = project.add_parser("create", help="create a project")
    create.add_argument("name")
    create.add_argument("--description", default="")
    create.add_argument("--domain", default="default", help="domain id (default: default)")
    create.set_defaults(handler=_command(_project_create))
    project.add_parser("list", help="list projects").set_defaults(handler=_command(_project_list))

    user = kinds.add_parser("user", help="users").add_subparsers(dest="identity_action", required=True)
    create = user.add_parser("create", help="create a user")
    create.add_argument("name")
    create.add_argument("--password", required=True)
    create.add_argument("--project", help="default project (id or name); also granted --role")
    create.add_argument("--role", help=f"role granted on --project (default: {MEMBER})")
    create.add_argument("--domain", default="default", help="domain id (default: default)")
    create.set_defaults(handler=_command(_user_create))
    user.add_parser("list", help="list users").set_defaults(handler=_command(_user_list))

    role = kinds.add_parser("role", help="roles and role assignments").add_subparsers(
        dest="identity_action", required=True)
    add = role.add_parser("add", help="grant a role to a user on a project (idempotent)")
    add.add_argument("role")
    add.add_argument("--project", required=True)
    add.add_argument("--user", required=True)
    add.set_defaults(handler=_command(_role_add))
    role.add_parser("list", help="list roles").set_defaults(handler=_command(_role_list))
    assignment = role.add_parser("assignment", help="role assignments").add_subparsers(
        dest="identity_assignment_action", required=True)
    listing = assignment.add_parser("list", help="list role assignments (by name)")
    listing.add_argument("--user")
    listing.add_argument("--project")
    listing.set_defaults(handler=_command(_assignment_list))

    key = kinds.add_parser("key", help="token signing keys (in the database)").add_subparsers(
        dest="identity_action", required=True)
    rotate = key.add_parser("rotate", help="sign new tokens with a fresh key; older keys keep validating "
                                           "until retired")
    rotate.add_argument("--retire-after", type=int, default=None, metavar="SECONDS",
                        help="deactivate keys older than this (default: twice [identity] token_ttl_seconds, "
                             "so every token they signed has expired)")
    rotate.set_defaults(handler=_command(_key_rotate))
    key.add_parser("list", help="list signing keys (ids and ages, never secrets)").set_defaults(
        handler=_command(_key_list))


Action = Callable[[IdentityStore, argparse.Namespace, TextIO], Awaitable[None]]


def _command(action: Action) -> Handler:
    """Run ``action`` against the configured database; domain errors become exit status 1."""

    async def handler(args: argparse.Namespace, settings: Settings, out: TextIO | None = None) -> int:
        db = Database(settings.database_url, pool_size=settings.database.pool_size, echo=settings.database.echo)
        try:
            store = build_identity_store(db, settings.identity)
            await store.ensure_defaults()
            await action(store, args, out or sys.stdout)
            return 0
        except NeutrinoError as exc:
            print(f"error: {exc.msg}", file=sys.stderr)
            return 1
        finally:
            await db.dispose()

    return handler


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns padded to their widest cell, one header line, no borders."""
    cells = [list(headers)] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


async def _project_create(store: IdentityStore, args: argparse.Namespace, out: TextIO) -> None:
    project = await store.create_project(args.name, domain_id=args.domain, description=args.description)
    _print_projects(out, [project])


async def _project_list(store: IdentityStore, args: argparse.Namespace, out: TextIO) -> None:
    _print_projects(out, await store.list_projects())


async def _user_create(store: IdentityStore, args: argparse.Namespace, out: TextIO) -> None:
    if args.role and not args.project:
        raise BadRequest("--role needs --project.")
    project = await _project(store, args.project) if args.project else None
    role = await _role(store, args.role or MEMBER) if project else None
    user = await store.create_user(args.name, password=args.password, domain_id=args.domain,
                                   default_project_id=project.id if project else None)
    if project and role:
        await store.assign_role(project.id, user.id, role.id)
    _print_users(out, [user])


async def _user_list(store: IdentityStore, args: argparse.Namespace, out: TextIO) -> None:
    _print_users(out, await store.list_users())


async def _role_add(store: IdentityStore, args: argparse.Namespace, out: TextIO) -> None:
    project, user, role = await _project(store, args.project), await _user(store, args.user), await _role(store, args.role)
    created = await store.assign_role(project.id, user.id, role.id)
    state = "granted" if created else "already granted"
    print(f"role {role.name} {state} to user {user.name} on project {project.name}", file=out)


async def _key_rotate(store: IdentityStore, args: argparse.Namespace, out: TextIO) -> None:
    if args.retire_after is not None and args.retire_after < 0:
        raise BadRequest("--retire-after must not be negative.")
    retire = timedelta(seconds=args.retire_after) if args.retire_after is not None else None
    key = await store.rotate_signing_keys(retire_older_than=retire)
    print(f"new signing key {key.id}; keys created before {format_time(key.created_at - store.key_retirement(retire))} "
          "are retired", file=out)
    await _key_list(store, args, out)


async def _key_list(store: IdentityStore, args: argparse.Namespace, out: TextIO) -> None:
    rows = [(k.id, format_time(k.created_at), "yes" if k.active else "no", "yes" if k.signing else "")
            for k in await store.list_signing_keys()]
    print(format_table(("ID", "CREATED", "ACTIVE", "SIGNING"), rows), file=out)


async def _role_list(store: IdentityStore, args: argparse.Namespace, out: TextIO) -> None:
    print(format_table(("ID", "NAME"), [(r.id, r.name) for r in await store.list_roles()]), file=out)


async def _assignment_list(store: IdentityStore, args: argparse.Namespace, out: TextIO) -> None:
    user = await _user(store, args.user) if args.user else None
    project = await _project(store, args.project) if args.project else None
    found = await store.list_role_assignments(user_id=user.id if user else None,
                                              project_id=project.id if project else None)
    role_names = {r.id: r.name for r in await store.list_roles()}
    user_names = {u.id: u.name for u in await store.list_users(ids={a.user_id for a in found})}
    project_names = {p.id: p.name for p in await store.list_projects(ids={a.project_id for a in found})}
    rows = [(role_names.get(a.role_id, a.role_id), user_names.get(a.user_id, a.user_id),
             project_names.get(a.project_id, a.project_id)) for a in found]
    print(format_table(("ROLE", "USER", "PROJECT"), sorted(rows, key=lambda r: (r[2], r[1], r[0]))), file=out)


def _print_projects(out: TextIO, found: Sequence[Project]) -> None:
    print(format_table(("ID", "NAME", "DOMAIN", "ENABLED", "DESCRIPTION"),
                       [(p.id, p.name, p.domain_id, p.enabled, p.description) for p in found]), file=out)


def _print_users(out: TextIO, found: Sequence[User]) -> None:
    print(format_table(("ID", "NAME", "DOMAIN", "ENABLED", "DEFAULT PROJECT"),
                       [(u.id, u.name, u.domain_id, u.enabled, u.default_project_id) for u in found]), file=out)


async def _project(store: IdentityStore, name_or_id: str) -> Project:
    found = await store.find_project(ProjectRef(id=name_or_id)) or await store.find_project(ProjectRef(name=name_or_id))
    if found is None:
        raise NotFound(f"No project with id or name {name_or_id!r}.")
    return found


async def _user(store: IdentityStore, name_or_id: str) -> User:
    found = await store.find_user(UserRef(id=name_or_id)) or await store.find_user(UserRef(name=name_or_id))
    if found is None:
        raise NotFound(f"No user with id or name {name_or_id!r}.")
    return found


async def _role(store: IdentityStore, name_or_id: str) -> Role:
    for role in await store.list_roles():
        if name_or_id in (role.id, role.name):
            return role
    raise NotFound(f"No role with id or name {name_or_id!r}.")
