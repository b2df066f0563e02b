"""The absolute bound on decoded bytes (``max_decoded_bytes``, default 1 GiB per file).

The file of the issue: a 33 KB ``compact`` file holding a zero tensor (1,16,4096,4096) float32
(1 GiB) and an environment, within every relative limit of the format. Each read runs in a child
process, so its peak RSS (``VmHWM``) is its own:

- by default it is refused in under 50 ms with a peak RSS under 100 MB (the whole process:
  interpreter, numpy and raiiaf_rs included);
- with the limit raised it reads, at a peak of at most the returned data + 64 MiB over the
  process's peak before the read (decoded in place, no second tensor-sized buffer).

The same bound for a real 256 MiB float32 noise tensor (1,16,2048,2048) in each codec, read from
its file with ``raiiaf_rs.read(path)`` in a fresh interpreter: chunks are read from the file as
they decode (raw straight into the output, compact plane by plane, zfp in 16 MiB windows of its
stream, which for batch-1 noise is 3.8x the tensor), never the whole file into memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import raiiaf_rs

BOMB = Path(__file__).parent / "data" / "adversarial" / "bomb-compact-zeros-1-gib-in-33-kb.raiiaf"
GIB = 1 << 30
MIB = 1 << 20

CHILD = r"""
import json, sys, time
import numpy as np
import raiiaf_rs

def hwm_kb():
    # VmHWM: this process's peak RSS since exec. (ru_maxrss would also count the
    # pytest process it was forked from: Linux carries it across exec.)
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))

path, mode = sys.argv[1], sys.argv[2]
limit = None if mode in ("default", "env") else int(mode)
before = hwm_kb()
t0 = time.perf_counter()
out = {}
try:
    art = raiiaf_rs.read(path, max_decoded_bytes=limit)
    seconds = time.perf_counter() - t0
    peak = hwm_kb()
    arr = art.latents["initial_noise"]
    out.update(error=None, nbytes=arr.nbytes, shape=list(arr.shape),
               zero=not np.any(arr.view(np.uint64)))
except Exception as e:
    seconds = time.perf_counter() - t0
    peak = hwm_kb()
    out.update(error=type(e).__name__, message=str(e),
               fields={k: getattr(e, k, None) for k in ("chunk", "declared", "limit")})
out.update(seconds=seconds, before_kb=before, peak_kb=peak)
print(json.dumps(out))
"""


def _child(mode: str, env: dict[str, str] | None = None) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(BOMB), mode],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_bomb_is_small():
    assert 30_000 < BOMB.stat().st_size < 40_000


def test_refused_by_default_fast_and_small():
    # Best of three: the time bound is about the work done, not a busy machine's scheduling.
    runs = [_child("default", {"RAIIAF_MAX_DECODED_BYTES": ""}) for _ in range(3)]
    for got in runs:
        assert got["error"] == "DecodedSizeLimitError", got
        assert "would decode to" in got["message"] and "max_decoded_bytes" in got["message"]
        assert got["peak_kb"] * 1024 < 100 * 1000 * 1000, got
    assert min(r["seconds"] for r in runs) < 0.050, runs


def test_reads_in_place_with_the_limit_raised():
    got = _child(str(2 * GIB))
    assert got["error"] is None, got
    assert got["nbytes"] == GIB and got["shape"] == [1, 16, 4096, 4096] and got["zero"]
    grown = (got["peak_kb"] - got["before_kb"]) * 1024
    assert grown <= GIB + 64 * MIB, f"peak grew by {grown / MIB:.0f} MiB for 1024 MiB returned"


def test_environment_variable_sets_the_default():
    got = _child("env", {"RAIIAF_MAX_DECODED_BYTES": "2G"})
    assert got["error"] is None and got["zero"], got
    got = _child("env", {"RAIIAF_MAX_DECODED_BYTES": "lots"})
    assert got["error"] == "InvalidArgumentError", got
    assert "RAIIAF_MAX_DECODED_BYTES" in got["message"]


NOISE_SHAPE = (1, 16, 2048, 2048)  # 256 MiB of float32; zfp takes it (every axis <= 4096)

READ_CHILD = r"""
import hashlib, json, sys
import raiiaf_rs

def hwm_kb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))

