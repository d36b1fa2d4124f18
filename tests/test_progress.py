"""What a scan shows while it runs: the progress line in a real terminal, and its absence
elsewhere; what a watch says per settled batch."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

from conftest import picture
from terminal import in_terminal, needs_tmux
from test_watch import Watcher

PROGRESS = re.compile(r"^[\d,]+/[\d,]+ pictures[, ]")


def gallery(folder: Path, count: int) -> Path:
    """`count` distinct pictures, with one broken file in the middle of them."""
    for i in range(count):
        picture(folder / f"{i:04}.png", (i % 256, i // 256, 90))
    (folder / f"{count // 2:04}-broken.jpg").write_bytes(b"not a picture at all")
    return folder


def two_models(mean_model: Path) -> str:
    """A config with two models: the test model `means`, and the palette as `colours`."""
    palette = Path(str(resources.files("indexer.models.builtin"))) / "palette.model"
    return f'[models.means]\nmodel = "{mean_model}"\n[models.colours]\nmodel = "{palette}"\n'


def environment(tmp_path: Path, config: str = "") -> dict[str, str]:
    (tmp_path / "deeptagger.toml").write_text(config)
    return {
        "DTINDEX_CONFIG": str(tmp_path / "deeptagger.toml"),
        "DTINDEX_DB": str(tmp_path / "index.sqlite"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }


@needs_tmux
def test_the_line_fits_40_columns_and_messages_never_glue_onto_it(tmp_path: Path) -> None:
    folder = gallery(tmp_path / "gallery", 300)
    code, rows = in_terminal(tmp_path, ["scan", "-b", "4", str(folder)], environment(tmp_path))
    screen = "\n".join(rows)
    assert code == 0, screen
    # Only the final state is left on screen: every earlier draw was cleared, none
    # wrapped onto a second row, and it shows everything known as done.
    drawn = [i for i, row in enumerate(rows) if PROGRESS.match(row)]
    assert len(drawn) == 1, screen
    final = drawn[0]
    assert rows[final].startswith("301/301 pictures in "), screen
    # Messages start rows of their own: the broken file, then the summary after the
    # final state (the timings, then the counts).
    assert all(row.startswith("dtindex: ") for row in rows if "dtindex:" in row), screen
    # The message wraps at 40 columns wherever the temporary folder's length puts it:
    # its first row starts "dtindex: ", the name may run on into the next rows.
    broken = next(
        i
        for i, row in enumerate(rows)
        if row.startswith("dtindex: ") and "0150-broken.jpg" in "".join(rows[i : i + 4])
    )
    assert broken < final
    assert rows[final + 1].startswith("dtindex: the model ran"), screen
    assert any(row.startswith("dtindex: scan done:") for row in rows[final + 1 :]), screen


@needs_tmux
def test_tagged_counts_pictures_and_shows_each_model(tmp_path: Path, mean_model: Path) -> None:
    folder = gallery(tmp_path / "gallery", 12)
    env = environment(tmp_path, two_models(mean_model))
    code, rows = in_terminal(tmp_path, ["scan", str(folder)], env, columns=100)
    screen = "\n".join(rows)
    assert code == 0, screen
    final = next(row for row in rows if PROGRESS.match(row))
    assert final.startswith("13/13 pictures in "), screen
    assert final.endswith(", tagged 12 (means 12, colours 12), 1 failed"), screen


def test_no_line_where_stderr_is_not_a_terminal(cli, tmp_path: Path) -> None:
    folder = gallery(tmp_path / "gallery", 20)
    code, out, err = cli("scan", "--json", str(folder))
    assert code == 0, err
    assert json.loads(out)["tagged"] == 20
    assert "pictures, " not in err and "\r" not in err
    assert "dtindex: scan done: files 21, new 21, hashed 21, tagged 20, failed 1" in err


def test_watch_says_one_line_per_settled_batch_with_totals(
    cli, tmp_path: Path, mean_model: Path
) -> None:
    (tmp_path / "deeptagger.toml").write_text(two_models(mean_model))
    folder = tmp_path / "gallery"
    picture(folder / "first.png", (255, 0, 0))
    watcher = Watcher("-b", "2", str(folder))
    try:
        watcher.wait_until(lambda: "watching" in watcher.log())
        for i in range(5):
            picture(tmp_path / "in" / f"{i}.png", (i, 100, 200), old=False)
        for i in range(5):
            (tmp_path / "in" / f"{i}.png").rename(folder / f"{i}.png")
        watcher.wait_until(lambda: "since start: tagged 6 " in watcher.log())
    finally:
        assert watcher.terminate() == 0
    batches = [line for line in watcher.lines if " new file" in line]
    assert batches, watcher.log()
    per_model = r"tagged \d+ \(means \d+, colours \d+\)"
    for line in batches:  # one line per batch, both models in it, and the totals
        assert re.search(rf"\d+ new files?: {per_model}; since start: {per_model}", line)
    assert "watch stopped; since start: tagged 6 (means 6, colours 6)" in watcher.log()
    assert not any("means: tagged" in line for line in watcher.lines)  # no line per model
