"""Where things are, decided once for the CLI and for Python callers alike: the config,
the index database, the cache folder, the runtime options, and the roots (with `~`
expanded and made absolute, as the index stores them)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from indexer.config import Config, Decode, load_config, locate_config
from indexer.models.runtime import RuntimeOptions as RuntimeOptions  # re-exported
from indexer.models.runtime import cache_folder as cache_folder
from indexer.models.runtime import parse_provider_option
from indexer.store.location import Location as Location
from indexer.store.location import locate
from indexer.store.location import shown as shown

PathLike = str | os.PathLike[str]
ProviderOption = tuple[str, tuple[tuple[str, str], ...]]  # a provider and its options


def settings(config: Config | PathLike | None, env: Mapping[str, str]) -> Config:
    """A Config as given; a path to a deeptagger.toml (which must exist); None: the CLI's
    own lookup (`DTINDEX_CONFIG`, `./deeptagger.toml`, the XDG config folder)."""
    if isinstance(config, Config):
        return config
    if config is not None:
        return load_config(Path(config).expanduser(), required=True)
    path, named = locate_config(None, env)
    return load_config(path, required=named)


def database(db: PathLike | None, env: Mapping[str, str], config: Config) -> Location:
    """`db` (`--db`), `DTINDEX_DB`, the config's `database`, else the XDG data folder: an
    SQLite file or a server's URL (`store.location`)."""
    chosen: PathLike
    if db:
        chosen = db
    elif env.get("DTINDEX_DB"):
        chosen = env["DTINDEX_DB"]
    elif config.database is not None:
        chosen = config.database
    else:
        base = Path(env.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
        chosen = base / "dtindex" / "index.sqlite"
    return locate(chosen)


def runtime(
    config: Config,
    env: Mapping[str, str],
    cpu: bool = False,
    provider_options: Sequence[ProviderOption] = (),
    decode: Decode | None = None,
) -> RuntimeOptions:
    """How sessions are made, with the caches every caller shares (`cache_folder`);
    `decode` (`--decode`) over the config's."""
    return RuntimeOptions.cached(
        config.threads, env, cpu=cpu, provider_options=tuple(provider_options),
        decode=decode or config.decode,
    )  # fmt: skip


def provider_options(texts: Iterable[str]) -> tuple[ProviderOption, ...]:
    """`-o` values (`CUDAExecutionProvider;device_id=1`) as names and key-value pairs."""
    return tuple(parse_provider_option(text) for text in texts)


def absolute(path: PathLike) -> Path:
    """`path` with `~` expanded, made absolute lexically (`..` resolved, never through
    symlinks): how the index stores roots and files, so `./g/../g` names `g`."""
    return Path(os.path.abspath(Path(path).expanduser()))


def key(path: PathLike) -> bytes:
    """`absolute(path)` as the file-system bytes the index keys files by."""
    return os.fsencode(absolute(path))
