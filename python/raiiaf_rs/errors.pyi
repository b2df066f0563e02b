"""Types of the exception classes the native extension creates (see errors.py)."""

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

class RaiiafError(Exception):
    #: The chunk or part of the file concerned, e.g. 'LATN "initial_noise" (#0)'.
    chunk: str | None
    #: The SHA-256 the manifest records (HashMismatchError).
    expected: str | None
    #: The SHA-256 of the decoded content (HashMismatchError).
    actual: str | None
    #: Bytes the file declares (LimitExceededError) or needs (truncated files).
    declared: int | None
    #: The limit exceeded, in bytes (LimitExceededError; the file length when truncated).
    limit: int | None

class CorruptFileError(RaiiafError): ...
class LimitExceededError(CorruptFileError): ...

class DecodedSizeLimitError(LimitExceededError):
    """More than ``max_decoded_bytes`` (``limit``) to decode; ``declared`` says how much."""

    declared: int
    limit: int

class HashMismatchError(CorruptFileError): ...
class UnsupportedError(RaiiafError): ...
class InvalidArgumentError(RaiiafError, ValueError): ...
class TargetExistsError(RaiiafError, FileExistsError): ...
class InternalError(RaiiafError): ...
