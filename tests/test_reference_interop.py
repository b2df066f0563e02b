"""Interoperability with the reference implementation, PyPI ``raiiaf==1.1.0``,
installed side by side: files go both ways and come back identical."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import warnings

import numpy as np
import pyarrow as pa
import pytest

# The reference package raiiaf==1.1.0 is a test dependency (tests/requirements.txt): missing,
# the run fails rather than skipping the file.
import raiiaf
import raiiaf_rs
from conftest import VECTORS, noise

GS = {"seed": 42, "steps": 20, "sampler": "euler", "cfg_scale": 7.5, "scheduler": "normal"}
HW = {"os": "linux", "cpu_cores": 2}


def reference_decode(path):
    # The reference prints debug lines and warns about environment drift.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return raiiaf.raiiafFileHandler().file_decoder(str(path))


def reference_encode(path, latents, png, *, compress, f16):
    with contextlib.redirect_stdout(io.StringIO()):
        raiiaf.raiiafFileHandler().file_encoder(
            filename=str(path),
            latent=latents,
            chunk_records=[],
            model_name="sd15-tiny",
            model_version="1",
            prompt="a red fox in snow, caf\u00e9 \u2615",
            tags=["fox"],
            img_binary=png,
            should_compress=compress,
            convert_float16=f16,
            generation_settings=GS,
            hardware_info=HW,
            extra_image={"width": 48, "height": 32},
        )


@pytest.mark.parametrize(
    ("codec", "dtype"), [("raw", np.float32), ("raw", np.float16), ("zfp", np.float32)]
)
def test_reference_decoder_reads_our_files(tmp_path, png_bytes, codec, dtype):
    latents = {
        "initial_noise": noise((1, 4, 16, 24), 1, dtype),
        "final_latent": noise((1, 4, 16, 24), 2, dtype),
    }
    metadata = {
        "model_name": "sd15-tiny",
        "model_version": "1",
        "prompt": "a red fox in snow, caf\u00e9 \u2615",
        "tags": ["fox"],
        "generation_settings": GS,
        "hardware_info": HW,
        # Project additions the reference must tolerate:
        "negative_prompt": "blurry",
        "sigmas": [14.6, 7.0, 0.0],
        "workflow": {"nodes": [{"id": 3, "type": "KSampler"}]},
    }
    env = raiiaf_rs.environment_document([("python", "name=python;version=3.11.7")])
    path = tmp_path / "ours.raiiaf"
    raiiaf_rs.write(
        path,
        latents,
        png_bytes,
        metadata,
        environment=env,
        codec=codec,
        image_extra={"width": 48, "height": 32},
    )

    decoded = reference_decode(path)
    got = decoded["chunks"]["latent"]
    assert len(got) == 2
    for arr, want in zip(got, latents.values()):
        assert arr.dtype == want.dtype
        assert arr.shape == want.shape
        assert arr.tobytes() == want.tobytes()
    assert decoded["chunks"]["image"] == png_bytes
    info = decoded["metadata"]["raiiaf_metadata"]["model_info"]
    assert info["prompt"] == metadata["prompt"]
    assert info["generation_settings"] == GS
    assert decoded["metadata"]["raiiaf_metadata"]["metadata"]["sigmas"] == [14.6, 7.0, 0.0]
    assert decoded["header"]["file_size"] == path.stat().st_size
    names = [c["component_id"] for c in decoded["chunks"]["env"].components]
    assert names == ["python"]

    # The independent checker that ships with the vectors agrees.
    check = subprocess.run(
        [sys.executable, str(VECTORS / "raiiaf_parse_check.py"), str(path)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize(("compress", "f16"), [(False, False), (True, False), (False, True)])
def test_we_read_fresh_reference_files(tmp_path, png_bytes, compress, f16):
    latents = {"initial_noise": noise((1, 4, 16, 24), 3), "final_latent": noise((2, 4, 8, 8), 4)}
    path = tmp_path / "ref.raiiaf"
    reference_encode(path, latents, png_bytes, compress=compress, f16=f16)

    art = raiiaf_rs.read(path)  # verifies every SHA-256, which the reference never does
    ref = reference_decode(path)
    assert list(art.latents) == ["initial_noise", "final_latent"]
    for ours, theirs in zip(art.latents.values(), ref["chunks"]["latent"]):
        assert ours.dtype == theirs.dtype
        assert ours.tobytes() == theirs.tobytes()
    for name, arr in latents.items():
        want = arr.astype(np.float16) if f16 else arr
        assert art.latents[name].tobytes() == want.tobytes()
    assert art.image == png_bytes
    assert art.metadata["prompt"] == "a red fox in snow, caf\u00e9 \u2615"
    assert art.metadata["generation_settings"] == GS
    assert [c["component_id"] for c in art.environment["components"]][:2] == ["torch", "numpy"]


def test_converted_files_stay_readable_by_the_reference(tmp_path, png_bytes):
    """compact -> raw conversion gives back a reference-readable file."""
    latents = {"initial_noise": noise((1, 4, 8, 8), 5)}
    compact = tmp_path / "c.raiiaf"
    raiiaf_rs.write(compact, latents, png_bytes, {"prompt": "p"}, codec="compact")
    raw = tmp_path / "r.raiiaf"
    rc = subprocess.run(
        [
            sys.executable,
            "-m",
            "raiiaf_rs.cli",
            "convert",
            str(compact),
            "--codec",
            "raw",
            "-o",
            str(raw),
        ],
        capture_output=True,
        text=True,
    )
    assert rc.returncode == 0, rc.stderr
    decoded = reference_decode(raw)
    assert decoded["chunks"]["latent"][0].tobytes() == latents["initial_noise"].tobytes()
    assert decoded["chunks"]["image"] == png_bytes


def test_a_lone_surrogate_prompt_of_the_reference_reads_as_a_replacement_char(tmp_path, png_bytes):
    """Python's json writes a lone surrogate of a prompt (a string cut inside an emoji) as
    ``\\ud83d`` and reads it back; no UTF-8 text can hold one, and the whole file used to be
    unreadable. Now the reader (and the catalog) read it as U+FFFD (FORMAT.md §7.3)."""
    path = tmp_path / "cut.raiiaf"
    latents = {"initial_noise": noise((1, 4, 8, 8))}
    with contextlib.redirect_stdout(io.StringIO()):
        raiiaf.raiiafFileHandler().file_encoder(
            filename=str(path),
            latent=latents,
            chunk_records=[],
            model_name="m",
            model_version="1",
            prompt="a fox \ud83d and a cat \udc00!",
            tags=[],
            img_binary=png_bytes,
            should_compress=False,
            convert_float16=False,
            generation_settings=GS,
            hardware_info=HW,
        )
    ref = reference_decode(path)["metadata"]["raiiaf_metadata"]["model_info"]
    assert ref["prompt"] == "a fox \ud83d and a cat \udc00!"
    art = raiiaf_rs.read(path)
    assert art.metadata["prompt"] == "a fox \ufffd and a cat \ufffd!"
    np.testing.assert_array_equal(art.latents["initial_noise"], latents["initial_noise"])
    row = pa.table(raiiaf_rs.catalog(tmp_path)).to_pylist()[0]
    assert row["error"] is None and row["prompt"] == "a fox \ufffd and a cat \ufffd!"
