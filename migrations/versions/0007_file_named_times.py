"""Each file keeps when it got its name: a copy, a move or a rename into the gallery.

`export --changed-since TIME` lists the pictures tagged since TIME; a picture tagged
before it and copied, moved or renamed since has a path the export never listed, and a
cron job exporting by path (captions, sidecars, `--id path`) would never write it. A row
made by a read is named when it was read (`checked_ns`, so this column stays empty
there); a move sets the column. Rows from before this revision were named when read.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from dtindex_migrations.columns import BIG

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("files", sa.Column("named_ns", BIG))


def downgrade() -> None:
    with op.batch_alter_table("files") as batch:
        batch.drop_column("named_ns")
