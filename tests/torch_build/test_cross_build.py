"""The torch build and the default build write the same bytes for the same
tensors, and read each other's files. Collected only where the installed
raiiaf_rs is the torch build (tests/conftest.py); `make torch-test` runs it in
.venv-torch with RAIIAF_DEFAULT_PYTHON naming the default build's interpreter."""

from __future__ import annotations

import os
import subprocess
import textwrap

import numpy as np
import pytest
import raiiaf_rs
import torch

# Writes the tensors saved in BITS.npz with the default build, as torch tensors.
DEFAULT_WRITER = textwrap.dedent(
    """
    import sys, numpy as np, torch, raiiaf_rs
    assert raiiaf_rs.LINKED_TORCH is None, "expected the default build"
    bits, out, codec = np.load(sys.argv[1]), sys.argv[2], sys.argv[3]
    latents = {
        "f32": torch.from_numpy(bits["f32"].view(np.float32)),
        "f16": torch.from_numpy(bits["f16"].view(np.float16)),
        "bf16": torch.from_numpy(bits["bf16"]).view(torch.bfloat16),
    }
    raiiaf_rs.write(out, latents, codec=codec, environment=None, metadata={"date": ""})
    art = raiiaf_rs.read(sys.argv[4])  # the torch build's file
    for name, arr in art.latents.items():
        assert arr.view(np.uint8).tobytes() == bits[name].tobytes(), name
    print("ok")
    """
)


@pytest.fixture(scope="module")
def default_python() -> str:
    python = os.environ.get("RAIIAF_DEFAULT_PYTHON", "")
    assert python, "RAIIAF_DEFAULT_PYTHON must name the default build's interpreter"
    return python


@pytest.mark.parametrize("codec", ["raw", "compact"])
def test_both_builds_write_identical_files(tmp_path, default_python, codec):
    assert torch.__version__ == raiiaf_rs.LINKED_TORCH
    g = torch.Generator().manual_seed(7)
    latents = {
        "f32": torch.randn(1, 4, 32, 32, generator=g),
        "f16": torch.randn(1, 16, 3, 8, 8, generator=g).half(),
        "bf16": torch.randn(2, 4, 16, 16, generator=g).bfloat16(),
    }
    ours = tmp_path / "torch_build.raiiaf"
    raiiaf_rs.write(ours, latents, codec=codec, environment=None, metadata={"date": ""})
    bits = {
        name: t.view(torch.int32 if name == "f32" else torch.int16).numpy()
        for name, t in latents.items()
    }
    np.savez(tmp_path / "bits.npz", **bits)

    theirs = tmp_path / "default_build.raiiaf"
    run = subprocess.run(
        [default_python, "-c", DEFAULT_WRITER, tmp_path / "bits.npz", theirs, codec, ours],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr
    assert theirs.read_bytes() == ours.read_bytes()
    # ... and this build reads the default build's file into the same tensors.
    back = raiiaf_rs.read(theirs, as_torch=True).latents
    for name, t in latents.items():
        word = torch.int32 if name == "f32" else torch.int16
        assert back[name].dtype == t.dtype
        assert torch.equal(back[name].view(word), torch.from_numpy(bits[name]))
