"""Which stored tags a picture has: thresholds per category, MCut, the best rating.

The one rule for "this picture has this tag", used by the export (`select`) and by
search (`Thresholds.limit`, turned into SQL), so the two never disagree. Pure functions
of the stored scores, so any threshold above the storage floor can be applied without
running a model again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

RATING = "rating"

# Danbooru tags drawn as faces, whose underscores are part of the picture, not spaces.
KAOMOJI = frozenset(
    {
        "0_0",
        "(o)_(o)",
        "+_+",
        "+_-",
        "._.",
        "<o>_<o>",
        "<|>_<|>",
        "=_=",
        ">_<",
        "3_3",
        "6_9",
        ">_o",
        "@_@",
        "^_^",
        "o_o",
        "u_u",
        "x_x",
        "|_|",
        "||_||",
        "-_-",
        "t_t",
        "^_-",
    }
)


@dataclass(frozen=True)
class Scored:
    tag: str
    category: str | None
    score: float
    threshold: float | None = None  # the tag's own, where the model's authors published one


@dataclass(frozen=True)
class Thresholds:
    """`default` for tags without their own; `categories` by category name (general,
    character, artist, ...); `per_tag` uses a tag's published threshold where it has one;
    `mcut` picks each category's threshold at the largest gap in its scores."""

    default: float = 0.1
    categories: tuple[tuple[str, float], ...] = ()
    mcut: bool = False
    per_tag: bool = False

    def floor(self) -> float:
        """The lowest score any rule here could accept (for the database query)."""
        if self.mcut or self.per_tag:
            return 0.0
        return min([self.default, *(t for _, t in self.categories)])

    @cached_property
    def _by_category(self) -> dict[str, float]:
        return dict(self.categories)  # once: `for_tag` runs for every stored tag exported

    def rating_limit(self) -> float:
        """What the best rating must score above: only a threshold named for ratings."""
        return self._by_category.get(RATING, -1.0)

    def for_tag(self, tag: Scored) -> float:
        if self.per_tag and tag.threshold is not None:
            return tag.threshold
        return self._by_category.get(tag.category or "", self.default)

    def limit(self, tag: str, category: str | None, own: float | None) -> float | None:
        """The score a tag must pass to be had (MCut aside); None: a rating, had by the
        picture where it is the best of the picture's rating tags, whatever its score."""
        if category == RATING:
            return None
        return self.for_tag(Scored(tag, category, 0.0, own))


def mcut_threshold(scores: Sequence[float]) -> float:
    """Maximum Cut Thresholding: the midpoint of the largest gap between sorted scores."""
    ordered = sorted(scores, reverse=True)
    if len(ordered) < 2:
        return 0.0
    gaps = [ordered[i] - ordered[i + 1] for i in range(len(ordered) - 1)]
    best = max(range(len(gaps)), key=gaps.__getitem__)
    return (ordered[best] + ordered[best + 1]) / 2


def select(tags: Sequence[Scored], rules: Thresholds) -> list[Scored]:
    """The tags to export, in the order given: one best rating, then thresholds.

    A picture's ratings (general, sensitive, questionable, explicit) are one choice
    between alternatives, not features it shows, so `-t` and MCut leave the best one in:
    it is exported however high the threshold, unless a threshold is asked of the rating
    category by name (`--category rating=T`, `rating = T` in the model's `thresholds`)."""
    ratings = [t for t in tags if t.category == RATING]
    best_rating = max(ratings, key=lambda t: t.score) if ratings else None
    groups: dict[str | None, float] = {}
    if rules.mcut:
        by_category: dict[str | None, list[float]] = {}
        for t in tags:
            if t.category != RATING:
                by_category.setdefault(t.category, []).append(t.score)
        groups = {c: mcut_threshold(s) for c, s in by_category.items()}
    chosen = []
    for t in tags:
        if t.category == RATING:
            if t is best_rating and t.score > rules.rating_limit():
                chosen.append(t)
            continue
        if t.score > (groups.get(t.category, 0.0) if rules.mcut else rules.for_tag(t)):
            chosen.append(t)
    return chosen


def named(tag: Scored) -> tuple[str, ...]:
    """The levels a file names `tag` by: a rating under a `rating` level, since its name
    alone (`general`, `sensitive`) reads as what the picture shows; others by their name."""
    return (RATING, tag.tag) if tag.category == RATING else (tag.tag,)


def caption_text(tag: str) -> str:
    return tag if tag in KAOMOJI else tag.replace("_", " ")
