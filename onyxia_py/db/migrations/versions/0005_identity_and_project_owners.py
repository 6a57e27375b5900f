"""One account per username, role re-checks, and the owner of every project namespace.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

Existing databases may hold two accounts with one username (a second subject at the provider,
or a recycled name). The oldest keeps the name; the others are renamed `<name>#<id>`, so their
next login is refused with a clear message instead of sharing the first one's namespace.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _rename_duplicate_usernames() -> None:
    users = sa.table("users", sa.column("id", sa.Integer()), sa.column("username", sa.String(255)))
    bind = op.get_bind()
    kept: set[str] = set()
    for row in bind.execute(sa.select(users.c.id, users.c.username).order_by(users.c.id)):
        if row.username in kept:
            bind.execute(
                users.update()
                .where(users.c.id == row.id)
                .values(username=f"{row.username}#{row.id}"[:255])
            )
        else:
            kept.add(row.username)


def upgrade() -> None:
    _rename_duplicate_usernames()
    op.drop_index("ix_users_username", table_name="users")
    op.create_index("ix_users_username", "users", ["username"], unique=True)
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("roles_checked_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("grant_sealed", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("tokens_suspended_at", sa.DateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "project_owners",
        sa.Column("namespace", sa.String(63), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("issuer", sa.String(512), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("project_owners")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("tokens_suspended_at")
        batch.drop_column("grant_sealed")
        batch.drop_column("roles_checked_at")
    op.drop_index("ix_users_username", table_name="users")
    op.create_index("ix_users_username", "users", ["username"])
