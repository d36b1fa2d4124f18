"""The trial batch a model runs when it loads: two different pictures together, and the
first alone, must score alike."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from indexer.errors import ModelError

if TYPE_CHECKING:
    from indexer.models.runtime import Tagger


def check_batch_rows(tagger: Tagger, where: str) -> None:
    """Two different pictures in one batch must score as each does alone.

    An output laid out [tags, batch] (or any graph mixing a batch's pictures) passes every
    shape check where the batch size is symbolic, yet gives each picture a blend of the
    batch's scores at `-b 3` and the right ones at `-b 1`. Refused, not run at batch 1:
    such a graph was exported wrongly, and its error is the one honest report.
    """
    batch = tagger.new_batch(2)
    batch[0] = np.random.default_rng(0).random(tagger.picture_shape, np.float32)
    batch[1] = 1.0 - batch[0]
    try:
        together = tagger.run(batch)
        alone = tagger.run(batch[:1])
    except ModelError:
        raise
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelError(f"{where}: the model fails on a trial batch: {exc}") from None
    scale = max(1.0, float(np.max(np.abs(alone))))
    if not np.allclose(together[0], alone[0], rtol=0.0, atol=0.01 * scale, equal_nan=True):
        raise ModelError(
            f"{where}: a picture's scores depend on the other pictures in its batch (is the "
            "output laid out [tags, batch] instead of [batch, tags]?); fix the graph's export"
        )
