"""`dtindex tag` end to end: real ONNX Runtime sessions on probe models, generated pictures."""

from __future__ import annotations

import io
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import picture, write_model
from PIL import Image


def pos(y: int, x: int, c: int, shape: str = "nhwc", size: int = 8) -> int:
    return c * size * size + y * size + x if shape == "nchw" else (y * size + x) * 3 + c


def probe(tmp_path: Path, shape: str = "nhwc", settings: str = "", **kw: object) -> Path:
    positions = [pos(y, x, c, shape) for y, x in ((0, 0), (4, 4)) for c in range(3)]
    return write_model(
        tmp_path / "m", "probe", shape=shape, positions=positions, settings=settings, **kw
    )  # type: ignore[arg-type]


def weights(out: bytes) -> dict[str, list[float]]:
    """path -> the six probe values (0 where a tag was not printed)."""
    result: dict[str, list[float]] = {}
    for line in out.decode().splitlines():
        path, tag, weight = line.split("\t")
        result.setdefault(path, [0.0] * 6)[int(tag[1:])] = float(weight)
    return result


WIDE = (10, 20, 30)  # an 8x4 picture: 2 rows of padding above and below in an 8x8 input


@pytest.mark.parametrize(
    ("shape", "settings", "expected"),
    [
        ("nhwc", "pad = white\n", [255, 255, 255, 10, 20, 30]),
        ("nchw", "pad = white\n", [255, 255, 255, 10, 20, 30]),
        ("nhwc", "pad = edge\n", [10, 20, 30, 10, 20, 30]),
        ("nhwc", "pad = stretch\n", [10, 20, 30, 10, 20, 30]),
        ("nhwc", "channels = bgr\n", [255, 255, 255, 30, 20, 10]),
        ("nchw", "channels = bgr\npad = edge\n", [30, 20, 10, 30, 20, 10]),
    ],
)
def test_layouts_channels_and_padding(tmp_path: Path, cli, shape, settings, expected) -> None:
    model = probe(tmp_path, shape, settings)
    image = picture(tmp_path / "wide.png", WIDE, size=(8, 4))
    code, out, err = cli("tag", "-t", "0", str(model), str(image))
    assert code == 0, err
    assert weights(out)[str(image)] == expected


def test_normalize_and_sigmoid(tmp_path: Path, cli) -> None:
    image = picture(tmp_path / "wide.png", (0, 255, 51), size=(8, 4))
    model = probe(tmp_path, settings="normalize = true\n")
    assert weights(cli("tag", "-t", "0", str(model), str(image))[1])[str(image)] == [
        1.0,
        1.0,
        1.0,
        0.0,
        1.0,
        0.2,
    ]
    model = probe(tmp_path, settings="normalize = true\ninterpret = sigmoid\n")
    assert weights(cli("tag", "-t", "0", str(model), str(image))[1])[str(image)] == [
        0.73,
        0.73,
        0.73,
        0.5,
        0.73,
        0.55,
    ]


def test_output_format_threshold_and_model_order(tmp_path: Path, cli) -> None:
    model = probe(tmp_path, settings="normalize = true\n")
    image = picture(tmp_path / "a.png", (0, 255, 51), size=(8, 4))
    code, out, _ = cli("tag", "-t", "0.5", str(model), str(image))
    assert code == 0
    assert (
        out
        == (
            f"{image}\tp0\t1.00\n{image}\tp1\t1.00\n{image}\tp2\t1.00\n{image}\tp4\t1.00\n"
        ).encode()
    )


def test_upscale_false_keeps_small_pictures_small(tmp_path: Path, cli) -> None:
    image = picture(tmp_path / "small.png", (10, 20, 30), size=(2, 2))
    up = probe(tmp_path, settings="upscale = true\n")
    assert weights(cli("tag", "-t", "0", str(up), str(image))[1])[str(image)][:3] == [10, 20, 30]
    small = probe(tmp_path, settings="upscale = false\n")
    assert weights(cli("tag", "-t", "0", str(small), str(image))[1])[str(image)] == [
        255,
        255,
        255,
        10,
        20,
        30,
    ]


def test_batches_print_the_same_lines(tmp_path: Path, cli) -> None:
    model = probe(tmp_path)
    images = [
        str(picture(tmp_path / f"{i}.png", (i * 20 + 1, 5, 9), size=(8, 4 + i))) for i in range(7)
    ]
    one = cli("tag", "-t", "0", "-b", "1", str(model), *images)
    three = cli("tag", "-t", "0", "-b", "3", str(model), *images)
    assert one[0] == three[0] == 0
    assert one[1] == three[1] and len(one[1].splitlines()) == 7 * 6


