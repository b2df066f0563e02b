"""Exceptions raised by raiiaf_rs. Catch ``RaiiafError`` for all of them.

Operating-system errors (missing file, permissions) are the built-in
``OSError`` subclasses, with the path in ``filename``.
"""

from __future__ import annotations

__all__ = [
    "CorruptFileError",
    "HashMismatchError",
    "InvalidArgumentError",
    "LimitExceededError",
    "RaiiafError",
    "TargetExistsError",
    "UnsupportedError",
]


class RaiiafError(Exception):
    """Base class of every error raised by raiiaf_rs."""


class CorruptFileError(RaiiafError):
    """The file is not a readable .raiiaf: truncated, bad magic or manifest, undecodable chunk."""


class LimitExceededError(CorruptFileError):
    """The file declares sizes its bytes cannot justify (e.g. a decompression bomb)."""


class HashMismatchError(CorruptFileError):
    """A chunk decoded, but its SHA-256 differs from the manifest's: the file was altered."""


class UnsupportedError(RaiiafError):
    """A newer format version or codec, or a request this build cannot serve."""


class InvalidArgumentError(RaiiafError, ValueError):
    """A bad argument: unknown codec or dtype, wrong shape, lossy conversion refused, …"""


class TargetExistsError(RaiiafError, FileExistsError):
    """The output file exists and ``overwrite=True`` was not given."""
