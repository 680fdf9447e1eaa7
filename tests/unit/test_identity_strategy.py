"""Token strategies: headers in, RequestContext out (embedded and noauth; keystone is tested end to end)."""

import pytest
import pytest_asyncio
from argon2 import PasswordHasher

import neutrino.db.schema.identity  # noqa: F401  (registers the identity tables on the metadata)
from neutrino.config import ConfigError, IdentitySettings, Settings
from neutrino.db.engine import Database
from neutrino.db.schema.base import metadata
from neutrino.errors import Unauthenticated
from neutrino.identity.model import ProjectRef, UserRef
from neutrino.identity.passwords import PasswordHashing
from neutrino.identity.store import IdentityStore, bootstrap
from neutrino.identity.strategy import (
    EmbeddedStrategy,
    KeystoneStrategy,
    NoAuthStrategy,
    build_token_strategy,
)


@pytest_asyncio.fixture(loop_scope="function")
async def db(tmp_path):
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'identity.sqlite'}")
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    try:
        yield database
    finally:
        await database.dispose()


@pytest_asyncio.fixture(loop_scope="function")
async def store(db):
    identity = IdentityStore(db, hashing=PasswordHashing(PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)))
    await bootstrap(db, admin_password="admin-pw", demo_password="demo-pw", store=identity)
    return identity


@pytest.mark.asyncio(loop_scope="function")
async def test_embedded_token_becomes_the_callers_context(store):
    token = await store.authenticate(UserRef(name="demo"), "demo-pw", ProjectRef(name="demo"))
    context = await EmbeddedStrategy(store).validate({"X-Auth-Token": token.id}, "req-1")
    assert context.user_id == token.subject.user.id
    assert context.project_id == token.subject.project.id
    assert context.roles == {"member", "reader"}
    assert (context.request_id, context.user_name, context.project_name) == ("req-1", "demo", "demo")
    assert not context.is_admin


@pytest.mark.asyncio(loop_scope="function")
async def test_embedded_admin_token_is_admin(store):
    token = await store.authenticate(UserRef(name="admin"), "admin-pw", ProjectRef(name="admin"))
    context = await EmbeddedStrategy(store).validate({"x-auth-token": token.id}, "req-1")
    assert context.is_admin and {"member", "reader"} <= context.roles


@pytest.mark.asyncio(loop_scope="function")
async def test_embedded_refuses_unscoped_tokens(store):
    token = await store.authenticate(UserRef(name="demo"), "demo-pw", unscoped=True)
    with pytest.raises(Unauthenticated, match="project-scoped"):
        await EmbeddedStrategy(store).validate({"x-auth-token": token.id}, "req-1")


@pytest.mark.asyncio(loop_scope="function")
@pytest.mark.parametrize("headers", [{}, {"x-auth-token": ""}, {"x-auth-token": "garbage"}])
async def test_embedded_refuses_missing_or_bad_tokens(store, headers):
    with pytest.raises(Unauthenticated):
        await EmbeddedStrategy(store).validate(headers, "req-1")


@pytest.mark.asyncio(loop_scope="function")
async def test_embedded_sees_revocation_made_through_the_shared_store_at_once(store):
    token = await store.authenticate(UserRef(name="demo"), "demo-pw", ProjectRef(name="demo"))
    strategy = EmbeddedStrategy(store)
    await strategy.validate({"x-auth-token": token.id}, "req-1")
    await store.revoke_token(token)
    with pytest.raises(Unauthenticated, match="revoked"):
        await strategy.validate({"x-auth-token": token.id}, "req-2")


def test_noauth_cannot_be_built_unless_configured():
    with pytest.raises(ConfigError):
        NoAuthStrategy(IdentitySettings())
    with pytest.raises(ConfigError):
        NoAuthStrategy(IdentitySettings(strategy="keystone"))


async def test_noauth_trusts_identity_headers_and_expands_roles():
    strategy = NoAuthStrategy(IdentitySettings(strategy="noauth"))
    context = await strategy.validate({"X-Project-Id": "p1", "X-User-Id": "u1", "X-Roles": "admin"}, "r")
    assert (context.project_id, context.user_id) == ("p1", "u1")
    assert context.roles == {"admin", "manager", "member", "reader"}


async def test_noauth_defaults_to_a_member():
    context = await NoAuthStrategy(IdentitySettings(strategy="noauth")).validate({"x-project-id": "p1"}, "r")
    assert context.roles == {"member", "reader"} and context.user_id == "noauth"


async def test_noauth_still_needs_a_project():
    with pytest.raises(Unauthenticated):
        await NoAuthStrategy(IdentitySettings(strategy="noauth")).validate({}, "r")


@pytest.mark.asyncio(loop_scope="function")
async def test_strategy_is_chosen_by_name(db, store):
    settings = Settings()
    assert isinstance(build_token_strategy(db, settings, store=store), EmbeddedStrategy)
    settings.identity.strategy = "noauth"
    assert isinstance(build_token_strategy(db, settings), NoAuthStrategy)
    settings.identity.strategy = "keystone"
    settings.identity.keystone_url = "http://127.0.0.1:1/identity"
    strategy = build_token_strategy(db, settings)
    assert isinstance(strategy, KeystoneStrategy)
    await strategy.close()
    settings.identity.strategy = "magic"
    with pytest.raises(ConfigError):
        build_token_strategy(db, settings)


def test_keystone_strategy_needs_a_url():
    with pytest.raises(ConfigError):
        KeystoneStrategy(IdentitySettings(strategy="keystone"))
