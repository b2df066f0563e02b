"""Fixtures for the ComfyUI tests: one real ComfyUI server (CPU) for the session.

`make test` runs them twice: on ComfyUI 0.3.75 (`pytest`, after dev/setup_comfyui.sh has
provided the tree, its Python deps and the tiny checkpoint) and on ComfyUI 0.33.0
(`comfyui-latest-test`: dev/setup_comfyui_latest.sh, then COMFYUI_PATH and COMFYUI_PYTHON
name that tree and its Python). If they are missing the tests FAIL (never skip): a
green run must mean the real ComfyUI ran. The package's __init__.py makes this module
`comfyui.conftest`, so it does not replace tests/conftest.py as `conftest`.
"""

from __future__ import annotations

import sys

import pytest
from userenv import site_dirs

from .harness import COMFYUI_DIR, COMFYUI_PYTHON, TINY_MODEL, ComfyServer


@pytest.fixture(scope="session")
def comfy(tmp_path_factory):
    """A running ComfyServer: base dir in a pytest tmp dir (outputs in comfy.output_dir),
    the node pack (comfy_nodes/) in custom_nodes/raiiaf-rs, the tiny SD1.5 checkpoint as
    comfy.ckpt. After the session, the server log must hold no IMPORT FAILED line."""
    missing = [
        f"{what} ({path})"
        for what, path in (("ComfyUI tree", COMFYUI_DIR / "main.py"), ("tiny model", TINY_MODEL))
        if not path.is_file()
    ]
    if missing:
        pytest.fail(
            f"missing {', '.join(missing)}: run `make setup` (dev/setup_comfyui.sh)",
            pytrace=False,
        )
    with ComfyServer(tmp_path_factory.mktemp("comfyui")) as server:
        yield server
    failed = [line for line in server.log_text().splitlines() if "IMPORT FAILED" in line]
    if failed:
        pytest.fail(
            f"ComfyUI failed to import nodes (log {server.log_path}):\n" + "\n".join(failed),
            pytrace=False,
        )


@pytest.fixture(scope="session")
def comfy_sample():
    """ComfyUI's own `comfy.sample` module, imported into the test process (CPU), to check
    results against ComfyUI's functions (e.g. prepare_noise). Costs a few seconds once."""
    if str(COMFYUI_DIR) not in sys.path:
        sys.path.append(str(COMFYUI_DIR))  # appended: ComfyUI's top-level names shadow nothing
    # A newer ComfyUI imports packages of its own Python (0.33.0: comfy_aimdo) that .venv
    # lacks: appended too, so those come from there and all others stay .venv's.
    for folder in site_dirs(COMFYUI_PYTHON):
        if str(folder) not in sys.path:
            sys.path.append(str(folder))
    from comfy.cli_args import args

    # In-process, ComfyUI parses an empty argv; without --cpu it would probe CUDA and fail.
    args.cpu = True
    import comfy.sample

    return comfy.sample
