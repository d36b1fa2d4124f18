"""Column types the migrations share with `indexer.store.schema`: one definition each.

Nanosecond times, sizes, inodes and device numbers outgrow 32 bits. SQLite's INTEGER
holds 64 bits already (and stays INTEGER, so files written before keep their schema);
PostgreSQL's INTEGER is 32 bits, so there they are BIGINT.
"""

from __future__ import annotations

import sqlalchemy as sa

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
