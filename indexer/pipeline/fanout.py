"""`scan --ray`: decoding and inference fanned out over a Ray cluster through Ray Data.

The driver keeps what needs the index: the walk, looking at new files (read and hashed
by the local decoder processes) and `decide`, then every write, through the same `Steps`
callbacks as a local scan, batch by batch, so counts, failures and exit codes are the
same and a killed driver resumes the same way (its claims die with it). Only the decided
orders (path, expected xxh3-128, wanted models) go out: CPU actors read and decode them
(`pipeline.remote.Decode`, each holding a decoder process, so `decode_timeout` and a
crashing codec cost one picture as locally), one inference actor per GPU (one per node
without GPUs) scores them (`pipeline.remote.Infer`), and results stream back. Orders go
out in windows (`pipeline.windows`) while the next are decided, so the cluster starts
after the first window's 1,024 and the driver never holds a huge gallery's orders at once.

Workers read files where they are: every node needs the gallery at the same path, or,
with `ship`, the driver reads each window's files and sends their bytes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, Generic, TypeVar

import numpy as np

from indexer.errors import DecodeError, Failure, ScanError, UsageError
from indexer.imaging.messages import Look, Reply, Skipped, Target, decode, encode
from indexer.imaging.tasks import read_decided
from indexer.imaging.workers import DecoderPool
from indexer.models.runtime import RuntimeOptions, Tagger
from indexer.pipeline import windows
from indexer.pipeline.flow import GROUP, Order, Steps
from indexer.pipeline.inference import Inference, Outcome, Timings
from indexer.pipeline.remote import FAILED, SCORED, Columns, Decode, Infer

log = logging.getLogger("dtindex")
J = TypeVar("J")
LOCAL = "local"


def _ray() -> Any:
    """Ray, imported only when `--ray` is given: it is an optional extra and slow to import."""
    try:
        import ray
    except ImportError:
        raise UsageError("--ray needs Ray on this machine: pip install 'dtindex[ray]'") from None
    return ray


@dataclass(frozen=True)
class Cluster:
    """A Ray cluster this process is connected to, and how its workers load models."""

    options: RuntimeOptions
    max_pixels: int
    decode_timeout: float
    started: bool  # this process started it (`--ray local`, or no Ray running yet)
    ship: bool = False  # the driver reads the files and sends their bytes (no shared mount)
    first_window: int = windows.FIRST  # orders the cluster is handed first (pipeline.windows)

    def close(self) -> None:
        """Shut down the Ray this process started; again, or for a joined one, nothing."""
        ray = _ray()
        if self.started and ray.is_initialized():
            ray.shutdown()

    def run(
        self,
        taggers: Sequence[Tagger],
        jobs: Iterable[J],
        steps: Steps[J],
        pool: DecoderPool,
        batch: int,
        stop: threading.Event | None = None,
        timings: Timings | None = None,
        idle: Callable[[], None] | None = None,
    ) -> None:
        """Look and decide jobs here a window at a time (see `pipeline.windows`), each
        window decoded and tagged on the cluster while the next is decided. Once `stop`
        is set nothing new is handed over; what was recorded stays."""
        commit = idle or (lambda: None)
        timings = timings or Timings()
        inference = Inference[J](steps.scores, steps.failed, False, timings)
        source = iter(jobs)
        running: windows.Window | None = None

        def stopping() -> bool:
            return stop is not None and stop.is_set()

        def between() -> None:
            if running is not None:
                running.ready(deliver)

        def deliver(block: Columns) -> None:
            assert running is not None
            _deliver(block, running.orders, steps, inference, timings)
            commit()

        try:
            largest = windows.LARGEST_SHIPPED if self.ship else windows.LARGEST
            for number, size in enumerate(windows.sizes(self.first_window, largest), 1):
                orders = _decided(source, size, steps, pool, stop, between)
                commit()  # the claims and files: a driver killed from here on resumes
                if running is not None and not running.rest(deliver):
                    return
                if not orders or stopping():
                    return
                log.debug("ray: window %d hands over %d pictures", number, len(orders))
                results = self._results(taggers, orders, batch)
                running = windows.Window(number, results, orders, stopping)
        finally:
            if running is not None:
                running.abandon()

    def _results(
        self, taggers: Sequence[Tagger], orders: list[Order[J]], batch: int
    ) -> Iterator[Columns]:
        ray = _ray()
        rows = [
            {"seq": k, "path": o.path, "expect": o.expect or "", "wanted": _mask(o.wanted)}
            for k, o in enumerate(orders)
        ]
        if self.ship:
            for row, order in zip(rows, orders, strict=True):
                row["data"], row["fault"] = _read_to_ship(order.path, order.expect)
        targets = [Target(t.spec, t.height, t.width) for t in taggers]
        gpus = int(ray.cluster_resources().get("GPU", 0))
        # Without GPUs an actor takes no CPU of its own, as a local scan's ONNX Runtime
        # shares the cores with decoders; it also keeps Ray from fusing decoding into
        # the actors, which would leave the decode tasks as few as the actors.
        resources = {"num_gpus": 1} if gpus else {"num_cpus": 0}
        actors = gpus or max(1, len([n for n in ray.nodes() if n.get("Alive")]))
        cores = max(1, int(ray.cluster_resources().get("CPU", 1)))
        dataset = (
            ray.data.from_items(rows)
            .map_batches(Decode, fn_constructor_args=(targets, self.max_pixels,
                                                      self.decode_timeout),
                         batch_size=batch, batch_format="numpy", num_cpus=1,
                         compute=ray.data.ActorPoolStrategy(min_size=1, max_size=cores))
            .map_batches(Infer, fn_constructor_args=([t.definition for t in taggers],
                                                     self.options),
                         batch_size=batch, batch_format="numpy", **resources,
                         compute=ray.data.ActorPoolStrategy(size=actors))
        )  # fmt: skip
        yield from dataset.iter_batches(batch_size=None, batch_format="numpy")


def _read_to_ship(path: bytes, expect: str | None) -> tuple[bytes, bytes]:
    """A file's bytes to send to the workers, or (encoded) why they cannot be read: the
    reasons a worker reading the file itself would give."""
    try:
        data = read_decided(path, expect is not None)  # the worker checks it (unchanged)
    except DecodeError as exc:
        return b"", encode(Failure(str(exc), exc.kind, exc.needs))
    if isinstance(data, Skipped):
        return b"", encode(data)
    return data, b""


def _mask(wanted: tuple[int, ...]) -> int:
    return sum(1 << i for i in wanted)


def connect(
    address: str,
    options: RuntimeOptions,
    max_pixels: int,
    decode_timeout: float,
    ship: bool = False,
) -> Cluster:
    """Join the Ray cluster at `address`, or start a local instance for `local`; a Ray
    already initialised in this process is used as it is. With `ship`, the driver reads
    the pictures and sends their bytes, for workers that do not see the gallery."""
    ray = _ray()
    started = False
    if not ray.is_initialized():
        try:
            ray.init(
                address=None if address == LOCAL else address,
                include_dashboard=False,
                log_to_driver=False,  # workers' output must not mix into stdout's data
                logging_level=logging.WARNING,
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ScanError(f"cannot join the Ray cluster at {address}: {exc}") from None
        started = True
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # stderr has dtindex's own progress line
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # a line per dataset otherwise
    return Cluster(options, max_pixels, decode_timeout, started, ship)


@dataclass(eq=False)
class _Looking(Generic[J]):
    job: J
    reply: Reply | None = None


def _decided(
    source: Iterator[J],
    size: int,
    steps: Steps[J],
    pool: DecoderPool,
    stop: threading.Event | None,
    between: Callable[[], None],
) -> list[Order[J]]:
    """Look at (read and hash) jobs here and decide them in groups, as a local scan does,
    until `size` orders want a model or the jobs run out; `between` runs after each group
    (it hands over what the cluster has sent meanwhile)."""
    orders: list[Order[J]] = []
    while len(orders) < size and (stop is None or not stop.is_set()):
        group = [_Looking(job) for job in islice(source, min(GROUP, size - len(orders)))]
        if not group:
            break
        looks = [(Look(path), e) for e in group if (path := steps.look(e.job)) is not None]
        for entry, reply in pool.answer_all(looks):
            entry.reply = reply
        decided = steps.decide([(entry.job, entry.reply) for entry in group])
        orders.extend(order for order in decided if order.wanted)
        between()
    return orders


def _deliver(
    block: Columns,
    orders: list[Order[J]],
    steps: Steps[J],
    inference: Inference[J],
    timings: Timings,
) -> None:
    """Hand one block of results to the steps: pictures not decoded, then each model's."""
    seqs = [int(s) for s in block["seq"]]
    for row, seq in enumerate(seqs):
        if block["failed"][row]:
            why = decode(block["failed"][row])
            assert isinstance(why, Failure | Skipped)
            steps.unprepared(orders[seq], why)
    timings.model_s += float(np.sum(block["seconds"]))
    index = 0
    while f"state{index}" in block:
        inference.hand_over(index, (_outcomes(block, index, seqs, orders), 0.0))
        index += 1


def _outcomes(block: Columns, i: int, seqs: list[int], orders: list[Order[J]]) -> list[Outcome[J]]:
    state = block[f"state{i}"]
    scored = [int(r) for r in np.flatnonzero(state == SCORED)]
    outcomes: list[Outcome[J]] = []
    if scored:
        vectors = block.get(f"emb{i}")
        outcomes.append((
            [orders[seqs[r]].job for r in scored],
            np.asarray(block[f"scores{i}"][scored], np.float32),
            None if vectors is None else np.asarray(vectors[scored], np.float32),
            None,
        ))  # fmt: skip
    for row in (int(r) for r in np.flatnonzero(state == FAILED)):
        failure = decode(block[f"failed{i}"][row])
        assert isinstance(failure, Failure)
        outcomes.append(([orders[seqs[row]].job], None, None, failure))
    return outcomes
