"""${message}

Revision ID: ${up_revision}
Revises: ${comma(down_revision) if down_revision else "(none)"}
Create Date: ${create_date}
"""

import sqlalchemy as sa
from alembic import op
% if imports:
${imports}
% endif

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}
% if not down_revision:
<% from neutrino.db.schema.identity import DEFAULT_DOMAIN_ROW %>\
    # Data: the identity's default domain exists from the first schema on (as Keystone's does).
    domains = sa.table("domains", sa.column("id", sa.String), sa.column("name", sa.String),
                       sa.column("description", sa.Text), sa.column("enabled", sa.Boolean))
    op.bulk_insert(domains, [${repr(DEFAULT_DOMAIN_ROW)}])
% endif


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
