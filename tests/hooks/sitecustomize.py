"""Test hooks in every Python process a test starts with them: faults, a watch on memory.

Test faults in dtindex's decoder processes are installed by the tests, never shipped.

A test that wants a decoder to crash or hang puts this folder first on PYTHONPATH and
sets DTINDEX_TEST_FAULTS to "crash-marker,hang-marker" (`conftest.inject_faults`). Every
Python process started with that environment (the decoders, and the processes that start
them: `dtindex`, Ray's workers) imports this file at start-up; where the variable is set,
it wraps the bytes a decoder reads for a picture: a file holding the crash marker kills
the decoder with SIGSEGV, one holding the hang marker keeps it busy forever, as a codec's
bug would.

Where DTINDEX_TEST_START_DELAY is a number of seconds, a decoder process waits that long
while it starts (importing its module), as one does on a machine loaded by other work.

Where DTINDEX_TEST_GPU_LANE names a decoder behaviour, dtindex's runs go through the GPU
lane on ONNX Runtime's CPU device with a decoder of the tests' own (see gpu_lane.py).

Where DTINDEX_TEST_SHM_LOG names a file, each shared memory segment the process makes is
appended to it by name, so a test can tell that none of them outlived the run.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import signal
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

DECODER = "indexer.imaging.decoder"
# The decoder's names for reading a picture's bytes: from the file, or as the driver sent them.
READERS = ("read_again", "unchanged")


def _faulty(read: Callable[..., Any], markers: list[bytes]) -> Callable[..., Any]:
    def reading(*args: Any) -> Any:
        data = read(*args)
        if isinstance(data, bytes):
            if markers[0] and markers[0] in data:
                os.kill(os.getpid(), signal.SIGSEGV)
            if len(markers) > 1 and markers[1] and markers[1] in data:
                while True:
                    pass
        return data

    return reading


class _Loader(importlib.abc.Loader):
    """Runs a module as its own loader does, then `patch` on it."""

    def __init__(self, inner: importlib.abc.Loader, patch: Callable[[ModuleType], Any]) -> None:
        self.inner, self.patch = inner, patch

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.inner.exec_module(module)
        self.patch(module)


def _decoder_faults(markers: list[bytes]) -> Callable[[ModuleType], None]:
    def patch(module: ModuleType) -> None:
        delay = float(os.environ.get("DTINDEX_TEST_START_DELAY") or 0)
        worker = sys.argv[0] == "-c" and all(a.isdigit() for a in sys.argv[1:])  # spawning
        if delay and worker:
            import time

            time.sleep(delay)  # a slow start, injected (not a synchronisation)
        for name in READERS:
            setattr(module, name, _faulty(getattr(module, name), markers))

    return patch


class _Finder(importlib.abc.MetaPathFinder):
    """Finds the modules to patch as the other finders do, and wraps their loaders."""

    def __init__(self, patches: dict[str, Callable[[ModuleType], Any]]) -> None:
        self.patches = patches

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name not in self.patches:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _Loader(spec.loader, self.patches[name])
                return spec
        return None


def _log_shared_memory(log: str) -> None:
    from multiprocessing import shared_memory

    make = shared_memory.SharedMemory.__init__

    def logged(self: shared_memory.SharedMemory, *args: Any, **kwargs: Any) -> None:
        make(self, *args, **kwargs)
        created = kwargs.get("create", args[1] if len(args) > 1 else False)
        if created:
            with open(log, "a") as handle:
                handle.write(self.name + "\n")

    shared_memory.SharedMemory.__init__ = logged  # type: ignore[method-assign]


_markers = [m.encode() for m in os.environ.get("DTINDEX_TEST_FAULTS", "").split(",")]
_patches: dict[str, Callable[[ModuleType], Any]] = {}
if any(_markers) or os.environ.get("DTINDEX_TEST_START_DELAY"):
    _patches[DECODER] = _decoder_faults(_markers)
if os.environ.get("DTINDEX_TEST_GPU_LANE"):
    import gpu_lane

    _patches["indexer.models.runtime"] = gpu_lane.install_runtime
    _patches["indexer.pipeline.device"] = gpu_lane.install_device
if _patches:
    sys.meta_path.insert(0, _Finder(_patches))
if os.environ.get("DTINDEX_TEST_SHM_LOG"):
    _log_shared_memory(os.environ["DTINDEX_TEST_SHM_LOG"])
