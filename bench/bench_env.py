"""Environment capture and model-fingerprint costs (issue: capture well under
1 ms after the first call). Run with `make bench` or
`.venv/bin/python bench/bench_env.py`.

Each "first call" is measured in a fresh interpreter, since the machine's
facts are collected once per process.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

import benchlib

FIRST_CALL = """
import time, numpy, torch, raiiaf_rs
t = time.perf_counter(); raiiaf_rs.environment.capture(); a = time.perf_counter() - t
t = time.perf_counter(); raiiaf_rs.environment.hardware_info(); b = time.perf_counter() - t
print(a * 1e3, b * 1e3)
"""


def median_ms(fn, n: int = 200) -> float:
    return statistics.median(benchlib.timings(fn, n)[0]) * 1e3


def main() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    firsts = [
        [
            float(x)
            for x in subprocess.run(
                [sys.executable, "-c", FIRST_CALL], capture_output=True, text=True, check=True
            ).stdout.split()
        ]
        for _ in range(5)
    ]
    import raiiaf_rs
    import torch  # noqa: F401  (a UI process has torch loaded)

    env = raiiaf_rs.environment
    env.capture()
    capture_ms = median_ms(env.capture)
    host_ms = median_ms(
        lambda: env.capture(
            host={"app": "ComfyUI", "version": "0.3.75"}, attention="sdpa", noise_device="cpu"
        )
    )
    hw_ms = median_ms(env.hardware_info)

    table = benchlib.Table(
        ["operation", "first call in a process (median of 5)", "cached (median of 200)"], "lrr"
    )
    print(table.head())
    first = [statistics.median(f[i] for f in firsts) for i in (0, 1)]
    print(table.row(["environment.capture()", f"{first[0]:.2f} ms", f"{capture_ms:.3f} ms"]))
    print(
        table.row(["capture(host=..., attention=..., noise_device=...)", "-", f"{host_ms:.3f} ms"])
    )
    print(table.row(["environment.hardware_info()", f"{first[1]:.2f} ms", f"{hw_ms:.3f} ms"]))

    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "model.safetensors")
        with open(model, "wb") as f:
            f.write(os.urandom(256 << 20))
        t = time.perf_counter()
        fp = raiiaf_rs.fingerprint(model, cache_dir=tmp)
        cold = time.perf_counter() - t
        warm = median_ms(lambda: raiiaf_rs.fingerprint(model, cache_dir=tmp), 50)
        assert not fp.cached
    hashed = f"{cold * 1e3:.0f} ms (hashed, {256 / cold:.0f} MiB/s)"
    print(table.row(["fingerprint(256 MiB file)", hashed, f"{warm:.3f} ms (cache hit)"]))
    target = capture_ms < 1.0
    print(f"\ntarget: cached capture well under 1 ms: {'met' if target else 'NOT met'}")


if __name__ == "__main__":
    main()
