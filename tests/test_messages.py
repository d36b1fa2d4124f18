"""The one codec every process boundary uses (`imaging.messages`): each message comes out
as it went in, typed; arrays sent on a pipe travel out of band and arrive equal."""

from __future__ import annotations

import multiprocessing
import pickle
import threading

import numpy as np

from indexer.errors import Failure, Kind
from indexer.imaging import messages as m
from indexer.preparation import ModelSpec


def _one_of_each() -> list[m.Message]:
    target = m.Target(ModelSpec(shape="nchw", pad="black"), 16, 12)
    looked = m.Looked("a" * 32, "b" * 40, 10, 20, 30, 40, 50, 6, None)
    return [
        m.Look(b"/g/\xff.png"),
        m.LookMany((b"/g/a.png", b"/g/b.png")),
        m.DecodeInto.of(b"/g/a.png", "c" * 32, [(target, ("psm_x", 64, (3, 16, 12)))]),
        m.Fit.of(b"/g/a.png", None, [target], b"bytes"),
        looked,
        m.Skipped("vanished", vanished=True),
        m.Decoded(640, 480),
        m.Fitted((np.arange(12, dtype=np.uint8).reshape(2, 2, 3),)),
        m.LookedMany((looked, m.Skipped("changed"), Failure("cannot read", Kind.PERMISSION))),
        Failure("over the limit", Kind.LIMIT, 10**9),
        m.Scores(3, (1, 2), np.ones((2, 4), np.float32), 0.05, None),
        m.Flush(7),
        m.Flushed(7),
        m.Close(),
        m.Ready(),
    ]


def _same(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(map(_same, a, b))
    if hasattr(a, "__dataclass_fields__"):
        return type(a) is type(b) and all(_same(v, vars(b)[k]) for k, v in vars(a).items())
    return bool(a == b)


def test_every_message_type_comes_out_as_it_went_in() -> None:
    sent = _one_of_each()
    assert {type(message) for message in sent} == set(m._TYPES), "a type left untested"
    for message in sent:
        back = m.decode(m.encode(message))
        assert _same(message, back), (message, back)
    target = m.decode(m.encode(sent[3]))
    assert isinstance(target, m.Fit)
    assert m.Targets()[target.targets[0]] == m.Target(ModelSpec(shape="nchw", pad="black"), 16, 12)


def test_arrays_on_a_pipe_travel_out_of_band_and_arrive_equal() -> None:
    matrix = np.random.default_rng(1).random((64, 300), dtype=np.float32)
    vectors = np.random.default_rng(2).random((64, 8), dtype=np.float32)
    scores = m.Scores(1, tuple(range(64)), matrix, 0.1, vectors)
    buffers: list[pickle.PickleBuffer] = []
    head = m.encode(scores, buffers)
    assert len(buffers) == 2 and len(head) < 1024, "the arrays were pickled into the message"
    ours, theirs = multiprocessing.Pipe()
    with ours, theirs:
        # sent from another thread: more than a pipe holds on some systems
        sender = threading.Thread(target=lambda: [m.send(ours, x) for x in (scores, m.Flush(1))])
        sender.start()
        back = m.receive(theirs)
        assert isinstance(back, m.Scores) and _same(scores, back)
        assert m.receive(theirs) == m.Flush(1)
        sender.join(30)
