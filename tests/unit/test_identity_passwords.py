"""Password hashing with argon2id: real hashes, real verification (production parameters)."""

from argon2 import PasswordHasher

from neutrino.identity.passwords import PasswordHashing


async def test_hash_verifies_with_the_right_password_only():
    hashing = PasswordHashing()
    stored = await hashing.hash("correct horse")
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    assert await hashing.verify(stored, "correct horse")
    assert not await hashing.verify(stored, "wrong horse")


async def test_same_password_hashes_differently_each_time():
    hashing = PasswordHashing()
    assert await hashing.hash("pw") != await hashing.hash("pw")


async def test_missing_hash_never_verifies():
    assert not await PasswordHashing().verify(None, "")


async def test_garbage_hash_never_verifies():
    assert not await PasswordHashing().verify("not-a-hash", "pw")


async def test_hash_made_with_weaker_parameters_needs_rehash():
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    strong = PasswordHashing()
    assert strong.needs_rehash(weak.hash("pw"))
    assert not strong.needs_rehash(await strong.hash("pw"))
