"""The zfp codec (the reference's "compressed" latents) against the real libzfp.

raiiaf-rs encodes and decodes zfp with `zfp-rs-ffi`, a pure-Rust port of libzfp 1.0.1;
the reference writes its streams with zfpy 1.0.1, the C library's own Python binding.
Every stream here is checked both ways against zfpy: our encoder writes exactly zfpy's
bytes, and what we decode from a zfpy stream is bit for bit what zfpy decodes.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import raiiaf  # the reference package (a test dependency: its absence fails the run)
import raiiaf_rs
import zfpy

N_RANDOM = 240


def special_values(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Noise salted with the values codecs get wrong: zeros, ±0, subnormals, huge,
    ±inf and NaNs with payloads."""
    arr = rng.standard_normal(shape, dtype=np.float32)
    flat = arr.reshape(-1)
    specials = np.array(
        [0.0, -0.0, np.inf, -np.inf, 1e-45, -1e-45, 1.17e-38, 3.4e38, -3.4e38], np.float32
    )
    k = max(1, flat.size // 7)
    idx = rng.choice(flat.size, size=k, replace=False)
    flat[idx] = rng.choice(specials, size=k)
    nan_idx = rng.choice(flat.size, size=max(1, flat.size // 31), replace=False)
    bits = flat.view(np.uint32)
    bits[nan_idx] = 0x7FC00000 | rng.integers(1, 1 << 22, size=nan_idx.size, dtype=np.uint32)
    return arr


def cases():
    rng = np.random.default_rng(20261129)
    out = []
    for i in range(N_RANDOM):
        rank = 1 + i % 4
        # Mostly partial blocks (zfp works on 4^rank blocks), some exact multiples.
        shape = tuple(int(rng.integers(1, 10 if rank > 2 else 40)) for _ in range(rank))
        kind = i % 3
        if kind == 0:
            arr = rng.standard_normal(shape, dtype=np.float32)
        elif kind == 1:
            arr = special_values(rng, shape)
        else:
            arr = np.zeros(shape, np.float32)
        out.append(arr)
    out.append(rng.standard_normal((1, 4, 64, 64), dtype=np.float32))  # an SD latent
    return out


@pytest.mark.parametrize("arr", cases(), ids=lambda a: "x".join(map(str, a.shape)))
def test_streams_match_libzfp_both_ways(tmp_path, arr):
    stream = zfpy.compress_numpy(arr)  # reversible: no tolerance, rate or precision
    path = tmp_path / "z.raiiaf"
    raiiaf_rs.write(path, {"initial_noise": arr}, codec="zfp", environment=None)
    data = path.read_bytes()
    # Our encoder wrote libzfp's exact stream.
    assert stream in data
    # And decodes it bit for bit as libzfp does (NaN payloads included).
    ours = raiiaf_rs.read(path).latents["initial_noise"]
    theirs = zfpy.decompress_numpy(stream)
    assert ours.shape == arr.shape
    assert ours.view(np.uint32).tobytes() == theirs.view(np.uint32).tobytes()
    assert ours.view(np.uint32).tobytes() == arr.view(np.uint32).tobytes()


@pytest.mark.parametrize("shape", [(1, 4, 9, 13), (2, 4, 16, 24), (1, 16, 5, 7)])
def test_reference_encoded_zfp_files_read_bit_exact(tmp_path, png_bytes, shape):
    """Files the reference wrote itself (zfpy inside) decode as zfpy decodes them."""
    rng = np.random.default_rng(len(shape) + shape[-1])
    arr = rng.standard_normal(shape, dtype=np.float32)
    path = tmp_path / "ref.raiiaf"
    with contextlib.redirect_stdout(io.StringIO()):
        raiiaf.raiiafFileHandler().file_encoder(
            filename=str(path),
            latent={"initial_noise": arr},
            chunk_records=[],
            model_name="m",
            model_version="1",
            prompt="p",
            tags=[],
            img_binary=png_bytes,
            should_compress=True,
            convert_float16=False,
            generation_settings={"seed": 1, "steps": 20, "sampler": "euler", "cfg_scale": 7.0},
            hardware_info={"os": "linux", "cpu_cores": 2},
        )
    assert zfpy.compress_numpy(arr) in path.read_bytes()
    got = raiiaf_rs.read(path).latents["initial_noise"]
    assert got.tobytes() == arr.tobytes()
