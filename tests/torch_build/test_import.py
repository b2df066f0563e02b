"""Importing the torch build: it needs torch's libraries in the process and the
torch it was linked against, and says so clearly otherwise."""

from __future__ import annotations

import subprocess
import sys


def python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def test_import_without_importing_torch_first():
    run = python("import sys, raiiaf_rs; print(raiiaf_rs.LINKED_TORCH, 'torch' in sys.modules)")
    assert run.returncode == 0, run.stderr
    linked, loaded = run.stdout.split()
    assert linked.startswith("2.13.0") and loaded == "True"


def test_another_torch_version_is_refused_with_a_clear_message():
    run = python("import torch; torch.__version__ = '2.99.0'; import raiiaf_rs")
    assert run.returncode != 0
    assert "ImportError: raiiaf_rs is the torch build linked against torch 2.13.0" in run.stderr
    assert "but torch 2.99.0 is installed" in run.stderr
    assert "the default wheel works with every torch version" in run.stderr
