"""Which model a reading method works on, and which thresholds it applies: the rules
`search`, `export` and `similar` share, so they never disagree."""

from __future__ import annotations

from collections.abc import Iterable

from indexer.config import Config, threshold_or_default
from indexer.core.records import Rules
from indexer.errors import DtindexError, UsageError
from indexer.export.thresholds import Thresholds
from indexer.suggest import closest


def threshold_value(value: float | None, default: float) -> float:
    threshold = default if value is None else value
    if not 0.0 <= threshold <= 1.0:
        raise UsageError(f"threshold {threshold} must be within 0..1")
    return threshold


def indexed_model(indexed: Iterable[str], asked: str | None) -> str:
    """The model asked for, which must have tagged something (an unknown model is an
    error naming the close ones, not an empty result that reads as "nothing matches"),
    else the only one indexed."""
    models = set(indexed)
    known = ", ".join(sorted(models)) or "none yet"
    if asked is None:
        if len(models) != 1:
            raise UsageError(f"name a model with --model (indexed: {known})")
        return next(iter(models))
    if asked not in models:
        raise UsageError(
            f"model {asked!r} has tagged nothing in this index{closest(asked, models)} "
            f"(indexed models: {known})"
        )
    return asked


def embedding_model(config: Config, asked: str | None) -> str:
    """The model named, or the one configured model that stores embeddings."""
    if asked is not None:
        if not config.model(asked).resolve().spec.embedding:
            raise UsageError(
                f"model {asked!r} stores no embeddings (its table names no `embedding` output)"
            )
        return asked
    storing = []
    for entry in config.models.values():
        try:
            if entry.enabled and entry.resolve().spec.embedding:
                storing.append(entry.name)
        except DtindexError:
            continue  # a model whose files are gone cannot be the one meant
    if len(storing) == 1:
        return storing[0]
    if not storing:
        raise UsageError(
            "no configured model stores embeddings; add one that has an embedding output "
            "(the README's model table lists them), then scan"
        )
    raise UsageError(
        f"several models store embeddings ({', '.join(storing)}): choose one with --model"
    )


def thresholds(config: Config, model: str, rules: Rules, present: set[str]) -> Thresholds:
    """The model table's thresholds, with those `rules` ask for instead. A category
    threshold for a category the model's tag list lacks (`present`) would do nothing
    (`--general` on a plain list, `--category year=0.5` on WD's): refused."""
    asked = {name: threshold_value(value, 0) for name, value in rules.categories.items()}
    for name in asked:
        if name not in present:
            option = rules.spelled.get(name, f"the {name} threshold")
            what = (
                "no categories" if not present else f"no {name} tags ({', '.join(sorted(present))})"
            )
            raise UsageError(
                f"{option} applies to tag lists with categories; model {model!r} has {what}"
            )
    entry = config.models.get(model)
    default = threshold_value(
        rules.threshold, threshold_or_default(entry.threshold if entry else None)
    )
    categories = entry.category_thresholds() if entry else {}
    categories.update(asked)
    return Thresholds(default, tuple(categories.items()), rules.mcut, rules.tag_thresholds)


def parse_query(query: str) -> tuple[list[str], list[str], list[str]]:
    """`1girl -solo rating:general` as the tags wanted, the tags unwanted, and those of
    them named as ratings (`rating:`, which only a model with ratings has)."""
    wanted: list[str] = []
    unwanted: list[str] = []
    ratings: list[str] = []
    for term in query.split():
        negative = term.startswith("-") and len(term) > 1
        name = term[1:] if negative else term
        if name.startswith("rating:"):
            name = name.split(":", 1)[1]
            ratings.append(name)
        (unwanted if negative else wanted).append(name)
    if not wanted and not unwanted:
        raise UsageError("the query names no tag")
    return wanted, unwanted, ratings


def check_names(model: str, names: set[str], terms: Iterable[str], option: str = "") -> None:
    """An unknown tag is an error, not an empty result that looks like "none" (a search)
    or an edit that silently does nothing (`option`: the export's `--exclude`, ...)."""
    for term in terms:
        if term not in names:
            lead = f"{option}: " if option else ""
            unknown = f"model {model!r} has no tag {term!r}{closest(term, names)}"
            raise UsageError(lead + unknown)


def batch_size(asked: int | None, config: Config) -> int:
    """Pictures per model call: `asked`, else the config's."""
    size = asked if asked is not None else config.batch
    if not 1 <= size <= 4096:
        raise UsageError(f"--batch {size} must be between 1 and 4096")
    return int(size)
