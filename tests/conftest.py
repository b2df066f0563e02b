"""Shared fixtures: deterministic tensors and a small real PNG."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import raiiaf_rs

os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
VECTORS = Path(__file__).parent / "data" / "vectors"
#: The committed files of every host (tests/data/hosts/README.md).
HOSTS = Path(__file__).parent / "data" / "hosts"

# tests/torch_build/ compares the optional torch build with the default one; it runs
# in .venv-torch (`make torch-test`), where the installed raiiaf_rs links torch.
if not raiiaf_rs.LINKED_TORCH:
    collect_ignore = ["torch_build"]


def noise(shape: tuple[int, ...], seed: int = 0, dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32).astype(dtype)


@contextlib.contextmanager
def repo_on_path() -> Iterator[None]:
    """The repository's root on ``sys.path`` for the block: the webui extension's
    ``lib_raiiaf`` (a folder of the repository, not an installed package) imports there."""
    root = str(ROOT)
    sys.path.insert(0, root)
    try:
        yield
    finally:
        sys.path.remove(root)


@pytest.fixture
def lib_replay():
    """The webui extension's replay module (``lib_raiiaf.replay``), the root on the path for
    the test."""
    with repo_on_path():
        from lib_raiiaf import replay

        yield replay


@pytest.fixture(scope="session")
def png_bytes() -> bytes:
    from PIL import Image

    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 255, (32, 48, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, format="PNG")
    return buf.getvalue()


# A missing test dependency fails the run instead of skipping tests or whole files: a green
# run must mean every test ran. `pytest.importorskip` (and any skip whose reason is a failed
# import) becomes a failure, at collection and at run time; other skips (no CUDA device,
# not Linux) stay skips.
def _import_skip(report) -> bool:
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return "could not import" in text or "No module named" in text


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and _import_skip(report):
        report.outcome = "failed"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and _import_skip(report) and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
