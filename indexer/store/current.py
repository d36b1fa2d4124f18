"""Which stored result of a model counts for a picture: the rule, written once.

A content's current result for model NAME is the configured version's result where it
has one, else the newest other version's. So a setting tried and undone exports the
configured version again at once, and a new version's results take over picture by
picture as it catches up, the old ones staying exported until then. Every reader
(export, search, show, similar) goes through `chosen_version`, and `prune` keeps every
version it picks for a present content (`PRESENT_BEST`), so a prune never changes an export.
"""

from __future__ import annotations


def chosen_version(content: str) -> str:
    """SQL for the model version id whose result counts for `content` (a column or value).

    Binds `:model` (the model name) and `:current` (the configured version string, or
    None when the config does not describe the model: then the newest version counts).
    NULL where the model has no finished result for the content.
    """
    return (
        "(SELECT COALESCE(MAX(CASE WHEN cv.version = :current THEN ct.model_version_id END),"
        " MAX(ct.model_version_id))"
        " FROM taggings ct JOIN model_versions cv ON cv.id = ct.model_version_id"
        f" WHERE ct.content_id = {content} AND ct.status = 'done' AND cv.model = :model)"
    )


# The present contents (those a file points to), each with the version `chosen_version`
# picks for it: `best (cid, mv)`, mv NULL where the model has no finished result. What an
# export prints, and so what a prune must keep. Binds `:model` and `:current`.
PRESENT_BEST = f"""
WITH present AS (SELECT DISTINCT content_id FROM files WHERE content_id IS NOT NULL),
best AS (SELECT p.content_id AS cid, {chosen_version("p.content_id")} AS mv FROM present p)
"""
