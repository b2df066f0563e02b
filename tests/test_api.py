"""The Python API: round trips for every codec, dtype and rank, numpy inputs,
metadata, errors and atomic writes (torch tensors: test_torch.py)."""

from __future__ import annotations

import threading

# A test dependency (tests/requirements.txt): missing, the run fails rather than skipping the file.
import ml_dtypes
import numpy as np
import pytest
import raiiaf_rs
from conftest import noise
from raiiaf_rs import (
    CorruptFileError,
    HashMismatchError,
    InvalidArgumentError,
    RaiiafError,
    TargetExistsError,
    UnsupportedError,
)


def bf16_bits(a: np.ndarray) -> np.ndarray:
    return a.astype(ml_dtypes.bfloat16).view(np.uint16)


SHAPES = [(7,), (3, 5), (2, 3, 4), (1, 4, 8, 8), (1, 16, 3, 6, 10), (1, 1, 2, 1, 3, 2, 2, 3)]


@pytest.mark.parametrize("codec", raiiaf_rs.CODECS)
@pytest.mark.parametrize("dtype", raiiaf_rs.DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{len(s)}d")
def test_round_trip_is_bit_exact(tmp_path, codec, dtype, shape):
    base = noise(shape, len(shape))
    flat = base.reshape(-1)
    flat[0] = -0.0
    flat[-1] = np.float32(np.nan)
    if dtype == "float32":
        arr, kw = base, {}
    elif dtype == "float16":
        arr, kw = base.astype(np.float16), {}
    else:
        arr, kw = bf16_bits(base), {"dtype": "bfloat16"}
    path = tmp_path / "x.raiiaf"
    if codec == "zfp" and (dtype != "float32" or len(shape) > 4):
        with pytest.raises(InvalidArgumentError, match="zfp"):
            raiiaf_rs.write(path, {"initial_noise": arr}, codec=codec, **kw)
        return
    raiiaf_rs.write(path, {"initial_noise": arr}, codec=codec, **kw)
    art = raiiaf_rs.read(path)
    got = art.latents["initial_noise"]
    assert art.dtypes["initial_noise"] == dtype
    assert got.shape == shape
    assert got.tobytes() == arr.tobytes()
    v11 = codec == "compact" or dtype == "bfloat16" or len(shape) != 4
    assert art.version == ("1.1" if v11 else "1.0")


def test_ml_dtypes_bfloat16_and_uint16_rules(tmp_path):
    a = noise((2, 3)).astype(ml_dtypes.bfloat16)
    raiiaf_rs.write(tmp_path / "a.raiiaf", {"n": a})
    got = raiiaf_rs.read(tmp_path / "a.raiiaf").latents["n"]
    assert got.dtype == np.uint16 and got.tobytes() == a.tobytes()
    with pytest.raises(InvalidArgumentError, match="bfloat16"):
        raiiaf_rs.write(tmp_path / "b.raiiaf", {"n": a.view(np.uint16)})
    with pytest.raises(InvalidArgumentError, match="float64"):
        raiiaf_rs.write(tmp_path / "c.raiiaf", {"n": np.zeros(3)})


def test_scalars_are_refused_not_reshaped(tmp_path):
    # A 0-d array is not silently stored as shape (1,).
    for scalar in (np.array(np.float32(1.5)), np.float16(1.5)):
        with pytest.raises(InvalidArgumentError, match="0 dimensions"):
            raiiaf_rs.write(tmp_path / "s.raiiaf", {"n": scalar})
    assert not (tmp_path / "s.raiiaf").exists()


def test_lossy_conversion_only_on_request_and_never_to_infinity(tmp_path):
    a = noise((1, 4, 8, 8))
    raiiaf_rs.write(tmp_path / "h.raiiaf", {"n": a}, dtype="float16")
    assert (
        raiiaf_rs.read(tmp_path / "h.raiiaf").latents["n"].tobytes()
        == a.astype(np.float16).tobytes()
    )
    raiiaf_rs.write(tmp_path / "b.raiiaf", {"n": a}, dtype={"n": "bfloat16"})
    assert raiiaf_rs.read(tmp_path / "b.raiiaf").latents["n"].tobytes() == bf16_bits(a).tobytes()
    big = a.copy()
    big[0, 0, 0, 3] = 1e5
    with pytest.raises(InvalidArgumentError, match="element 3"):
        raiiaf_rs.write(tmp_path / "o.raiiaf", {"n": big}, dtype="float16")
    assert not (tmp_path / "o.raiiaf").exists()
    with pytest.raises(InvalidArgumentError, match="lossy"):
        raiiaf_rs.write(tmp_path / "l.raiiaf", {"n": a.astype(np.float16)}, dtype="bfloat16")


def test_metadata_round_trip(tmp_path, png_bytes):
    metadata = {
        "model_name": "sdxl-base",
        "prompt": "caf\u00e9 \u2615 \U0001f98a",
        "tags": ["a", "b"],
        "generation_settings": {
            "seed": 2**40 + 1,
            "steps": 30,
            "sampler": "dpmpp_2m",
            "cfg_scale": 6.5,
        },
        "seed": np.int64(123),
        "sigmas": np.array([14.61, 1e-05, 0.0]),
        "nested": {"list": [1, 2.5, None, True, "x"], "deep": {"k": -0.0}},
        "date": "2026-01-02T03:04:05+00:00",
    }
    path = tmp_path / "m.raiiaf"
    raiiaf_rs.write(path, {"n": noise((1, 4, 4, 4))}, png_bytes, metadata)
    art = raiiaf_rs.read(path)
    want = dict(
        metadata,
        seed=123,
        sigmas=[14.61, 1e-05, 0.0],
        model_version="",
        hardware_info=raiiaf_rs.environment.hardware_info(),  # filled in automatically
    )
    assert art.metadata == want
    assert art.image == png_bytes
    # The reference's model_info carries the well-known keys.
    info = art.manifest["raiiaf_metadata"]["model_info"]
    assert info["version"] == "" and info["prompt"] == metadata["prompt"]
    assert art.manifest["raiiaf_metadata"]["metadata"]["seed"] == 123

    with pytest.raises(InvalidArgumentError, match=r"NaN|JSON"):
        raiiaf_rs.write(tmp_path / "nan.raiiaf", {"n": noise((2,))}, metadata={"cfg": float("nan")})
    with pytest.raises(InvalidArgumentError, match="tags"):
        raiiaf_rs.write(tmp_path / "t.raiiaf", {"n": noise((2,))}, metadata={"tags": "x"})


def test_read_subsets_and_metadata_only(tmp_path, png_bytes):
    path = tmp_path / "s.raiiaf"
    raiiaf_rs.write(path, {"a": noise((3,)), "b": noise((4,))}, png_bytes, {"prompt": "p"})
    art = raiiaf_rs.read(path, names=["b"], image=False)
    assert list(art.latents) == ["b"] and art.image is None
    meta = raiiaf_rs.read_metadata(path)
    assert meta.latents == {} and meta.metadata["prompt"] == "p"
    assert [c["type"] for c in meta.chunks] == ["LATN", "LATN", "DATA", "ENVC"]
    with pytest.raises(InvalidArgumentError, match=r'\["a", "b"\]'):
        raiiaf_rs.read(path, names=["c"])


def test_compact_codec_compresses_noise(tmp_path):
    a = noise((1, 4, 64, 64))
    raiiaf_rs.write(tmp_path / "r.raiiaf", {"n": a}, codec="raw")
    raiiaf_rs.write(tmp_path / "c.raiiaf", {"n": a}, codec="compact")
    rec = raiiaf_rs.read_metadata(tmp_path / "c.raiiaf").chunks[0]
    assert rec["codec"] == "shuffle-zstd"
    assert rec["uncompressed_size"] / rec["compressed_size"] > 1.15


def test_never_overwrites_unless_asked(tmp_path):
    path = tmp_path / "o.raiiaf"
    raiiaf_rs.write(path, {"n": noise((3,), 1)})
    with pytest.raises(TargetExistsError) as err:
        raiiaf_rs.write(path, {"n": noise((3,), 2)})
    assert isinstance(err.value, FileExistsError)
    assert raiiaf_rs.read(path).latents["n"].tobytes() == noise((3,), 1).tobytes()
    raiiaf_rs.write(path, {"n": noise((3,), 2)}, overwrite=True)
    assert raiiaf_rs.read(path).latents["n"].tobytes() == noise((3,), 2).tobytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.raiiaf"]  # no temp files left


def test_concurrent_writers_never_clobber_each_other(tmp_path):
    path = tmp_path / "race.raiiaf"
    arrays = [noise((1, 4, 64, 64), i) for i in range(8)]
    results: list = [None] * len(arrays)
    barrier = threading.Barrier(len(arrays))

    def work(i):
        barrier.wait()
        try:
            raiiaf_rs.write(path, {"n": arrays[i]}, codec="compact")
            results[i] = "ok"
        except TargetExistsError:
            results[i] = "exists"

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(arrays))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 1, results
    winner = results.index("ok")
    assert raiiaf_rs.read(path).latents["n"].tobytes() == arrays[winner].tobytes()
    assert [p.name for p in tmp_path.iterdir()] == ["race.raiiaf"]


