"""What `Index.scan` needs before it walks: the models loaded with the index's runtime
options (and so its caches), the roots to work on, and a Ray cluster where one is asked
for."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from indexer.config import Config
from indexer.core import places
from indexer.errors import UsageError
from indexer.models.runtime import RuntimeOptions, Tagger, load
from indexer.pipeline.fanout import Cluster, connect


def taggers(config: Config, runtime: RuntimeOptions, names: Sequence[str]) -> list[Tagger]:
    """The models named in the config (default: the enabled ones, else the built-in
    palette), loaded."""
    entries = [config.model(n) for n in names] if names else list(config.default_models())
    return [load(entry.resolve(), runtime) for entry in entries]


def chosen_roots(
    asked: Sequence[places.PathLike], config: Config, indexed: Sequence[bytes]
) -> list[Path]:
    """The roots to work on: those asked for, else the config's, else those indexed;
    made absolute here, once: a watcher's events and the index's paths are absolute, and
    `./g/../g` must name the same root as `g`."""
    chosen: list[places.PathLike]
    if asked:
        chosen = list(asked)
    elif config.roots:
        chosen = list(config.roots)
    else:
        chosen = [os.fsdecode(p) for p in indexed]
    if not chosen:
        raise UsageError("no roots: name a gallery folder, or set roots in the config")
    return [places.absolute(root) for root in chosen]


def cluster(address: str, config: Config, runtime: RuntimeOptions, ship: bool) -> Cluster:
    """The Ray cluster at `address` (`local`: one started here); `ship`: this machine
    reads the pictures and sends their bytes. Its workers decode on their CPUs (the GPU
    lane is this machine's, `imaging.gpu.choice`): `decode = gpu` is refused."""
    if runtime.decode == "gpu":
        raise UsageError("decode = gpu is for a scan on this machine: --ray decodes on the CPU")
    cpu_decoding = replace(runtime, decode="cpu")
    return connect(address, cpu_decoding, config.max_pixels, config.decode_timeout, ship=ship)
