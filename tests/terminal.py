"""Running dtindex in a real terminal: tmux, on a private socket, at a chosen width.

What the user would see is what tmux renders: a progress line that wraps shows as a
row of its own, one that is not cleared stays behind, a message glued to it shares its
row. The command's own exit status is kept; the pane stays until it has been read.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

TMUX = shutil.which("tmux")
needs_tmux = pytest.mark.skipif(TMUX is None, reason="needs tmux, a terminal to render in")


def in_terminal(
    folder: Path,
    args: Sequence[str],
    env: Mapping[str, str],
    columns: int = 40,
    timeout: float = 180,
) -> tuple[int, list[str]]:
    """Run `python -m indexer ARGS` in `folder` in a terminal `columns` wide; its exit
    status and the rows of the screen, history included, empty rows left out."""
    assert TMUX is not None
    socket = folder / "tmux.sock"
    status = folder / "terminal.status"
    command = shlex.join([sys.executable, "-m", "indexer", *args])
    exports = "".join(f"export {k}={shlex.quote(v)}; " for k, v in env.items())
    script = (
        f"cd {shlex.quote(str(folder))}; {exports}{command}; echo $? > {shlex.quote(str(status))}; "
        f"{shlex.quote(TMUX)} -S {shlex.quote(str(socket))} wait-for -S finished; read -r _"
    )
    tmux = [TMUX, "-f", os.devnull, "-S", str(socket)]
    session = [*tmux, "new-session", "-d", "-x", str(columns), "-y", "50", script]
    outside = {k: v for k, v in os.environ.items() if k != "TMUX"}  # not nested in the user's
    subprocess.run(session, check=True, env={**outside, **env})
    try:
        subprocess.run([*tmux, "wait-for", "finished"], check=True, timeout=timeout)
        shown = subprocess.run(
            [*tmux, "capture-pane", "-p", "-S", "-"], check=True, capture_output=True, text=True
        ).stdout
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
    return int(status.read_text()), [row for row in shown.splitlines() if row.strip()]
