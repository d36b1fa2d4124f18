"""Which stored result of a model counts for a picture: the rule, written once.

A content's current result for model NAME is the configured version's result where it
has one, else the newest other version's. So a setting tried and undone exports the
configured version again at once, and a new version's results take over picture by
picture as it catches up, the old ones staying exported until then. Every reader
(export, search, show, similar) goes through `chosen_version`, and `prune` keeps every
version it picks for a present content (`present_best`), so a prune never changes an
export.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import CTE, ColumnElement, ScalarSelect, String, Text, bindparam, case, func, select

from indexer.store.schema import files, model_versions, taggings


def chosen_version(content: ColumnElement[Any]) -> ScalarSelect[Any]:
    """The model version id whose result counts for `content` (a column or value).

    Binds `model` (the model name) and `current` (the configured version string, or
    None when the config does not describe the model: then the newest version counts).
    NULL where the model has no finished result for the content.
    """
    ct, cv = taggings.alias("ct"), model_versions.alias("cv")
    configured = case((cv.c.version == bindparam("current", type_=String), ct.c.model_version_id))
    newest = func.max(ct.c.model_version_id)
    return (
        select(func.coalesce(func.max(configured), newest))
        .join_from(ct, cv, cv.c.id == ct.c.model_version_id)
        .where(
            ct.c.content_id == content,
            ct.c.status == "done",
            cv.c.model == bindparam("model", type_=Text),
        )
        .scalar_subquery()
    )


def present_best() -> CTE:
    """`best (cid, mv)`: the present contents (those a file points to), each with the
    version `chosen_version` picks for it, mv NULL where the model has no finished
    result. What an export prints, and so what a prune must keep. Binds `model` and
    `current`."""
    present = (
        select(files.c.content_id).where(files.c.content_id.is_not(None)).distinct().cte("present")
    )
    picked = chosen_version(present.c.content_id).label("mv")
    return select(present.c.content_id.label("cid"), picked).cte("best")
