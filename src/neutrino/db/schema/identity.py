"""Tables of the embedded identity service (a Keystone v3 subset).

Everything the identity needs lives in the shared database, including the token signing keys, so
any number of server copies issue and validate each other's tokens without sharing files.
Only the ``default`` domain exists; :data:`DEFAULT_DOMAIN_ROW` is the row the migration seeds (and
:func:`neutrino.identity.store.bootstrap` inserts when it is missing).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from neutrino.db.schema.base import NAME_LEN, metadata

# Keystone ids are 32 hex characters; domain ids such as "default" are free-form, up to 64.
IDENTITY_ID_LEN = 64
DEFAULT_DOMAIN_ID = "default"
DEFAULT_DOMAIN_NAME = "Default"
DEFAULT_DOMAIN_ROW = {
    "id": DEFAULT_DOMAIN_ID,
    "name": DEFAULT_DOMAIN_NAME,
    "description": "The default domain",
    "enabled": True,
}

domains = Table(
    "domains", metadata,
    Column("id", String(IDENTITY_ID_LEN), primary_key=True),
    Column("name", String(NAME_LEN), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("enabled", Boolean, nullable=False, default=True),
)

projects = Table(
    "projects", metadata,
    Column("id", String(IDENTITY_ID_LEN), primary_key=True),
    Column("name", String(NAME_LEN), nullable=False),
    Column("domain_id", String(IDENTITY_ID_LEN), ForeignKey("domains.id"), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("enabled", Boolean, nullable=False, default=True),
    UniqueConstraint("domain_id", "name"),
)

users = Table(
    "users", metadata,
    Column("id", String(IDENTITY_ID_LEN), primary_key=True),
    Column("name", String(NAME_LEN), nullable=False),
    Column("domain_id", String(IDENTITY_ID_LEN), ForeignKey("domains.id"), nullable=False),
    # argon2id PHC string; NULL means the user cannot log in with a password.
    Column("password_hash", String(255), nullable=True),
    Column("enabled", Boolean, nullable=False, default=True),
    # Not a foreign key: Keystone keeps the reference when the project goes away.
    Column("default_project_id", String(IDENTITY_ID_LEN), nullable=True),
    Column("description", Text, nullable=False, default=""),
    UniqueConstraint("domain_id", "name"),
)

roles = Table(
    "roles", metadata,
    Column("id", String(IDENTITY_ID_LEN), primary_key=True),
    Column("name", String(NAME_LEN), nullable=False, unique=True),
)

role_assignments = Table(
    "role_assignments", metadata,
    Column("project_id", String(IDENTITY_ID_LEN), ForeignKey("projects.id", ondelete="CASCADE"),
           primary_key=True),
    Column("user_id", String(IDENTITY_ID_LEN), ForeignKey("users.id", ondelete="CASCADE"),
           primary_key=True, index=True),
    Column("role_id", String(IDENTITY_ID_LEN), ForeignKey("roles.id", ondelete="CASCADE"),
           primary_key=True),
)

signing_keys = Table(
    "signing_keys", metadata,
    Column("id", String(IDENTITY_ID_LEN), primary_key=True),
    # Hex of a random HMAC key. Anyone who can read this table can mint tokens: protect the database.
    Column("secret", String(255), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("active", Boolean, nullable=False, default=True),
)

revoked_tokens = Table(
    "revoked_tokens", metadata,
    Column("audit_id", String(IDENTITY_ID_LEN), primary_key=True),
    # Kept until the revoked token would have expired anyway; pruned after that.
    Column("expires_at", DateTime, nullable=False, index=True),
)
