"""Token format and signing keys: sign/verify, tampering, expiry, key rotation across server copies."""

import base64
import json
import secrets
from datetime import UTC, datetime, timedelta

import jwt
import pytest
import pytest_asyncio

import neutrino.db.schema.identity  # noqa: F401  (registers the identity tables on the metadata)
from neutrino.db.engine import Database
from neutrino.db.schema.base import metadata
from neutrino.errors import Unauthenticated
from neutrino.identity.model import TokenClaims
from neutrino.identity.tokens import (
    ExpiringCache,
    SigningKey,
    SigningKeyRing,
    decode_token,
    encode_token,
    format_time,
    new_audit_id,
    read_key_id,
)

NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
KEY = SigningKey(id="k1", secret=b"\x01" * 32, created_at=NOW)


def _claims(**changes):
    values = dict(user_id="u" * 32, project_id="p" * 32, roles=("member", "reader"), audit_id="a" * 22,
                  issued_at=NOW, expires_at=NOW + timedelta(hours=1))
    values.update(changes)
    return TokenClaims(**values)


def test_token_round_trips_its_claims():
    claims = _claims(methods=("token",), parent_audit_id="b" * 22)
    token = encode_token(claims, KEY)
    assert read_key_id(token) == "k1"
    assert decode_token(token, KEY.secret, NOW) == claims


def test_unscoped_token_round_trips_without_project():
    claims = _claims(project_id=None, roles=())
    assert decode_token(encode_token(claims, KEY), KEY.secret, NOW) == claims


def test_token_signed_with_another_key_is_rejected():
    token = encode_token(_claims(), KEY)
    with pytest.raises(Unauthenticated):
        decode_token(token, b"\x02" * 32, NOW)


def test_tampered_payload_is_rejected():
    header, payload, signature = encode_token(_claims(), KEY).split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["rol"] = ["admin"]
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    with pytest.raises(Unauthenticated):
        decode_token(f"{header}.{forged}.{signature}", KEY.secret, NOW)


def test_unsigned_token_is_rejected():
    payload = {"sub": "u", "rol": ["admin"], "aid": "a", "mth": ["password"], "iat": 0, "exp": 2**40}
    token = jwt.encode(payload, None, algorithm="none", headers={"kid": "k1"})
    with pytest.raises(Unauthenticated):
        read_key_id(token)
    with pytest.raises(Unauthenticated):
        decode_token(token, KEY.secret, NOW)


def test_token_is_valid_until_the_second_it_expires():
    claims = _claims()
    token = encode_token(claims, KEY)
    assert decode_token(token, KEY.secret, claims.expires_at - timedelta(microseconds=1)) == claims
    with pytest.raises(Unauthenticated, match="expired"):
        decode_token(token, KEY.secret, claims.expires_at)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "é.é.é", "eyJhbGciOiJIUzI1NiJ9.e30.x"])
def test_garbage_is_rejected_not_crashing(garbage):
    with pytest.raises(Unauthenticated):
        read_key_id(garbage)
    with pytest.raises(Unauthenticated):
        decode_token(garbage, KEY.secret, NOW)


def test_signed_token_with_wrong_claim_types_is_rejected():
    token = jwt.encode({"sub": 5, "rol": "admin", "aid": "a", "mth": [], "iat": 0, "exp": 2**40},
                       KEY.secret, algorithm="HS256", headers={"kid": "k1"})
    with pytest.raises(Unauthenticated):
        decode_token(token, KEY.secret, NOW)


def test_time_format_is_the_one_tempest_parses():
    text = format_time(datetime(2026, 11, 22, 10, 0, tzinfo=UTC))
    assert text == "2026-11-22T10:00:00.000000Z"
    assert datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")


def test_audit_ids_are_22_url_safe_characters():
    audit_id = new_audit_id(secrets.token_bytes)
    assert len(audit_id) == 22
    assert set(audit_id) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_cache_forgets_entries_at_their_deadline():
    cache: ExpiringCache[int] = ExpiringCache()
    cache.put("a", 1, until=NOW + timedelta(seconds=5), now=NOW)
    assert cache.get("a", NOW + timedelta(seconds=4)) == 1
    assert cache.get("a", NOW + timedelta(seconds=5)) is None
    assert len(cache) == 0


def test_cache_stays_bounded_dropping_the_oldest_entry():
    cache: ExpiringCache[int] = ExpiringCache(max_entries=2)
    for i, key in enumerate("abc"):
        cache.put(key, i, until=NOW + timedelta(seconds=60), now=NOW)
    assert len(cache) == 2
    assert cache.get("a", NOW) is None
    assert cache.get("c", NOW) == 2


# ---- signing keys in the database ---------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="function")
async def db(tmp_path):
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'identity.sqlite'}")
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.mark.asyncio(loop_scope="function")
async def test_first_signing_key_is_created_once_and_shared_by_server_copies(db):
    first, second = SigningKeyRing(db, random_bytes=secrets.token_bytes), SigningKeyRing(db, random_bytes=secrets.token_bytes)
    key = await first.signing_key(NOW)
    assert (await second.signing_key(NOW)).id == key.id
    assert await second.verification_secret(key.id, NOW) == key.secret


@pytest.mark.asyncio(loop_scope="function")
async def test_key_created_by_another_copy_is_found_on_a_cache_miss(db):
    ring, other = SigningKeyRing(db, random_bytes=secrets.token_bytes), SigningKeyRing(db, random_bytes=secrets.token_bytes)
    await ring.signing_key(NOW)
    new_key = await other.rotate(NOW + timedelta(seconds=10), retire_older_than=timedelta(hours=2))
    assert await ring.verification_secret(new_key.id, NOW + timedelta(seconds=10)) == new_key.secret


@pytest.mark.asyncio(loop_scope="function")
async def test_rotation_signs_with_the_new_key_and_retires_old_ones_everywhere(db):
    ring, other = SigningKeyRing(db, random_bytes=secrets.token_bytes), SigningKeyRing(db, random_bytes=secrets.token_bytes)
    old = await ring.signing_key(NOW)
    assert await other.verification_secret(old.id, NOW) is not None
    later = NOW + timedelta(hours=3)
    new = await ring.rotate(later, retire_older_than=timedelta(hours=2))
    assert (await ring.signing_key(later)).id == new.id
    assert await ring.verification_secret(old.id, later) is None
    # The other copy still trusts its cached keys for a while, then follows the database.
    assert await other.verification_secret(old.id, later + timedelta(minutes=2)) is None


@pytest.mark.asyncio(loop_scope="function")
async def test_unknown_key_ids_do_not_hit_the_database_more_than_once_a_second(db):
    ring = SigningKeyRing(db, random_bytes=secrets.token_bytes)
    await ring.signing_key(NOW)
    assert await ring.verification_secret("forged", NOW) is None
    # Insert a key behind the ring's back: within the miss interval it is not looked up again...
    other_key = await SigningKeyRing(db, random_bytes=secrets.token_bytes).rotate(
        NOW, retire_older_than=timedelta(hours=2))
    assert await ring.verification_secret(other_key.id, NOW + timedelta(milliseconds=500)) is None
    # ...after it, it is.
    assert await ring.verification_secret(other_key.id, NOW + timedelta(seconds=1)) == other_key.secret

