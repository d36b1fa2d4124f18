"""The signals that stop long work: the CLI sets its stop event on them, and the decoder
and writer processes ignore them (the parent finishes the batch in flight and stops
them). Named once, in `imaging.spawning`, and re-exported here for the CLI."""

from __future__ import annotations

from indexer.imaging.spawning import STOP_SIGNALS as STOP_SIGNALS

__all__ = ["STOP_SIGNALS"]
