"""zfp speed: raiiaf-rs's pure-Rust zfp (zfp-rs-ffi) against libzfp itself.

The reference's "compressed" latents are reversible zfp streams written by zfpy, libzfp's
own binding. raiiaf-rs used to drive libzfp through zfp-sys (a C build needing cmake and
libclang); it now uses zfp-rs-ffi, a pure-Rust port with the same API. This prints, in one
run, for Gaussian-noise float32 latents:

- libzfp (zfpy 1.0.1, C, no bounds checks) compress / decompress of the bare stream;
- raiiaf_rs write / read of a zfp file (stream + SHA-256 of every chunk; reads decode block
  by block with a bounds check before each block), and read(verify=False);
- with ``--other-build DIR``, the same raiiaf_rs timings for another build of raiiaf_rs
  whose package directory (holding ``raiiaf_rs/``) is DIR, e.g. the last zfp-sys build:
  both builds in one run, so the ratio means something on a noisy machine.

    .venv/bin/python bench/bench_zfp.py [--quick] [--other-build DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import benchlib
import numpy as np

SHAPES = [(1, 4, 128, 128), (1, 16, 128, 128), (16, 21, 60, 104)]


def best_ms(fn, runs: int) -> float:
    return min(benchlib.timings(fn, runs, warmup=1)[0]) * 1e3


def time_raiiaf_rs(runs: int) -> dict:
    """raiiaf_rs timings of the build importable now, as {shape: {write, read, read_nv}}."""
    import raiiaf_rs

    out = {}
    counter = iter(range(10**9))  # every write goes to a new file
    with tempfile.TemporaryDirectory() as tmp:
        for shape in SHAPES:
            arr = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
            path = Path(tmp) / f"z{len(out)}.raiiaf"

            def write(arr=arr, tmp=tmp):
                raiiaf_rs.write(
                    Path(tmp) / f"w{next(counter)}.raiiaf",
                    {"initial_noise": arr},
                    codec="zfp",
                    environment=None,
                )

            raiiaf_rs.write(path, {"initial_noise": arr}, codec="zfp", environment=None)
            got = raiiaf_rs.read(path).latents["initial_noise"]
            assert got.tobytes() == arr.tobytes()
            out[str(shape)] = {
                "write": best_ms(write, runs),
                "read": best_ms(lambda path=path: raiiaf_rs.read(path), runs),
                "read_nv": best_ms(lambda path=path: raiiaf_rs.read(path, verify=False), runs),
                "version": raiiaf_rs.__version__,
            }
    return out


def main() -> None:
    ap = benchlib.parser(__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--other-build", type=Path)
    ap.add_argument("--json-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    runs = 3 if args.quick else 9

    if args.json_only:  # the child process of --other-build
        print(json.dumps(time_raiiaf_rs(runs)))
        return

    import zfpy

    this = time_raiiaf_rs(runs)
    other = None
    if args.other_build:
        env = dict(os.environ, PYTHONPATH=str(args.other_build.resolve()))
        cmd = [sys.executable, __file__, "--json-only"] + (["--quick"] if args.quick else [])
        other = json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True).stdout)

    print(f"\nzfp, float32 Gaussian noise, best of {runs} (ms); MiB/s of the float32 data")
    head = ["shape", "MiB", "libzfp compress", "libzfp decompress", "raiiaf_rs write",
            "raiiaf_rs read", "read(verify=False)", "read vs libzfp"]  # fmt: skip
    if other:
        head += ["other build read", "this vs other (read)"]
    table = benchlib.Table(head, "l" + "r" * (len(head) - 1))
    print(table.head())
    for shape in SHAPES:
        arr = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
        stream = zfpy.compress_numpy(arr)
        c = best_ms(lambda arr=arr: zfpy.compress_numpy(arr), runs)
        d = best_ms(lambda stream=stream: zfpy.decompress_numpy(stream), runs)
        t = this[str(shape)]
        mib = arr.nbytes / 2**20
        row = [shape, f"{mib:.1f}", f"{c:.1f}", f"{d:.1f} ({mib / d * 1e3:.0f}/s)",
               f"{t['write']:.1f}", f"{t['read']:.1f} ({mib / t['read'] * 1e3:.0f}/s)",
               f"{t['read_nv']:.1f}", f"{d / t['read']:.2f}x"]  # fmt: skip
        if other:
            o = other[str(shape)]
            row += [f"{o['read']:.1f}", f"{o['read'] / t['read']:.2f}x"]
        print(table.row(row))
    print("ratios above 1: raiiaf_rs is faster")


if __name__ == "__main__":
    main()
