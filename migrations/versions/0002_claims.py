"""Claims, so concurrent writers (`scan` beside `watch`, two scans) never tag one content
twice for one model version; and an index for queries by tag.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from dtindex_migrations.columns import BIG

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "claims",
        sa.Column("model_version_id", sa.Integer, primary_key=True),
        sa.Column("content_id", sa.Integer, primary_key=True),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("expires_ns", BIG, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_scores_tag", "scores", ["model_version_id", "tag_idx", "score"])


def downgrade() -> None:
    op.drop_index("ix_scores_tag", "scores")
    op.drop_table("claims")
