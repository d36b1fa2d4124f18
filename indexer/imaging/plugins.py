"""Decoders Pillow lacks, registered the first time a picture of their format is met.

HEIF/HEIC (every iPhone photo) is read through pillow-heif, JPEG XL through
pillow-jxl-plugin: optional extras (`dtindex[heif]`, `dtindex[jxl]`). Neither is
imported until a file whose first bytes say HEIF or JPEG XL (`sniff.format_of`) is
decoded, so a gallery without them never pays for their libraries. Without the plugin,
such a file fails as a missing codec (`Kind.CODEC`), not as a broken picture: the
failure names the extra, and the next scan tries the picture again, which succeeds once
the extra is installed.
"""

from __future__ import annotations

import importlib

from indexer.errors import DecodeError, Kind
from indexer.imaging.sniff import HEAD, format_of

# format: (its name for people, the plugin's module, the function registering it with
# Pillow or None where importing it does, the extra that installs it)
PLUGINS = {
    "heif": ("HEIF/HEIC", "pillow_heif", "register_heif_opener", "heif"),
    "jxl": ("JPEG XL", "pillow_jxl", None, "jxl"),
}
_registered: set[str] = set()


def ensure_decoder(data: bytes) -> None:
    """Register the plugin a picture's format needs, once a process; DecodeError of kind
    CODEC, naming the extra, where it is not installed."""
    fmt = format_of(data[:HEAD])
    if fmt not in PLUGINS or fmt in _registered:
        return
    name, module, register, extra = PLUGINS[fmt]
    try:
        plugin = importlib.import_module(module)
    except ImportError:
        raise DecodeError(
            f"a {name} picture, and no {name} decoder is installed: pip install 'dtindex[{extra}]'",
            Kind.CODEC,
        ) from None
    if register is not None:
        getattr(plugin, register)()
    _registered.add(fmt)
