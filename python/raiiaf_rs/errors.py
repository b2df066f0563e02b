"""Exceptions raised by raiiaf_rs. Catch ``RaiiafError`` for all of them.

The classes are created by the native extension (``bindings/python/src/errors.rs``), which
raises them directly, with the error's fields as attributes: ``chunk`` (the chunk or part of the
file concerned, e.g. ``LATN "initial_noise" (#0)``), ``expected`` and ``actual`` (SHA-256 digests
of a :class:`HashMismatchError`), ``declared`` and ``limit`` (bytes, for a
:class:`LimitExceededError`); ``None`` where the error has no such field.

Operating-system errors (missing file, permissions) are the built-in
``OSError`` subclasses, with the path in ``filename``.
"""

from __future__ import annotations

from raiiaf_rs._extension import native

__all__ = [
    "CorruptFileError",
    "DecodedSizeLimitError",
    "HashMismatchError",
    "InternalError",
    "InvalidArgumentError",
    "LimitExceededError",
    "RaiiafError",
    "TargetExistsError",
    "UnsupportedError",
]

#: Base class of every error raised by raiiaf_rs.
RaiiafError = native.RaiiafError
#: The file is not a readable .raiiaf: truncated, bad magic or manifest, undecodable chunk.
CorruptFileError = native.CorruptFileError
#: The file declares sizes its bytes cannot justify (a decompression bomb), or a read would
#: decode more than ``max_decoded_bytes``; ``declared`` and ``limit`` say how much.
LimitExceededError = native.LimitExceededError
#: The :class:`LimitExceededError` of the caller's limit: the read would decode ``declared``
#: bytes, more than ``max_decoded_bytes`` (``limit``). The file's sizes are plausible; a forged
#: size (more than the file's bytes can inflate to) is a plain ``LimitExceededError``.
DecodedSizeLimitError = native.DecodedSizeLimitError
#: A chunk decoded, but its SHA-256 differs from the manifest's: the file was altered.
HashMismatchError = native.HashMismatchError
#: A newer format version or codec, or a request this build cannot serve.
UnsupportedError = native.UnsupportedError
#: A bad argument (also a ``ValueError``): unknown codec or dtype, wrong shape, lossy conversion.
InvalidArgumentError = native.InvalidArgumentError
#: The output file exists and ``overwrite=True`` was not given (also a ``FileExistsError``).
TargetExistsError = native.TargetExistsError
#: A bug in raiiaf-rs (a Rust panic, a compressor failure), never the input's fault.
InternalError = native.InternalError
