"""What the benchmarks share: dtindex run in this process, and the machine they ran on.

Light to import (ONNX Runtime and dtindex are imported when used): the pipeline
benchmark's decoder processes are spawned, and each imports the main module first.
"""

from __future__ import annotations

import io
import os
import platform
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def quiet_stdout() -> Iterator[None]:
    saved = sys.stdout
    sys.stdout = io.TextIOWrapper(open(os.devnull, "wb"))  # noqa: SIM115
    try:
        yield
    finally:
        sys.stdout.close()
        sys.stdout = saved


BUSY = re.compile(r"the model ran ([\d.]+) s of ([\d.]+) s \(\d+%\); ([\d.]+) s waiting")


def dtindex_run(argv: list[str]) -> dict[str, float]:
    """Seconds for one dtindex command in this process, and where its tagging time went
    (read from its summary line: the model's seconds, and the seconds spent waiting)."""
    from indexer.cli.main import main

    errors = io.StringIO()
    with quiet_stdout():
        saved, sys.stderr = sys.stderr, errors
        try:
            start = time.perf_counter()
            code = main(argv)
            seconds = time.perf_counter() - start
        finally:
            sys.stderr = saved
    if code != 0:
        raise SystemExit(f"dtindex {' '.join(argv[:6])} ... exited {code}:\n{errors.getvalue()}")
    result = {"seconds": seconds}
    busy = BUSY.search(errors.getvalue())
    if busy:
        result["model_s"], result["waiting_s"] = float(busy[1]), float(busy[3])
    return result


def machine() -> dict[str, object]:
    import onnxruntime as ort

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "onnxruntime": ort.__version__, "providers": ort.get_available_providers(),
            "date": time.strftime("%Y-%m-%d")}  # fmt: skip
