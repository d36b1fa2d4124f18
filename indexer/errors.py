"""Exceptions raised by library code; only the CLI turns them into messages and exit codes.

`Kind` is the one definition of which failures a later scan retries.
"""

from __future__ import annotations

import enum
import errno
import signal
from dataclasses import dataclass


class Kind(enum.Enum):
    """Why a picture failed; decides whether the next scan tries it again.

    Only the picture's own fault (not a picture, cannot be decoded) stays failed until
    the file changes. Everything else depends on the moment or the machine (a limit
    since raised, a decoder killed, a timeout, permissions, I/O, memory, the model or
    its provider) and is retried by the next scan; `scan --retry-failed` retries all.
    """

    PICTURE = "picture"
    LIMIT = "limit"  # over max_pixels: retried once the limit is raised above its `needs`
    CRASH = "crash"  # a decoder killed by a signal
    TIMEOUT = "timeout"  # decode_timeout ran out
    PERMISSION = "permission"
    IO = "io"
    MEMORY = "memory"
    MODEL = "model"  # ONNX Runtime failed (provider error, out of memory)
    OUTPUT = "output"  # the model's scores are not finite numbers
    CODEC = "codec"  # a format dtindex knows, whose decoder (an extra) is not installed

    @property
    def retried(self) -> bool:
        """Whether the next scan retries it as things stand (LIMIT: once raised)."""
        return self not in (Kind.PICTURE, Kind.LIMIT)


@dataclass(frozen=True)
class Failure:
    """Why a picture has no result for a model version, and whether a later run retries."""

    reason: str
    kind: Kind = Kind.PICTURE
    needs: int | None = None  # LIMIT: the pixels the picture would take


def os_error_kind(exc: OSError) -> Kind:
    """Permission problems are told apart: fixing them (chmod) changes no mtime."""
    if exc.errno in (errno.EACCES, errno.EPERM):
        return Kind.PERMISSION
    if exc.errno == errno.ENOMEM:
        return Kind.MEMORY
    return Kind.IO


class DtindexError(Exception):
    """Base of every error a user can act on; the message is shown as is."""


class ConfigError(DtindexError):
    """A configuration or `.model` file is missing, malformed or inconsistent."""


class ModelError(DtindexError):
    """A model cannot be loaded or its graph does not fit its settings."""


class DecodeError(DtindexError):
    """A picture cannot be read or decoded; scans record it with its `kind` and go on."""

    def __init__(self, message: str, kind: Kind = Kind.PICTURE, needs: int | None = None) -> None:
        super().__init__(message)
        self.kind, self.needs = kind, needs  # needs: the pixels a LIMIT failure would take


class StoreError(DtindexError):
    """The index database cannot be opened, upgraded or written."""


class ScanError(DtindexError):
    """A scan cannot complete (a root is missing or looks unmounted)."""


class Incomplete(DtindexError):
    """The work ran to its end, but some pictures failed for reasons a later run retries."""


class Interrupted(DtindexError):
    """A signal stopped the work; what was committed stays, a rerun resumes."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}; a rerun resumes")
        self.signum = signum


class SidecarError(DtindexError):
    """A sidecar file to merge into is not XMP dtindex can read; it is left untouched."""


class UsageError(DtindexError):
    """The command line asks for something inconsistent."""
