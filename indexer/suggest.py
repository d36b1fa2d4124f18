"""Did you mean ...: the known names closest to a misspelt one, for messages.

One rule for every name a user types (subcommands, options, choices, models, tags), so
they all suggest alike.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence


def close_names(name: str, known: Iterable[str] | Mapping[str, str]) -> list[str]:
    """Up to three known names close to `name`, closest first.

    With a mapping, its keys are compared and its values given (`allow-empty` compared,
    `--allow-empty` given: the dashes would make every option look alike).
    """
    shown = known if isinstance(known, Mapping) else {k: k for k in known}
    return [shown[c] for c in difflib.get_close_matches(name, sorted(shown), n=3, cutoff=0.6)]


def did_you_mean(names: Sequence[str]) -> str:
    return f"; did you mean {', '.join(names)}?" if names else ""


def closest(name: str, known: Iterable[str] | Mapping[str, str]) -> str:
    """`; did you mean a, b?` naming the known names close to `name`, else ''."""
    return did_you_mean(close_names(name, known))
