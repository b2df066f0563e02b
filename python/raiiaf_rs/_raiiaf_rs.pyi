"""Type stubs of the native module. Private: use the ``raiiaf_rs`` package API."""

from typing import Any, Optional

import numpy as np

__version__: str

def _write(
    path: str,
    latents: list[tuple[str, str, np.ndarray]],
    image: Optional[bytes],
    image_extra_json: str,
    metadata_json: str,
    environment_json: Optional[str],
    codec: str,
    overwrite: bool,
    fsync: bool,
) -> int: ...
def _read(
    path: str,
    verify: bool = True,
    names: Optional[list[str]] = None,
    with_image: bool = True,
) -> dict[str, Any]: ...
def _verify(path: str) -> None: ...
def _convert_f32(array: np.ndarray, target: str) -> np.ndarray: ...
def _environment_document(components: list[tuple[str, str]]) -> str: ...
def _cli_main(argv: list[str]) -> int: ...
