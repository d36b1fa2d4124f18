"""Progress on stderr for long work: one rewritten line, only when stderr is a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from indexer.gallery.jobs import Counts


class Progress:
    def __init__(self, enabled: bool, stream: TextIO | None = None, every: float = 0.25) -> None:
        self.enabled, self.stream, self.every = enabled, stream or sys.stderr, every
        self.start = time.monotonic()
        self._last = 0.0
        self._shown = False
        self.to_hash = 0
        self.to_tag = 0

    def __call__(self, phase: str, counts: Counts) -> None:
        now = time.monotonic()
        if not self.enabled or now - self._last < self.every:
            return
        self._last = now
        elapsed = max(now - self.start, 1e-9)
        line = f"{counts.files} files, hashed {counts.hashed}"
        if self.to_hash:
            line += f"/{self.to_hash}"
        line += f", tagged {counts.tagged}"
        if phase == "tagging" and counts.tagged:
            rate = counts.tagged / elapsed
            line += f" ({rate:.1f}/s)"
            if self.to_tag > counts.tagged:
                line += f", ETA {(self.to_tag - counts.tagged) / rate:.0f}s"
        if counts.failed:
            line += f", {counts.failed} failed"
        self.stream.write(f"\r\x1b[K{line}")
        self.stream.flush()
        self._shown = True

    def planned(self, reads: int) -> None:
        self.to_hash = reads

    def finish(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