def test_fixed_batch_graph_runs_one_picture_per_call(tmp_path: Path, cli) -> None:
    model = probe(tmp_path, batch=1)
    images = [str(picture(tmp_path / f"{i}.png", (i * 30, 1, 2), size=(8, 4))) for i in range(5)]
    code, out, err = cli("tag", "-t", "0", "-b", "4", str(model), *images)
    assert code == 0, err
    assert [weights(out)[p][3] for p in images] == [i * 30 for i in range(5)]
    assert out == cli("tag", "-t", "0", "-b", "1", str(model), *images)[1]


def test_symbolic_size_uses_the_size_setting(tmp_path: Path, cli) -> None:
    positions = [pos(0, 0, 0), pos(4, 4, 0)]
    model = write_model(
        tmp_path / "m", "sym", fixed_size=False, positions=positions, settings="pad = white\n"
    )
    image = picture(tmp_path / "x.png", (7, 7, 7), size=(8, 4))
    code, out, err = cli("tag", "-t", "0", str(model), str(image))
    assert code == 0, err
    assert out.decode().splitlines() == [f"{image}\tp0\t255.00", f"{image}\tp1\t7.00"]


def test_pipe_reads_paths_as_a_stream(tmp_path: Path, cli, monkeypatch) -> None:
    model = probe(tmp_path)
    images = [picture(tmp_path / f"{i}.png", (i, 2, 3), size=(8, 4)) for i in range(3)]
    stdin = io.TextIOWrapper(io.BytesIO(b"".join(bytes(p) + b"\n" for p in images) + b"\n"))
    monkeypatch.setattr(sys, "stdin", stdin)
    code, out, _ = cli("tag", "-t", "0", "--pipe", str(model))
    assert code == 0
    assert list(weights(out)) == [str(p) for p in images]


def test_broken_pictures_are_named_and_others_still_tagged(tmp_path: Path, cli) -> None:
    model = probe(tmp_path)
    good = picture(tmp_path / "good.png", (1, 2, 3), size=(8, 4))
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "text.jpg"
    text.write_text("not a picture")
    noisy = tmp_path / "noisy.png"
    Image.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3)).save(noisy)
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(noisy.read_bytes()[:300])
    missing = tmp_path / "missing.png"
    code, out, err = cli(
        "tag", "-t", "0", str(model), str(empty), str(good), str(text), str(truncated), str(missing)
    )
    assert code == 1
    assert list(weights(out)) == [str(good)]
    for path, reason in (
        (empty, "empty file"),
        (text, "not a picture"),
        (truncated, "cannot decode"),
        (missing, "No such file"),
    ):
        assert f"{path}: " in err and reason in err


def test_folders_expand_to_pictures_case_insensitively(tmp_path: Path, cli) -> None:
    model = probe(tmp_path)
    picture(tmp_path / "g" / "A.JPG", (1, 2, 3), fmt="JPEG")
    picture(tmp_path / "g" / "sub" / "b.png", (1, 2, 3))
    (tmp_path / "g" / "notes.txt").write_text("x")
    code, out, _ = cli("tag", str(model), str(tmp_path / "g"))
    assert code == 0
    assert sorted(weights(out)) == [
        str(tmp_path / "g" / "A.JPG"),
        str(tmp_path / "g" / "sub" / "b.png"),
    ]


def test_model_from_config_table(tmp_path: Path, cli) -> None:
    probe(tmp_path)
    (tmp_path / "deeptagger.toml").write_text(
        '[models.probe]\nonnx = "m/probe.onnx"\ntags = "m/probe.tags"\nshape = "nhwc"\n'
        'channels = "bgr"\npad = "edge"\nthreshold = 0.5\n'
    )
    image = picture(tmp_path / "x.png", (10, 20, 30), size=(8, 4))
    code, out, err = cli("tag", "probe", str(image))
    assert code == 0, err
    assert weights(out)[str(image)] == [30, 20, 10, 30, 20, 10]
    (tmp_path / "deeptagger.toml").write_text('[models.probe]\nmodel = "m/probe.model"\n')
    assert weights(cli("tag", "-t", "0", "probe", str(image))[1])[str(image)][0] == 255


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nothing.model"], "nothing.model: cannot read model file"),
        (["nosuch"], "no model named 'nosuch'"),
        (["-t", "1.5", "palette"], "within 0..1"),
    ],
)
def test_usage_and_model_errors_exit_2(tmp_path: Path, cli, args, message) -> None:
    code, out, err = cli("tag", *args, str(picture(tmp_path / "x.png")))
    assert code == 2 and out == b""
    assert message in err and "Traceback" not in err


def test_no_pictures_and_no_pipe_is_a_usage_error(cli) -> None:
    code, out, err = cli("tag", "palette")
    assert (code, out) == (2, b"")
    assert "no pictures given" in err and "--pipe" in err


