"""Each failure keeps its kind (`indexer.errors.Kind`): only a picture's own fault stays
failed until the file changes; a crash, a timeout, a permission or I/O error, a limit
or the model failing are retried by the next scan. Failures recorded before this
revision are classified by their message, as the code that wrote them worded it.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from dtindex_migrations.columns import BIG

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# (message pattern, kind), first match wins; anything else was the picture's fault.
_PATTERNS = (
    ("decoder crashed%", "crash"),
    ("decoding took over%", "timeout"),
    ("%over the limit of%", "limit"),
    ("decompression bomb%", "limit"),  # `needs` unknown: retried once, then recorded
    ("%out of memory%", "memory"),
    ("model % failed:%", "model"),
    ("cannot read: Permission denied%", "permission"),
    ("cannot read:%", "io"),
)


def _classify(table: str) -> None:
    cases = " ".join(f"WHEN error LIKE '{like}' THEN '{kind}'" for like, kind in _PATTERNS)
    op.execute(f"UPDATE {table} SET kind = CASE {cases} ELSE 'picture' END WHERE error IS NOT NULL")


def upgrade() -> None:
    op.add_column("taggings", sa.Column("kind", sa.String(12)))
    op.add_column("taggings", sa.Column("needs", BIG))
    op.add_column("files", sa.Column("kind", sa.String(12)))
    _classify("taggings")
    _classify("files")


def downgrade() -> None:
    with op.batch_alter_table("files") as batch:
        batch.drop_column("kind")
    with op.batch_alter_table("taggings") as batch:
        batch.drop_column("needs")
        batch.drop_column("kind")
