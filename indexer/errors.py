"""Exceptions raised by library code; only the CLI turns them into messages and exit codes."""

from __future__ import annotations


class DtindexError(Exception):
    """Base of every error a user can act on; the message is shown as is."""


class ConfigError(DtindexError):
    """A configuration or `.model` file is missing, malformed or inconsistent."""


class ModelError(DtindexError):
    """A model cannot be loaded or its graph does not fit its settings."""


class DecodeError(DtindexError):
    """A picture cannot be read or decoded; scans record it and go on."""


class StoreError(DtindexError):
    """The index database cannot be opened, upgraded or written."""


class ScanError(DtindexError):
    """A scan cannot complete (a root is missing or looks unmounted)."""


class UsageError(DtindexError):
    """The command line asks for something inconsistent."""