before = hwm_kb()
art = raiiaf_rs.read(sys.argv[1])
peak = hwm_kb()
arr = art.latents["initial_noise"]
print(json.dumps({"before_kb": before, "peak_kb": peak, "nbytes": arr.nbytes,
                  "digest": hashlib.sha256(arr).hexdigest()}))
"""


@pytest.fixture(scope="module")
def big_noise() -> np.ndarray:
    return np.random.default_rng(7).standard_normal(NOISE_SHAPE, dtype=np.float32)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux)")
@pytest.mark.parametrize("codec", ["raw", "compact", "zfp"])
def test_reading_a_large_file_needs_its_output_plus_64_mib(tmp_path, big_noise, codec):
    path = tmp_path / f"noise-{codec}.raiiaf"
    raiiaf_rs.write(path, {"initial_noise": big_noise}, environment=None, codec=codec)
    proc = subprocess.run(
        [sys.executable, "-c", READ_CHILD, str(path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["nbytes"] == big_noise.nbytes == 256 * MIB
    assert got["digest"] == hashlib.sha256(big_noise).hexdigest()
    grown = (got["peak_kb"] - got["before_kb"]) * 1024
    print(f"{codec}: file {path.stat().st_size / MIB:.0f} MiB, peak grew {grown / MIB:.1f} MiB")
    assert grown <= got["nbytes"] + 64 * MIB, (
        f"{codec}: peak grew by {grown / MIB:.0f} MiB for {got['nbytes'] / MIB:.0f} MiB returned"
    )


@pytest.fixture()
def small_file(tmp_path):
    path = tmp_path / "small.raiiaf"
    noise = np.random.default_rng(0).standard_normal((1, 4, 32, 32), dtype=np.float32)
    raiiaf_rs.write(path, {"a": noise, "b": noise}, image=b"x" * 1000, environment=None)
    return path, noise.nbytes


@pytest.mark.parametrize("codec", ["raw", "compact", "zfp"])
def test_limit_counts_what_the_read_returns(tmp_path, codec):
    path = tmp_path / f"{codec}.raiiaf"
    noise = np.random.default_rng(0).standard_normal((1, 4, 32, 32), dtype=np.float32)
    raiiaf_rs.write(
        path, {"a": noise, "b": noise}, image=b"x" * 1000, environment=None, codec=codec
    )
    n = noise.nbytes
    art = raiiaf_rs.read(path, max_decoded_bytes=2 * n + 1000)
    assert art.latents["b"].tobytes() == noise.tobytes()
    with pytest.raises(raiiaf_rs.LimitExceededError, match="would decode to"):
        raiiaf_rs.read(path, max_decoded_bytes=2 * n + 999)
    with pytest.raises(raiiaf_rs.LimitExceededError, match='chunk LATN "a"'):
        raiiaf_rs.read(path, max_decoded_bytes=n - 1)
    # Only what is asked for counts: one tensor, no image, metadata only.
    raiiaf_rs.read(path, names=["b"], image=False, max_decoded_bytes=n)
    assert raiiaf_rs.read_metadata(path, max_decoded_bytes=0).latents == {}
    with pytest.raises(raiiaf_rs.LimitExceededError):
        raiiaf_rs.verify(path, max_decoded_bytes=2 * n)
    raiiaf_rs.verify(path, max_decoded_bytes=2 * n + 1000)


@pytest.mark.parametrize("bad", [-1, 1.5, "1G", True])
def test_limit_argument_is_checked(small_file, bad):
    path, _ = small_file
    with pytest.raises(raiiaf_rs.InvalidArgumentError, match="max_decoded_bytes"):
        raiiaf_rs.read(path, max_decoded_bytes=bad)


def test_cli_takes_the_limit(small_file):
    path, n = small_file
    cli = [sys.executable, "-m", "raiiaf_rs.cli"]
    ok = subprocess.run([*cli, "verify", str(path)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    low = subprocess.run(
        [*cli, "verify", "--max-decoded-bytes", str(n), str(path)], capture_output=True, text=True
    )
    assert low.returncode == 1 and "max-decoded-bytes" in low.stdout, low.stdout
    bomb = subprocess.run([*cli, "inspect", str(BOMB)], capture_output=True, text=True)
    assert bomb.returncode == 0 and "1073741824" in bomb.stdout, bomb.stdout + bomb.stderr
    bad = subprocess.run(
        [*cli, "verify", "--max-decoded-bytes", "lots", str(path)], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "--max-decoded-bytes" in bad.stderr
