"""Embeddings, tag categories by name, and per-tag thresholds.

Some models publish a second output, an embedding per picture, that finds pictures by
likeness (`dtindex similar`); it is kept as float16 bytes, one row per (model version,
content). Tag lists now name categories beyond Danbooru's numbered ones (year, quality,
model...), so a tag's category is stored as its name; the numbers stored before this
revision are named as the CSV lists numbered them. Some lists carry a threshold per
tag that their authors measured (`best_threshold`); it is kept beside the tag.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Danbooru's category numbers as `selected_tags.csv` uses them, frozen as of this revision
# (indexer.models.taglist.CATEGORY_NAMES may grow; what was stored then may not change).
_NAMES = {0: "general", 1: "artist", 3: "copyright", 4: "character", 5: "meta", 9: "rating"}


def upgrade() -> None:
    op.create_table(
        "embeddings",
        sa.Column(
            "model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"), primary_key=True
        ),
        sa.Column("content_id", sa.Integer, sa.ForeignKey("contents.id"), primary_key=True),
        sa.Column("vector", sa.LargeBinary, nullable=False),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("tags", recreate="always") as batch:
        batch.alter_column(
            "category", type_=sa.Text, existing_type=sa.Integer, postgresql_using="category::text"
        )
        batch.add_column(sa.Column("threshold", sa.Float))
    cases = " ".join(f"WHEN {code} THEN '{name}'" for code, name in _NAMES.items())
    op.execute(
        f"UPDATE tags SET category = CASE CAST(category AS INTEGER) {cases} "
        "ELSE CAST(category AS TEXT) END WHERE category IS NOT NULL"
    )


def downgrade() -> None:
    cases = " ".join(f"WHEN '{name}' THEN {code}" for code, name in _NAMES.items())
    op.execute(f"UPDATE tags SET category = CASE category {cases} ELSE NULL END")
    with op.batch_alter_table("tags", recreate="always") as batch:
        batch.drop_column("threshold")
        batch.alter_column(
            "category",
            type_=sa.Integer,
            existing_type=sa.Text,
            postgresql_using="category::integer",
        )
    op.drop_table("embeddings")
