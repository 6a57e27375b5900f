"""Catalogue revisions: what each replica polls to learn which catalogues changed.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

One row per catalogue that ever changed, with a fresh random revision written in the same
transaction as the change (removals keep their row), or by the leader when a refresh found a
new index. A replica reloads each catalogue whose revision differs from the one it last saw.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalog_revisions",
        sa.Column("catalog_id", sa.String(63), primary_key=True),
        sa.Column("revision", sa.String(32), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("catalog_revisions")
