"""What Ray workers do for `scan --ray`: decode pictures in CPU tasks, run models in actors.

Both stages take and give Ray Data batches in numpy format (a dict of equal-length
columns). Decoding ships each model's fitted picture as uint8 (a quarter of the float32
tensor: this crosses the network), and the inference actor fills its batch from them with
the same `fill` a local scan uses, so the scores are the same. Nothing here touches the
index: every outcome goes back to the driver as columns; a picture not decoded, or one a
model failed on, as its `Skipped` or `Failure` message in the one codec
(`imaging.messages`), as a local decoder sends it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from indexer.errors import Failure, Kind
from indexer.imaging.messages import Fit, Fitted, Reply, Target, decode, encode
from indexer.imaging.prepare import fill
from indexer.imaging.workers import DecoderPool
from indexer.model_tables import ModelDef
from indexer.models.runtime import RuntimeOptions, Tagger, load
from indexer.pipeline.inference import infer

Columns = dict[str, Any]
# The `state{i}` column: what model i made of the row.
NOTHING, SCORED, FAILED = 0, 1, 2


class Decode:
    """The CPU stage, an actor per core: rows (seq, path, expect, wanted bit mask) to each
    model's fitted pictures, or why a row has none (`failed`: an encoded message).

    The actor decodes nothing itself: it holds one decoder process of the local scan's
    kind (imaging.workers), so a codec that crashes or hangs costs only its picture,
    with the local scan's reasons ("decoder crashed", "decoding took over N s"), instead
    of killing a Ray task that Ray would retry and then fail the whole run with."""

    def __init__(self, targets: Sequence[Target], max_pixels: int, timeout: float) -> None:
        self.targets = list(targets)
        self.pool = DecoderPool(1, max_pixels, timeout)

    def __del__(self) -> None:
        self.pool.close()

    def __call__(self, rows: Columns) -> Columns:
        count, models = len(rows["seq"]), len(self.targets)
        pictures = [np.zeros((count, t.height, t.width, 3), np.uint8) for t in self.targets]
        ok = np.zeros((count, models), bool)
        failed = np.full(count, b"", object)
        wanted = [
            [i for i in range(models) if int(rows["wanted"][r]) >> i & 1] for r in range(count)
        ]
        for row, reply in self._decoded(rows, wanted):
            if isinstance(reply, Fitted):
                for i, picture in zip(wanted[row], reply.pictures, strict=True):
                    pictures[i][row] = picture
                    ok[row, i] = True
            else:
                failed[row] = encode(reply)
        out: Columns = {"seq": rows["seq"], "ok": ok, "failed": failed}
        out.update({f"pic{i}": p for i, p in enumerate(pictures)})
        return out

    def _decoded(self, rows: Columns, wanted: list[list[int]]) -> list[tuple[int, Reply]]:
        """Each row's reply from the decoder: its fitted pictures, or why it has none.
        Rows with a `data` column carry the bytes the driver shipped (`scan --ray --ship-files`),
        or, in `fault`, why the driver could not read them (an encoded message)."""
        replies: list[tuple[int, Reply]] = []
        requests: list[tuple[Fit, int]] = []
        for row in range(len(rows["seq"])):
            if "fault" in rows and rows["fault"][row]:
                replies.append((row, decode(rows["fault"][row])))  # type: ignore[arg-type]
                continue
            path, expect = bytes(rows["path"][row]), str(rows["expect"][row]) or None
            data = bytes(rows["data"][row]) if "data" in rows else None
            targets = [self.targets[i] for i in wanted[row]]
            requests.append((Fit.of(path, expect, targets, data), row))
        return replies + self.pool.answer_all(requests)


class Infer:
    """The model stage, an actor: loads the models once, runs each model's rows as a batch."""

    def __init__(self, models: Sequence[ModelDef], options: RuntimeOptions) -> None:
        self.taggers = [load(model, options) for model in models]

    def __call__(self, rows: Columns) -> Columns:
        count = len(rows["seq"])
        out: Columns = {k: rows[k] for k in ("seq", "failed")}
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
    """Model i's columns: state, scores, embeddings, and a failure (encoded)."""
    state = np.full(count, NOTHING, np.int8)
    failed = np.full(count, b"", object)
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
                failed[rows[0]] = encode(failure or Failure("no result", Kind.MODEL))
                continue
            state[rows] = SCORED
            scores[rows] = matrix
            if vectors is not None:
                if embeddings is None:
                    embeddings = np.zeros((count, vectors.shape[1]), np.float32)
                embeddings[rows] = vectors
    columns: Columns = {f"state{i}": state, f"failed{i}": failed}
    columns[f"scores{i}"] = scores
    if tagger.embedding_name is not None:
        columns[f"emb{i}"] = embeddings if embeddings is not None else np.zeros((count, 0))
    return columns
