"""The identity store against a real (temporary) SQLite database: bootstrap, login, token lifecycle."""

from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from argon2 import PasswordHasher

import neutrino.db.schema.identity  # noqa: F401  (registers the identity tables on the metadata)
from neutrino.db.engine import Database
from neutrino.db.schema.base import metadata
from neutrino.errors import BadRequest, Conflict, NotFound, Unauthenticated
from neutrino.identity.model import ProjectRef, UserRef
from neutrino.identity.passwords import PasswordHashing
from neutrino.identity.store import SERVICE_USER_NAME, IdentityStore, bootstrap

pytestmark = pytest.mark.asyncio(loop_scope="function")


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _cheap_hashing() -> PasswordHashing:
    # Real argon2id, test-sized: these tests are about the store, not the hash's cost.
    return PasswordHashing(PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1))


@pytest_asyncio.fixture(loop_scope="function")
async def db(tmp_path):
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'identity.sqlite'}")
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def clock():
    return FakeClock()


def _store(db, clock, **kwargs):
    return IdentityStore(db, clock=clock, hashing=_cheap_hashing(), token_ttl_seconds=3600, **kwargs)


@pytest_asyncio.fixture(loop_scope="function")
async def store(db, clock):
    identity = _store(db, clock)
    await bootstrap(db, admin_password="admin-pw", demo_password="demo-pw", service_password="svc-pw",
                    store=identity)
    return identity


async def _login(store, name, password, project):
    return await store.authenticate(UserRef(name=name, domain_name="Default"), password,
                                    ProjectRef(name=project, domain_name="Default"))


# ---- bootstrap -----------------------------------------------------------------------------------


async def test_bootstrap_creates_the_standard_identity(db, clock):
    store = _store(db, clock)
    result = await bootstrap(db, admin_password="a", demo_password="d", service_password="s", store=store)
    assert {r.name for r in await store.list_roles()} == {"admin", "manager", "member", "reader", "service"}
    assert {p.name for p in await store.list_projects()} == {"admin", "demo", "service"}
    assert {u.name for u in await store.list_users()} == {"admin", "demo", SERVICE_USER_NAME}
    assert await store.has_role(result.admin_project_id, result.admin_user_id, result.role_ids["admin"])
    assert await store.has_role(result.demo_project_id, result.demo_user_id, result.role_ids["member"])
    assert await store.has_role(result.service_project_id, result.service_user_id, result.role_ids["service"])
    assert [d.name for d in await store.list_domains()] == ["Default"]
    assert "user admin" in result.created


async def test_bootstrap_twice_changes_nothing(db, clock):
    store = _store(db, clock)
    first = await bootstrap(db, admin_password="a", demo_password="d", store=store)
    second = await bootstrap(db, admin_password="a", demo_password="d", store=store)
    assert second.created == ()
    assert (second.admin_user_id, second.demo_project_id, second.role_ids) == (
        first.admin_user_id, first.demo_project_id, first.role_ids)
    assert len(await store.list_role_assignments()) == 2


async def test_bootstrap_without_optional_passwords_makes_only_admin(db, clock):
    store = _store(db, clock)
    result = await bootstrap(db, admin_password="a", store=store)
    assert result.demo_user_id is None and result.service_user_id is None
    assert [u.name for u in await store.list_users()] == ["admin"]


async def test_bootstrap_resets_a_changed_admin_password(db, clock):
    store = _store(db, clock)
    result = await bootstrap(db, admin_password="first", store=store)
    await store.update_user(result.admin_user_id, password="changed", enabled=False)
    await bootstrap(db, admin_password="first", store=store)
    token = await _login(store, "admin", "first", "admin")
    assert token.subject.user.id == result.admin_user_id


# ---- password authentication ---------------------------------------------------------------------


async def test_admin_login_gets_expanded_roles_and_an_hour(store, clock):
    token = await _login(store, "admin", "admin-pw", "admin")
    assert token.subject.roles == ("admin", "manager", "member", "reader")
    assert token.claims.roles == token.subject.roles
    assert token.subject.project.name == "admin"
    assert token.claims.expires_at - token.claims.issued_at == timedelta(hours=1)
    assert token.claims.issued_at == clock.now.replace(microsecond=0)


async def test_member_login_gets_member_and_reader(store):
    token = await _login(store, "demo", "demo-pw", "demo")
    assert token.subject.roles == ("member", "reader")


async def test_login_by_ids_with_domain_ids(store):
    user = (await store.list_users(name="demo"))[0]
    project = (await store.list_projects(name="demo"))[0]
    token = await store.authenticate(UserRef(id=user.id, domain_id="default"), "demo-pw",
                                     ProjectRef(id=project.id, domain_id="default"))
    assert (token.subject.user.id, token.subject.project.id) == (user.id, project.id)


