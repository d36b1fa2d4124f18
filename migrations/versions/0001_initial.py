"""Initial schema: roots, files, contents, model versions, tags, taggings, scores.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from dtindex_migrations.columns import BIG

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "roots",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("path", sa.LargeBinary, nullable=False, unique=True),
        sa.Column("device", BIG),
        sa.Column("scanned_ns", BIG),
    )
    op.create_table(
        "contents",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("xxh128", sa.String(32), nullable=False, unique=True),
        sa.Column("sha1", sa.String(40), nullable=False),
        sa.Column("size", BIG, nullable=False),
        sa.Column("width", sa.Integer),
        sa.Column("height", sa.Integer),
    )
    op.create_index("ix_contents_sha1", "contents", ["sha1"])
    op.create_table(
        "files",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("path", sa.LargeBinary, nullable=False, unique=True),
        sa.Column(
            "root_id", sa.Integer, sa.ForeignKey("roots.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("size", BIG, nullable=False),
        sa.Column("mtime_ns", BIG, nullable=False),
        sa.Column("inode", BIG, nullable=False),
        sa.Column("device", BIG, nullable=False),
        sa.Column("content_id", sa.Integer, sa.ForeignKey("contents.id")),
        sa.Column("checked_ns", BIG, nullable=False),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_files_content_id", "files", ["content_id"])
    op.create_index("ix_files_root", "files", ["root_id"])
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("tag_count", sa.Integer, nullable=False),
        sa.Column("created_ns", BIG, nullable=False),
        sa.UniqueConstraint("model", "version", name="uq_model_versions"),
    )
    op.create_table(
        "tags",
        sa.Column(
            "model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"), primary_key=True
        ),
        sa.Column("idx", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("category", sa.Integer),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "taggings",
        sa.Column(
            "model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"), primary_key=True
        ),
        sa.Column("content_id", sa.Integer, sa.ForeignKey("contents.id"), primary_key=True),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("tagged_ns", BIG, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_taggings_content", "taggings", ["content_id"])
    op.create_table(
        "scores",
        sa.Column("model_version_id", sa.Integer, primary_key=True),
        sa.Column("content_id", sa.Integer, primary_key=True),
        sa.Column("tag_idx", sa.Integer, primary_key=True),
        sa.Column("score", sa.Float, nullable=False),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    for table in ("scores", "taggings", "tags", "model_versions", "files", "contents", "roots"):
        op.drop_table(table)
