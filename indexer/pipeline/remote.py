"""What Ray workers do for `scan --ray`: decode pictures in CPU tasks, run models in actors.

Both stages take and give Ray Data batches in numpy format (a dict of equal-length
columns). Decoding ships each model's fitted picture as uint8 (a quarter of the float32
tensor: this crosses the network), and the inference actor fills its batch from them with
the same `fill` a local scan uses, so the scores are the same. Nothing here touches the
index: every outcome goes back to the driver as columns, with a failure's reason and kind.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from indexer.errors import DecodeError, Kind
from indexer.imaging.prepare import fill
from indexer.imaging.tasks import Skipped, Target, prepare_targets, read_again
from indexer.model_tables import ModelDef
from indexer.models.runtime import RuntimeOptions, Tagger, load
from indexer.pipeline.inference import infer

Columns = dict[str, Any]
# The `kind` column of a picture that was not decoded: a failure's Kind, or one of these.
SKIPPED, VANISHED = "skipped", "vanished"
# The `state{i}` column: what model i made of the row.
NOTHING, SCORED, FAILED = 0, 1, 2


def _decode_one(
    path: bytes, expect: str | None, targets: Sequence[Target], max_pixels: int
) -> list[NDArray[np.uint8]] | tuple[str, str, int]:
    """The fitted pictures, or why not as (reason, kind, needs) as a decoder process says."""
    try:
        data = read_again(path, expect)
        if isinstance(data, Skipped):
            return data.reason, VANISHED if data.vanished else SKIPPED, -1
        return prepare_targets(data, targets, max_pixels)[0]
    except DecodeError as exc:
        return str(exc), exc.kind.value, -1 if exc.needs is None else exc.needs
    except MemoryError:
        return "out of memory while decoding", Kind.MEMORY.value, -1
    except Exception as exc:  # a codec's own error type: the picture fails, retried later
        return f"decoder failed: {exc!r}", Kind.CRASH.value, -1


def decode_rows(rows: Columns, targets: Sequence[Target], max_pixels: int) -> Columns:
    """The CPU stage, a task per batch: rows (seq, path, expect, wanted bit mask) to each
    model's fitted pictures, or why a row has none."""
    Image.MAX_IMAGE_PIXELS = None  # `max_pixels` is the one limit, as in imaging.workers
    count, models = len(rows["seq"]), len(targets)
    pictures = [np.zeros((count, t.height, t.width, 3), np.uint8) for t in targets]
    ok = np.zeros((count, models), bool)
    why, kind = np.full(count, "", object), np.full(count, "", object)
    needs = np.full(count, -1, np.int64)
    for row in range(count):
        mask = int(rows["wanted"][row])
        wanted = [i for i in range(models) if mask >> i & 1]
        expect = str(rows["expect"][row]) or None
        path = bytes(rows["path"][row])
        got = _decode_one(path, expect, [targets[i] for i in wanted], max_pixels)
        if isinstance(got, tuple):
            why[row], kind[row], needs[row] = got
            continue
        for i, picture in zip(wanted, got, strict=True):
            pictures[i][row] = picture
            ok[row, i] = True
    out: Columns = {"seq": rows["seq"], "ok": ok, "why": why, "kind": kind, "needs": needs}
    out.update({f"pic{i}": p for i, p in enumerate(pictures)})
    return out


class Infer:
    """The model stage, an actor: loads the models once, runs each model's rows as a batch."""

    def __init__(self, models: Sequence[ModelDef], options: RuntimeOptions) -> None:
        self.taggers = [load(model, options) for model in models]

    def __call__(self, rows: Columns) -> Columns:
        count = len(rows["seq"])
        out: Columns = {k: rows[k] for k in ("seq", "why", "kind", "needs")}
        seconds = np.zeros(count, np.float64)
        for i, tagger in enumerate(self.taggers):
            places = [int(r) for r in np.flatnonzero(rows["ok"][:, i])]
            started = time.perf_counter()
            out.update(_run_model(i, tagger, rows[f"pic{i}"], places, count))
            seconds[0] += time.perf_counter() - started
        out["seconds"] = seconds
        return out


def _run_model(
    i: int, tagger: Tagger, pictures: NDArray[np.uint8], places: list[int], count: int
) -> Columns:
    """Model i's columns: state, scores, embeddings, and a failure's reason and kind."""
    state = np.full(count, NOTHING, np.int8)
    reason, kind = np.full(count, "", object), np.full(count, "", object)
    scores = np.zeros((count, len(tagger.tags)), np.float32)
    embeddings: NDArray[np.float32] | None = None
    if places:
        array = tagger.new_batch(len(places))
        for slot, row in enumerate(places):
            fill(array[slot], pictures[row], tagger.spec)
        slots: list[int | None] = list(places)
        for rows, matrix, vectors, failure in infer(tagger, slots, array):
            if failure is not None or matrix is None:
                state[rows[0]] = FAILED
                reason[rows[0]] = failure.reason if failure else "no result"
                kind[rows[0]] = failure.kind.value if failure else Kind.MODEL.value
                continue
            state[rows] = SCORED
            scores[rows] = matrix
            if vectors is not None:
                if embeddings is None:
                    embeddings = np.zeros((count, vectors.shape[1]), np.float32)
                embeddings[rows] = vectors
    columns: Columns = {f"state{i}": state, f"reason{i}": reason, f"fkind{i}": kind}
    columns[f"scores{i}"] = scores
    if tagger.embedding_name is not None:
        columns[f"emb{i}"] = embeddings if embeddings is not None else np.zeros((count, 0))
    return columns