@pytest.mark.parametrize("user,password", [
    (UserRef(name="demo"), "wrong"),
    (UserRef(name="nobody"), "demo-pw"),
    (UserRef(name="demo", domain_name="Elsewhere"), "demo-pw"),
    (UserRef(id="0" * 32), "demo-pw"),
])
async def test_failed_logins_all_look_the_same(store, user, password):
    with pytest.raises(Unauthenticated) as err:
        await store.authenticate(user, password, ProjectRef(name="demo"))
    assert err.value.msg == "The request you have made requires authentication."


async def test_login_to_a_project_without_a_role_is_refused(store):
    with pytest.raises(Unauthenticated, match="no role"):
        await _login(store, "demo", "demo-pw", "admin")


async def test_login_to_an_unknown_project_is_refused(store):
    with pytest.raises(Unauthenticated):
        await _login(store, "demo", "demo-pw", "nowhere")


async def test_disabled_user_cannot_log_in(store):
    user = (await store.list_users(name="demo"))[0]
    await store.update_user(user.id, enabled=False)
    with pytest.raises(Unauthenticated):
        await _login(store, "demo", "demo-pw", "demo")


async def test_login_without_scope_uses_the_default_project(store):
    token = await store.authenticate(UserRef(name="demo"), "demo-pw")
    assert token.subject.project.name == "demo"


async def test_explicitly_unscoped_login_has_no_project_and_no_roles(store):
    token = await store.authenticate(UserRef(name="demo"), "demo-pw", unscoped=True)
    assert token.subject.project is None and token.claims.project_id is None
    assert token.subject.roles == ()


async def test_changed_password_takes_effect(store):
    user = (await store.list_users(name="demo"))[0]
    await store.update_user(user.id, password="new-pw")
    await _login(store, "demo", "new-pw", "demo")
    with pytest.raises(Unauthenticated):
        await _login(store, "demo", "demo-pw", "demo")


# ---- token validation ----------------------------------------------------------------------------


async def test_another_server_copy_validates_the_token(store, db, clock):
    token = await _login(store, "demo", "demo-pw", "demo")
    other = _store(db, clock)
    validated = await other.validate_token(token.id)
    assert validated.subject == token.subject
    assert validated.claims == token.claims


async def test_expired_token_is_rejected(store, db, clock):
    token = await _login(store, "demo", "demo-pw", "demo")
    clock.advance(3599)
    await store.validate_token(token.id)
    clock.advance(1)
    with pytest.raises(Unauthenticated, match="expired"):
        await store.validate_token(token.id)
    with pytest.raises(Unauthenticated, match="expired"):
        await _store(db, clock).validate_token(token.id)


async def test_revoked_token_is_rejected_by_every_copy(store, db, clock):
    token = await _login(store, "demo", "demo-pw", "demo")
    other = _store(db, clock, validation_cache_seconds=5)
    await other.validate_token(token.id)
    await store.revoke_token(token)
    with pytest.raises(Unauthenticated, match="revoked"):
        await store.validate_token(token.id)
    # The other copy may answer from its cache for a few seconds, then sees the revocation.
    clock.advance(5)
    with pytest.raises(Unauthenticated, match="revoked"):
        await other.validate_token(token.id)


async def test_revoking_twice_is_harmless(store, db, clock):
    token = await _login(store, "demo", "demo-pw", "demo")
    other = await _login(store, "demo", "demo-pw", "demo")
    await store.revoke_token(token)
    await store.revoke_token(token)  # neither an error nor an un-revoke
    for copy in (store, _store(db, clock)):
        with pytest.raises(Unauthenticated, match="revoked"):
            await copy.validate_token(token.id)
        # The same user's other token is untouched by either revocation.
        assert (await copy.validate_token(other.id)).subject.user.name == "demo"


async def test_revoking_a_token_revokes_tokens_rescoped_from_it(store):
    unscoped = await store.authenticate(UserRef(name="demo"), "demo-pw", unscoped=True)
    scoped = await store.authenticate_with_token(unscoped.id, ProjectRef(name="demo"))
    assert scoped.subject.project.name == "demo"
    assert scoped.claims.methods == ("token",)
    assert scoped.claims.expires_at <= unscoped.claims.expires_at
    await store.revoke_token(unscoped)
    with pytest.raises(Unauthenticated, match="revoked"):
        await store.validate_token(scoped.id)


async def test_deleting_the_user_invalidates_its_tokens(store):
    token = await _login(store, "demo", "demo-pw", "demo")
    await store.delete_user(token.subject.user.id)
    with pytest.raises(Unauthenticated, match="user does not exist"):
        await store.validate_token(token.id)


