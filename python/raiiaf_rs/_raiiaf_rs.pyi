"""Type stubs of the native module. Private: use the ``raiiaf_rs`` package API."""

from typing import Any

import numpy as np

__version__: str

def _write(
    path: str,
    latents: list[tuple[str, str, np.ndarray]],
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
) -> dict[str, Any]: ...
def _verify(path: str) -> None: ...
def _convert_f32(array: np.ndarray, target: str) -> np.ndarray: ...
def _environment_document(components: list[tuple[str, str]]) -> str: ...
def _environment(host_facts_json: str) -> str: ...
def _hardware_info(host_facts_json: str, machine_name: str | None = None) -> str: ...
def _drift(
    stored_json: str, current_json: str
) -> list[tuple[str, str, str | None, str | None, bool]]: ...
def _fingerprint(path: str, cache_dir: str | None = None) -> tuple[str, int, bool]: ...
def _cli_main(argv: list[str], host_facts_json: str | None = None) -> int: ...
