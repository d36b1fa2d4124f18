"""Tables of the index. Migrations in `migrations/versions` create exactly these.

Paths are stored as the bytes the file system gave (`os.fsencode`), so names that are
not valid UTF-8 round-trip losslessly. Scores are rows per (model version, content, tag)
above a floor, so exports can apply any higher threshold without running a model.
"""

from __future__ import annotations

from dtindex_migrations.columns import BIG
from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

# Scores from here up are in the by-tag index that searches use; migration 0003 holds
# the same literal, which a query must repeat for SQLite to use the partial index.
SEARCH_FLOOR = 0.1

roots = Table(
    "roots",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("path", LargeBinary, nullable=False, unique=True),
    Column("device", BIG),
    Column("scanned_ns", BIG),
)

contents = Table(
    "contents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("xxh128", String(32), nullable=False, unique=True),
    Column("sha1", String(40), nullable=False, index=True),
    Column("size", BIG, nullable=False),
    Column("width", Integer),
    Column("height", Integer),
)

files = Table(
    "files",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("path", LargeBinary, nullable=False, unique=True),
    Column("root_id", Integer, ForeignKey("roots.id", ondelete="CASCADE"), nullable=False),
    Column("size", BIG, nullable=False),
    Column("mtime_ns", BIG, nullable=False),
    Column("inode", BIG, nullable=False),
    Column("device", BIG, nullable=False),
    Column("content_id", Integer, ForeignKey("contents.id"), index=True),
    Column("checked_ns", BIG, nullable=False),
    Column("error", Text),
    Column("kind", String(12)),  # errors.Kind of `error`: read failures are retried
    Column("ctime_ns", BIG),  # the inode's ctime when read (None: read before 0006)
    Column("named_ns", BIG),  # when moved to its path (None: named when read, checked_ns)
    Index("ix_files_root", "root_id"),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model", Text, nullable=False),
    Column("version", String(64), nullable=False),
    Column("title", Text, nullable=False),
    Column("tag_count", Integer, nullable=False),
    Column("created_ns", BIG, nullable=False),
    UniqueConstraint("model", "version", name="uq_model_versions"),
)

tags = Table(
    "tags",
    metadata,
    Column("model_version_id", Integer, ForeignKey("model_versions.id"), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("category", Text),  # a name: general, character, rating, artist, year...
    Column("threshold", Float),  # the authors' own for this tag, where they published one
    sqlite_with_rowid=False,
)

taggings = Table(
    "taggings",
    metadata,
    Column("model_version_id", Integer, ForeignKey("model_versions.id"), primary_key=True),
    Column("content_id", Integer, ForeignKey("contents.id"), primary_key=True),
    Column("status", String(8), nullable=False),  # done | failed
    Column("error", Text),
    Column("tagged_ns", BIG, nullable=False),
    Column("kind", String(12)),  # errors.Kind of a failure: decides whether it is retried
    Column("needs", BIG),  # a "limit" failure: the pixels it needs (vs max_pixels)
    Index("ix_taggings_content", "content_id"),
    sqlite_with_rowid=False,
)

scores = Table(
    "scores",
    metadata,
    Column("model_version_id", Integer, primary_key=True),
    Column("content_id", Integer, primary_key=True),
    Column("tag_idx", Integer, primary_key=True),
    Column("score", Float, nullable=False),
    # Partial: only scores a default search can ask for (see migration 0003).
    Index(
        "ix_scores_tag",
        "model_version_id",
        "tag_idx",
        "score",
        sqlite_where=text(f"score >= {SEARCH_FLOOR}"),
        postgresql_where=text(f"score >= {SEARCH_FLOOR}"),
    ),
    sqlite_with_rowid=False,
)

# A picture's embedding for a model version that stores one: float16 bytes, L2-normalised
# so that likeness is a dot product (see store/likeness.py).
embeddings = Table(
    "embeddings",
    metadata,
    Column("model_version_id", Integer, ForeignKey("model_versions.id"), primary_key=True),
    Column("content_id", Integer, ForeignKey("contents.id"), primary_key=True),
    Column("vector", LargeBinary, nullable=False),
    sqlite_with_rowid=False,
)

# A writer about to tag a content with a model version claims the pair first; a claim
# whose owner process is gone (or whose lease ran out) may be taken over.
claims = Table(
    "claims",
    metadata,
    Column("model_version_id", Integer, primary_key=True),
    Column("content_id", Integer, primary_key=True),
    Column("owner", Text, nullable=False),
    Column("expires_ns", BIG, nullable=False),
    sqlite_with_rowid=False,
)
