"""`dtindex model add NAME SOURCE`: add a downloaded model to `deeptagger.toml`;
`dtindex model check NAME PICTURES...`: compare its int8 and fp16 copies with fp32.

SOURCE is a `.model` file, a folder as the model was published (WD: model.onnx +
selected_tags.csv; ML-Danbooru: *.onnx + tags.csv; a DeepDanbooru project), or a Hugging
Face repository id such as SmilingWolf/wd-vit-tagger-v3 (downloaded with huggingface_hub,
or found in its cache). The model is loaded and run on one picture before the table,
with every setting spelled out, is appended to the config (created if needed), which
is named. The title is a `.model` file's `name=` (else the folder's name), and `size` is
the one the graph really has where its height and width are fixed.
"""

from __future__ import annotations

import argparse
import logging

from indexer.cli.commands import model_check
from indexer.cli.options import Context
from indexer.core.adding import add_model
from indexer.wording import plural

log = logging.getLogger("dtindex")
FAILURE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = sub.add_parser(
        "add",
        help="add a model to the config",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add.add_argument("name", metavar="NAME", help="the model's name in the config")
    add.add_argument("source", metavar="SOURCE", help="a .model file, a folder, or owner/repo")
    check = sub.add_parser(
        "check",
        help="compare a model's int8 and fp16 copies with fp32 on your pictures",
        description=model_check.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    model_check.add_arguments(check)


def run(args: argparse.Namespace, ctx: Context) -> int:
    if args.action == "check":
        return model_check.run(args, ctx)
    added = add_model(
        args.name, args.source, ctx.config_target, ctx.config, ctx.env, ctx.config_named
    )
    summary = f"input {added.height}x{added.width}, {plural(added.tags, 'tag')}"
    log.info("added %s (%s; %s, version %s)", added.name, added.family, summary, added.version)
    created = " (created)" if added.created else ""
    log.info("wrote [models.%s] to %s%s", added.name, added.config, created)
    return 0
