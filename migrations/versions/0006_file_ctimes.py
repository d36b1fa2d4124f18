"""Each file keeps the ctime of the inode dtindex read.

Device, inode, size and mtime do not prove a file is the one read: an archive unpacked
again over the same names (the freed inodes handed back, one mtime for every file) or
`cp -p` over a file of the same size leaves all four as they were, and the rescan kept
the old picture's tags. No tool can set a ctime back, so a file whose ctime differs from
the one stored is read again (hashed, not tagged again unless its bytes changed). Rows
from before this revision have none, and are judged as before until they are next read.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from dtindex_migrations.columns import BIG

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("files", sa.Column("ctime_ns", BIG))


def downgrade() -> None:
    with op.batch_alter_table("files") as batch:
        batch.drop_column("ctime_ns")
