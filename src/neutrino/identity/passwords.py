"""Password hashing (argon2id) off the event loop, with bounded memory.

Each argon2 hash with the RFC 9106 low-memory profile takes ~64 MiB and ~0.1 s of CPU, so hashing
runs in worker threads and at most ``max_concurrent`` at a time: a burst of logins queues instead
of exhausting memory. Verification of an unknown user still costs one hash (against a dummy), so
response time does not reveal which user names exist. Passwords are never logged.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# Any fixed string: only its hashing cost matters.
_DUMMY_PASSWORD = "neutrino-dummy-password-for-unknown-users"


class PasswordHashing:
    """Hash and verify passwords; safe to share between tasks of one event loop."""

    def __init__(self, hasher: PasswordHasher | None = None, *, max_concurrent: int = 2) -> None:
        self._hasher = hasher or PasswordHasher()
        self._slots = asyncio.Semaphore(max_concurrent)
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """True when ``password`` matches; a missing hash burns the same time and says False."""
        if stored_hash is None:
            if self._dummy_hash is None:
                self._dummy_hash = await self.hash(_DUMMY_PASSWORD)
            await self._verify(self._dummy_hash, password)
            return False
        return await self._verify(stored_hash, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when the hash was made with other parameters than this hasher's (upgrade on login)."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except (InvalidHashError, ValueError):
            return True

    async def _verify(self, stored_hash: str, password: str) -> bool:
        async with self._slots:
            try:
                return await asyncio.to_thread(self._hasher.verify, stored_hash, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False