def test_graph_checks_explain_the_problem(tmp_path: Path, cli) -> None:
    image = str(picture(tmp_path / "x.png"))
    model = probe(tmp_path)
    (tmp_path / "m" / "probe.tags").write_text("a\nb\n")
    code, _, err = cli("tag", str(model), image)
    assert code == 2 and "6 scores but" in err and "lists 2 tags" in err
    model = write_model(tmp_path / "m2", "sym", fixed_size=False, positions=[0])
    (tmp_path / "m2" / "sym.model").write_text("name = sym\n")
    code, _, err = cli("tag", str(model), image)
    assert code == 2 and "set size = N" in err
    model = write_model(tmp_path / "m3", "layout", shape="nhwc", positions=[0])
    (tmp_path / "m3" / "layout.model").write_text("shape = nchw\n")
    code, _, err = cli("tag", str(model), image)
    assert code == 2 and "expects 3" in err


def test_builtin_palette_tags_colours(tmp_path: Path, cli) -> None:
    red = picture(tmp_path / "red.jpg", (220, 20, 30), size=(64, 48), fmt="JPEG")
    grey = tmp_path / "grey.png"
    Image.new("L", (30, 50), 128).save(grey)
    code, out, _ = cli("tag", "-t", "0.5", "palette", str(red), str(grey))
    assert code == 0
    tags = {(p, t) for p, t, _ in (line.split("\t") for line in out.decode().splitlines())}
    assert (str(red), "red_theme") in tags and (str(grey), "greyscale") in tags
    assert (str(red), "greyscale") not in tags and (str(grey), "red_theme") not in tags


def test_io_binding_gives_the_same_scores(tmp_path: Path) -> None:
    """The GPU path (I/O binding) runs on the CPU provider too; it must agree exactly."""
    import dataclasses

    import numpy as np

    from indexer.model_tables import ModelDef
    from indexer.modelfile import read_model_file
    from indexer.models.runtime import RuntimeOptions, load

    declared = read_model_file(probe(tmp_path, settings="normalize = true\ninterpret = sigmoid\n"))
    model = ModelDef("probe", "probe", declared.onnx, declared.tags, declared.spec)
    tagger = load(model, RuntimeOptions(cpu=True))
    assert not tagger.bound  # CPU sessions need no binding
    batch = np.random.default_rng(0).random(tagger.new_batch(3).shape, dtype=np.float32)
    bound = dataclasses.replace(tagger, bound=True)
    assert np.array_equal(bound.run(batch), tagger.run(batch))


@pytest.mark.parametrize("gpu_style", [False, True])
def test_pipeline_hands_results_back_in_order_on_the_calling_thread(
    tmp_path: Path, gpu_style: bool
) -> None:
    """A bound (GPU) session runs batches in an inference thread; results must not care."""
    import dataclasses
    import threading

    import numpy as np

    from indexer.imaging.prepare import decode, fill, fit
    from indexer.imaging.workers import DecoderPool
    from indexer.model_tables import ModelDef
    from indexer.modelfile import read_model_file
    from indexer.models.runtime import RuntimeOptions, load
    from indexer.pipeline.direct import Direct
    from indexer.pipeline.flow import Budget, run_pipeline

    declared = read_model_file(probe(tmp_path, settings="normalize = true\n"))
    model = ModelDef("probe", "probe", declared.onnx, declared.tags, declared.spec)
    tagger = dataclasses.replace(load(model, RuntimeOptions(cpu=True)), bound=gpu_style)
    paths = [picture(tmp_path / f"{i:02}.png", (i * 23 % 256, i * 7 % 256, 99)) for i in range(11)]
    seen: list[tuple[Path, list[float]]] = []
    threads = set()

    def on_scores(index: int, jobs: list[Path], scores: np.ndarray) -> None:
        threads.add(threading.get_ident())
        seen.extend(zip(jobs, scores.tolist(), strict=True))

    def on_error(path: Path, reason: str) -> None:
        raise AssertionError(f"{path}: {reason}")

    steps = Direct[Path](str, 1, on_scores, on_error)
    with DecoderPool(2, 10**8, 60) as pool:
        run_pipeline([tagger], paths, steps, pool, 3, Budget(2))
    assert threads == {threading.get_ident()}
    assert [path for path, _ in seen] == paths
    for path, scores in seen:
        expected = tagger.new_batch(1)
        image = decode(path.read_bytes(), 10**8)[0]
        fill(expected[0], fit(image, tagger.spec, tagger.height, tagger.width), tagger.spec)
        assert np.allclose(scores, tagger.run(expected)[0])


