"""Type stubs of the native module. Private: use the ``raiiaf_rs`` package API."""

from typing import Any

import numpy as np

from raiiaf_rs import errors as _errors

# The exception classes, created by the extension (bindings/python/src/errors.rs).
RaiiafError = _errors.RaiiafError
CorruptFileError = _errors.CorruptFileError
LimitExceededError = _errors.LimitExceededError
DecodedSizeLimitError = _errors.DecodedSizeLimitError
HashMismatchError = _errors.HashMismatchError
UnsupportedError = _errors.UnsupportedError
InvalidArgumentError = _errors.InvalidArgumentError
TargetExistsError = _errors.TargetExistsError
InternalError = _errors.InternalError

__version__: str
#: torch.__version__ of the torch the torch build links; None in the default build.
LINKED_TORCH: str | None

def _write(
    path: str,
    latents: list[tuple[str, str, Any]],  # numpy arrays; torch tensors in the torch build
    image: bytes | None,
    image_extra_json: str,
    metadata_json: str,
    environment_json: str | None,
    codec: str,
    overwrite: bool,
    fsync: bool,
) -> int: ...
def _read(
    path: str,
    verify: bool = True,
    names: list[str] | None = None,
    with_image: bool = True,
    as_torch: bool = False,  # the torch build only
    max_decoded_bytes: int | None = None,
) -> dict[str, Any]: ...
def _read_bytes(
    data: bytes,
    verify: bool = True,
    names: list[str] | None = None,
    with_image: bool = True,
    as_torch: bool = False,
    max_decoded_bytes: int | None = None,
) -> dict[str, Any]: ...
def _write_bytes(
    latents: list[tuple[str, str, Any]],
    image: bytes | None,
    image_extra_json: str,
    metadata_json: str,
    environment_json: str | None,
    codec: str,
) -> bytes: ...
def _verify(path: str, max_decoded_bytes: int | None = None) -> None: ...
def _test_panic(message: str) -> None: ...
def _codecs() -> list[tuple[str, str, list[str], str]]: ...
def _convert_f32(array: np.ndarray, target: str) -> np.ndarray: ...
def _environment_document(components: list[tuple[str, str]]) -> str: ...
def _environment(host_facts_json: str) -> str: ...
def _hardware_info(host_facts_json: str, machine_name: str | None = None) -> str: ...
def _drift(
    stored_json: str, current_json: str
) -> list[tuple[str, str, str | None, str | None, bool]]: ...
def _fingerprint(path: str, cache_dir: str | None = None) -> tuple[str, int, bool]: ...
def _cli_main(argv: list[str], host_facts_json: str | None = None) -> int: ...
def _encode_png(array: np.ndarray, text_pairs: list[tuple[str, str]], level: str) -> bytes: ...

# The catalog (bindings/python/src/catalog.rs; public API: raiiaf_rs.indexing).
class CatalogTable:
    """An Arrow table of catalog rows (schema: CATALOG.md), exported through the Arrow
    PyCapsule interface."""

    @property
    def num_rows(self) -> int: ...
    @property
    def column_names(self) -> list[str]: ...
    def __len__(self) -> int: ...
    def __arrow_c_schema__(self) -> object: ...
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...

def _catalog(
    paths: list[str], hash: bool = False, verify: bool = False, max_decoded_bytes: int | None = None
) -> CatalogTable: ...
def _catalog_files(
    files: list[str], hash: bool = False, verify: bool = False, max_decoded_bytes: int | None = None
) -> CatalogTable: ...
def _catalog_bytes(
    items: list[tuple[str, bytes, int]],
    hash: bool = False,
    verify: bool = False,
    max_decoded_bytes: int | None = None,
) -> CatalogTable: ...
def _catalog_environment(envc_json: str) -> CatalogTable: ...
def _find_files(paths: list[str]) -> list[str]: ...
def _index(
    paths: list[str],
    output: str,
    hash: bool = False,
    verify: bool = False,
    full: bool = False,
    max_decoded_bytes: int | None = None,
) -> dict[str, int]: ...
