"""Replies on a decoder's pipe (`imaging.frames`): one read takes every reply waiting,
a frame split across reads or far bigger than a read comes out whole, and a closed
pipe is an EOFError once what came before it is out."""

from __future__ import annotations

import os
import select
import socket
import threading

import pytest

from indexer.imaging.frames import Inbox, send_frame


def _readable(fd: int, timeout: float = 30.0) -> None:
    assert select.select([fd], [], [], timeout)[0], "nothing came in time"


def test_replies_waiting_come_out_in_one_read_in_order() -> None:
    parent, child = socket.socketpair()
    with parent, child:
        for k in range(5):
            send_frame(child.fileno(), f"reply {k}".encode())
        _readable(parent.fileno())
        assert Inbox().read(parent.fileno()) == [f"reply {k}".encode() for k in range(5)]


def test_a_frame_split_across_writes_waits_for_its_end() -> None:
    parent, child = socket.socketpair()
    with parent, child:
        inbox = Inbox()
        data = b"\0\0\0\0\0\0\0\x05hello" + b"\0\0\0\0\0\0\0\x03abc"
        # cut inside the first header, its payload, the second header, then the rest
        pieces = [(0, 3, []), (3, 9, []), (9, 15, [b"hello"]), (15, len(data), [b"abc"])]
        for start, end, expected in pieces:
            child.sendall(data[start:end])
            _readable(parent.fileno())
            assert inbox.read(parent.fileno()) == expected


def test_a_reply_bigger_than_the_pipe_comes_out_whole() -> None:
    parent, child = socket.socketpair()
    big = os.urandom(3 << 20)  # a Ray worker's fitted pictures: far past a socket's buffer
    with parent, child:
        writer = threading.Thread(target=send_frame, args=(child.fileno(), big))
        writer.start()
        inbox, frames = Inbox(), []
        while not frames:
            _readable(parent.fileno())
            frames = inbox.read(parent.fileno())
        writer.join(30)
        assert frames == [big]


def test_a_closed_pipe_is_eof_after_the_replies_before_it() -> None:
    parent, child = socket.socketpair()
    with parent:
        send_frame(child.fileno(), b"last words")
        child.close()
        inbox = Inbox()
        _readable(parent.fileno())
        assert inbox.read(parent.fileno()) == [b"last words"]
        _readable(parent.fileno())
        with pytest.raises(EOFError):
            inbox.read(parent.fileno())