async def test_deleting_the_project_invalidates_tokens_scoped_to_it(store):
    token = await _login(store, "demo", "demo-pw", "demo")
    await store.delete_project(token.subject.project.id)
    with pytest.raises(Unauthenticated, match="project does not exist"):
        await store.validate_token(token.id)


async def test_roles_follow_assignment_changes(store):
    token = await _login(store, "demo", "demo-pw", "demo")
    roles = {r.name: r.id for r in await store.list_roles()}
    user_id, project_id = token.subject.user.id, token.subject.project.id
    await store.assign_role(project_id, user_id, roles["admin"])
    assert "admin" in (await store.validate_token(token.id)).subject.roles
    await store.unassign_role(project_id, user_id, roles["admin"])
    await store.unassign_role(project_id, user_id, roles["member"])
    with pytest.raises(Unauthenticated, match="no role"):
        await store.validate_token(token.id)


async def test_token_from_a_foreign_key_is_rejected(store, tmp_path, clock):
    foreign_db = Database(f"sqlite+aiosqlite:///{tmp_path / 'foreign.sqlite'}")
    try:
        async with foreign_db.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        foreign = _store(foreign_db, clock)
        await bootstrap(foreign_db, admin_password="admin-pw", store=foreign)
        token = await _login(foreign, "admin", "admin-pw", "admin")
    finally:
        await foreign_db.dispose()
    with pytest.raises(Unauthenticated):
        await store.validate_token(token.id)


# ---- projects, users, roles, assignments ---------------------------------------------------------


async def test_duplicate_project_name_in_a_domain_conflicts(store):
    await store.create_project("p1")
    with pytest.raises(Conflict):
        await store.create_project("p1")


async def test_project_in_unknown_domain_is_not_found(store):
    with pytest.raises(NotFound):
        await store.create_project("p1", domain_id="nowhere")


async def test_blank_names_are_bad_requests(store):
    with pytest.raises(BadRequest):
        await store.create_project(" ")
    with pytest.raises(BadRequest):
        await store.create_user("", password="x")


async def test_project_ids_are_32_hex(store):
    project = await store.create_project("p1")
    assert len(project.id) == 32 and int(project.id, 16) >= 0


async def test_user_with_unknown_default_project_is_a_bad_request(store):
    with pytest.raises(BadRequest):
        await store.create_user("u1", password="x", default_project_id="0" * 32)


async def test_update_project_renames_and_detects_conflicts(store):
    project = await store.create_project("p1", description="one")
    await store.create_project("p2")
    updated = await store.update_project(project.id, name="p3", enabled=False)
    assert (updated.name, updated.description, updated.enabled) == ("p3", "one", False)
    assert await store.get_project(project.id) == updated
    with pytest.raises(Conflict):
        await store.update_project(project.id, name="p2")


async def test_role_assignment_is_idempotent_and_checked(store):
    project = await store.create_project("p1")
    user = await store.create_user("u1", password="pw")
    role = (await store.list_roles(name="member"))[0]
    assert await store.assign_role(project.id, user.id, role.id) is True
    assert await store.assign_role(project.id, user.id, role.id) is False
    assert await store.has_role(project.id, user.id, role.id)
    assert [p.id for p in await store.list_user_projects(user.id)] == [project.id]
    with pytest.raises(NotFound):
        await store.assign_role(project.id, user.id, "0" * 32)


async def test_deleting_a_project_drops_its_assignments(store):
    project = await store.create_project("p1")
    user = await store.create_user("u1", password="pw")
    role = (await store.list_roles(name="member"))[0]
    await store.assign_role(project.id, user.id, role.id)
    await store.delete_project(project.id)
    assert await store.list_role_assignments(user_id=user.id) == []
    with pytest.raises(NotFound):
        await store.delete_project(project.id)


async def test_effective_assignments_include_implied_roles(store):
    admin = (await store.list_users(name="admin"))[0]
    roles = {r.id: r.name for r in await store.list_roles()}
    direct = await store.list_role_assignments(user_id=admin.id)
    effective = await store.list_role_assignments(user_id=admin.id, effective=True)
    assert [roles[a.role_id] for a in direct] == ["admin"]
    assert sorted(roles[a.role_id] for a in effective) == ["admin", "manager", "member", "reader"]
    assert all(a.prior_role_id is not None for a in effective if roles[a.role_id] != "admin")


async def test_deleting_a_role_drops_its_assignments(store):
    role = await store.create_role("custom")
    demo = (await store.list_users(name="demo"))[0]
    await store.assign_role(demo.default_project_id, demo.id, role.id)
    await store.delete_role(role.id)
    assert role.id not in {a.role_id for a in await store.list_role_assignments()}
    with pytest.raises(Conflict):
        await store.create_role("member")
