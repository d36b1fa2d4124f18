"""The by-tag index holds only scores of at least 0.1, the lowest threshold searches use
by default: most of a model's stored scores sit between 0.01 and 0.1, and each indexed
score is a write to a random page of the index, so the full index made writing a
picture's scores slower the bigger the gallery grew. Scores below 0.1 stay stored (for
exports at low thresholds); searches below 0.1 read them without the index.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_scores_tag", "scores")
    op.create_index(
        "ix_scores_tag",
        "scores",
        ["model_version_id", "tag_idx", "score"],
        sqlite_where=sa.text("score >= 0.1"),
        postgresql_where=sa.text("score >= 0.1"),
    )


def downgrade() -> None:
    op.drop_index("ix_scores_tag", "scores")
    op.create_index("ix_scores_tag", "scores", ["model_version_id", "tag_idx", "score"])
