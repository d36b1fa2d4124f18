"""Counts in messages: `1 file`, `2 files`. One rule, so every message agrees."""

from __future__ import annotations


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """`count noun`, the noun plural unless the count is one (`1 failed tagging`, `2 model
    versions`): `nouns` where adding an `s` will not do (`batch`, `batches`)."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"