def test_bad_files_raise_the_right_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        raiiaf_rs.read(tmp_path / "missing.raiiaf")
    junk = tmp_path / "junk.raiiaf"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(CorruptFileError, match=r"not a \.raiiaf file"):
        raiiaf_rs.read(junk)

    good = tmp_path / "good.raiiaf"
    raiiaf_rs.write(good, {"initial_noise": noise((1, 4, 8, 8))})
    data = bytearray(good.read_bytes())
    data[33 + 12 + 100] ^= 0xFF
    bad = tmp_path / "bad.raiiaf"
    bad.write_bytes(bytes(data))
    with pytest.raises(HashMismatchError, match="initial_noise"):
        raiiaf_rs.read(bad)
    with pytest.raises(HashMismatchError):
        raiiaf_rs.verify(bad)
    assert raiiaf_rs.read(bad, verify=False).latents["initial_noise"].shape == (1, 4, 8, 8)
    raiiaf_rs.verify(good)

    future = bytearray(good.read_bytes())
    future[6] = 2
    (tmp_path / "future.raiiaf").write_bytes(bytes(future))
    with pytest.raises(UnsupportedError, match=r"2\.0"):
        raiiaf_rs.read(tmp_path / "future.raiiaf")
    for cut in (0, 10, 33, len(data) // 2, len(data) - 1):
        (tmp_path / "cut.raiiaf").write_bytes(good.read_bytes()[:cut])
        with pytest.raises(RaiiafError):
            raiiaf_rs.read(tmp_path / "cut.raiiaf")


def test_argument_errors(tmp_path):
    with pytest.raises(InvalidArgumentError, match="codec"):
        raiiaf_rs.write(tmp_path / "x.raiiaf", {"n": noise((2,))}, codec="lzma")
    with pytest.raises(InvalidArgumentError, match="mapping"):
        raiiaf_rs.write(tmp_path / "x.raiiaf", [noise((2,))])
    with pytest.raises(InvalidArgumentError, match="zero-sized"):
        raiiaf_rs.write(tmp_path / "x.raiiaf", {"n": np.zeros((2, 0), np.float32)})
    with pytest.raises(InvalidArgumentError, match="dimensions"):
        raiiaf_rs.write(tmp_path / "x.raiiaf", {"n": np.zeros((1,) * 9, np.float32)})
    assert not (tmp_path / "x.raiiaf").exists()


def test_file_holds_no_local_paths(tmp_path, png_bytes):
    path = tmp_path / "private.raiiaf"
    raiiaf_rs.write(path, {"n": noise((4,))}, png_bytes, {"prompt": "p"}, codec="compact")
    data = path.read_bytes()
    for secret in (str(tmp_path), tmp_path.name):
        assert secret.encode() not in data
