"""Export-time tag selection: category thresholds, one rating, MCut, kaomoji."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from indexer.export.thresholds import Scored, Thresholds, caption_text, mcut_threshold, select

TAGS = [
    Scored("general", "rating", 0.2),
    Scored("sensitive", "rating", 0.7),
    Scored("explicit", "rating", 0.1),
    Scored("1girl", "general", 0.95),
    Scored("solo", "general", 0.5),
    Scored("smile", "general", 0.3),
    Scored("hatsune_miku", "character", 0.9),
    Scored("kagamine_rin", "character", 0.6),
    Scored("artist_x", "artist", 0.45, threshold=0.4),
    Scored("year_2020", "year", 0.3, threshold=0.5),
]


def names(tags: list[Scored]) -> list[str]:
    return [t.tag for t in tags]


def test_category_thresholds_and_single_rating() -> None:
    rules = Thresholds(0.1, (("general", 0.35), ("character", 0.85), ("artist", 0.5)))
    chosen = ["sensitive", "1girl", "solo", "hatsune_miku", "year_2020"]
    assert names(select(TAGS, rules)) == chosen


def test_the_best_rating_passes_any_threshold_but_its_own() -> None:
    assert "sensitive" in names(select(TAGS, Thresholds(0.99)))
    assert "sensitive" not in names(select(TAGS, Thresholds(0.99, (("rating", 0.8),))))


def test_per_tag_thresholds_where_published() -> None:
    rules = Thresholds(0.1, (("general", 0.35), ("character", 0.85)), per_tag=True)
    chosen = ["sensitive", "1girl", "solo", "hatsune_miku", "artist_x"]
    assert names(select(TAGS, rules)) == chosen
    assert rules.floor() == 0.0  # a tag's own threshold may be under every other


def test_plain_threshold_applies_to_lists_without_categories() -> None:
    plain = [Scored("a", None, 0.5), Scored("b", None, 0.05)]
    assert names(select(plain, Thresholds(0.1, (("general", 0.9),)))) == ["a"]


def test_mcut_cuts_at_the_largest_gap() -> None:
    assert mcut_threshold([0.95, 0.9, 0.3, 0.25]) == (0.9 + 0.3) / 2
    assert names(select(TAGS[:8], Thresholds(mcut=True))) == [
        "sensitive",
        "1girl",
        "hatsune_miku",
    ]


@given(st.lists(st.floats(0, 1), min_size=2, max_size=30))
def test_mcut_threshold_separates_the_scores(scores: list[float]) -> None:
    cut = mcut_threshold(scores)
    assert min(scores) <= cut <= max(scores)


def test_caption_text_keeps_kaomoji() -> None:
    assert caption_text("blue_hair") == "blue hair"
    assert caption_text("^_^") == "^_^" and caption_text(">_<") == ">_<"
