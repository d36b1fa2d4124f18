"""Claims: a writer about to tag a content with a model version claims the pair first.

So `scan` beside `watch`, or two scans, never tag one content twice for one version.
A claim is committed at once, released when the result is recorded; claims of dead
processes on this host, or past their lease, are taken over.
"""

from __future__ import annotations

import os
import secrets
import socket
import time

from sqlalchemy import delete, insert, select, update

from .index import Index
from .schema import claims, taggings

CLAIM_LEASE_NS = 3600 * 10**9
HOST = socket.gethostname


def claim_owner() -> str:
    """Who holds a claim: host, process id and a token that tells reused pids apart."""
    return f"{HOST()}:{os.getpid()}:{secrets.token_hex(4)}"


def _alive(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != HOST() or not pid_text.isdigit():
        return True  # another machine's process: trust the lease
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim(index: Index, version_id: int, content_id: int, owner: str) -> bool:
    """Claim a (content, model version) pair, or say another live process holds it.

    The claim is committed at once so other writers see it; it is released when the
    result is recorded. Claims of dead processes on this host, or past their lease
    (an hour, for other hosts sharing the file), are taken over.
    """
    now = time.time_ns()
    key = (claims.c.model_version_id == version_id) & (claims.c.content_id == content_id)
    index.conn.execute(
        insert(claims)
        .prefix_with("OR IGNORE")
        .values(
            model_version_id=version_id,
            content_id=content_id,
            owner=owner,
            expires_ns=now + CLAIM_LEASE_NS,
        )
    )  # the write takes SQLite's write lock, so the check below is atomic
    holder, expires = index.conn.execute(
        select(claims.c.owner, claims.c.expires_ns).where(key)
    ).one()
    done = index.conn.execute(
        select(taggings.c.status).where(
            taggings.c.model_version_id == version_id, taggings.c.content_id == content_id
        )
    ).first()
    mine = holder == owner or expires < now or not _alive(holder)
    if mine and done is None:
        index.conn.execute(
            update(claims).where(key).values(owner=owner, expires_ns=now + CLAIM_LEASE_NS)
        )
    index.commit()
    return mine and done is None


def release_claims(index: Index, owner: str) -> None:
    index.conn.execute(delete(claims).where(claims.c.owner == owner))
    index.commit()
