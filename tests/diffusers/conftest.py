"""Fixtures of the diffusers host tests: tiny SD and SDXL pipelines (tiny_pipes.py), built
once per session into a temporary folder and loaded with ``from_pretrained``.

Runs in the diffusers venvs of dev/setup_diffusers.sh (`make diffusers-test`); the main
pytest run ignores this folder. diffusers missing is a collection error, never a skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

import tiny_pipes  # noqa: E402  (after the thread settings)


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-models")
    return {kind: tiny_pipes.build(kind, root / kind) for kind in tiny_pipes.PIPES}


def pytest_configure(config: pytest.Config) -> None:
    # numpy 2 / diffusers deprecation chatter from inside diffusers, not from this project
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning")
    config.addinivalue_line("filterwarnings", "ignore::FutureWarning")