def test_fp16_copy_is_converted_once_agrees_and_is_its_own_version(tmp_path: Path, cli) -> None:
    import numpy as np
    import onnx

    from indexer.model_tables import ModelDef
    from indexer.modelfile import read_model_file
    from indexer.models.runtime import RuntimeOptions, load
    from indexer.models.versions import identify

    probe(tmp_path, settings="normalize = true\n")
    (tmp_path / "deeptagger.toml").write_text(
        '[models.full]\nmodel = "m/probe.model"\n'
        '[models.half]\nmodel = "m/probe.model"\nfp16 = true\n'
    )
    image = picture(tmp_path / "x.png", (10, 20, 200), size=(8, 8))
    code, out, err = cli("tag", "-t", "0", "half", str(image))
    assert code == 0, err
    assert "fp16 is meant for GPUs" in err
    assert weights(out)[str(image)] == pytest.approx([10 / 255, 20 / 255, 200 / 255] * 2, abs=0.005)

    (copy,) = (tmp_path / "xdg-cache" / "dtindex" / "fp16").glob("*.onnx")
    graph = onnx.load(str(copy))
    assert graph.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    casts = [n for n in graph.graph.node if n.op_type == "Cast"]
    assert any(a.i == onnx.TensorProto.FLOAT16 for n in casts for a in n.attribute)
    converted_at = copy.stat().st_mtime_ns
    assert cli("tag", "half", str(image))[0] == 0
    assert copy.stat().st_mtime_ns == converted_at  # kept, not converted again

    declared = read_model_file(tmp_path / "m" / "probe.model")
    plain = ModelDef("p", "p", declared.onnx, declared.tags, declared.spec)
    halved = ModelDef("p", "p", declared.onnx, declared.tags, declared.spec, variant="fp16")
    assert identify(plain)[0] != identify(halved)[0]
    options = RuntimeOptions(cpu=True, cache_dir=str(tmp_path / "xdg-cache" / "dtindex"))
    fp32, fp16 = load(plain, options), load(halved, options)
    batch = np.random.default_rng(3).random(fp32.new_batch(4).shape, dtype=np.float32)
    difference = np.abs(fp16.run(batch) - fp32.run(batch))
    assert 0 < difference.max() < 1e-3  # really half precision, and close


def test_fp16_setting_must_be_a_boolean(tmp_path: Path, cli) -> None:
    probe(tmp_path)
    (tmp_path / "deeptagger.toml").write_text(
        '[models.half]\nmodel = "m/probe.model"\nfp16 = "yes"\n'
    )
    code, _, err = cli("tag", "half", str(picture(tmp_path / "x.png")))
    assert code == 2 and "[models.half]: fp16 = 'yes' must be true or false" in err


def test_fp16_without_onnx_says_what_to_install(tmp_path: Path, cli, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # as on a machine without the package
    monkeypatch.setitem(sys.modules, "onnxruntime.transformers.float16", None)
    probe(tmp_path)
    (tmp_path / "deeptagger.toml").write_text(
        '[models.half]\nmodel = "m/probe.model"\nfp16 = true\n'
    )
    code, _, err = cli("tag", "half", str(picture(tmp_path / "x.png")))
    assert code == 2 and "needs the onnx package" in err and "dtindex[cuda]" in err


def test_pipe_answers_each_path_while_stdin_stays_open(tmp_path: Path, cli) -> None:
    """As deeptagger: a path written to the pipe is answered before the next one comes.

    `cli` is asked for its environment only: a private config, cache and working folder.
    """
    model = probe(tmp_path)
    stderr = tmp_path / "stderr"
    with stderr.open("wb") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "indexer", "tag", "--pipe", "-t", "0", str(model)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
        )
    assert process.stdin is not None and process.stdout is not None
    lines: queue.Queue[bytes] = queue.Queue()
    output = process.stdout

    def read() -> None:
        for line in output:
            lines.put(line)
        lines.put(b"")  # the end of the output

    threading.Thread(target=read, daemon=True).start()

    def next_lines(count: int, timeout: float = 60.0) -> bytes:
        deadline, got = time.monotonic() + timeout, b""
        for _ in range(count):
            try:
                got += lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no answer in {timeout}s: {stderr.read_bytes()!r}") from None
        return got

    try:
        for i, colour in enumerate([(11, 12, 13), (21, 22, 23)]):
            image = picture(tmp_path / f"{i}.png", colour, size=(8, 4))
            process.stdin.write(bytes(image) + b"\n")
            process.stdin.flush()  # and the pipe stays open
            assert weights(next_lines(6)) == {str(image): [255, 255, 255, *colour]}
        process.stdin.close()
        assert next_lines(1) == b""  # nothing more, then the end
        assert process.wait(60) == 0, stderr.read_bytes()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
