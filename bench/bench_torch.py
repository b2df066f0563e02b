"""Torch tensors into and out of ``.raiiaf`` files, three routes side by side:

- ``default``: the default build (the published abi3 wheel): ``raiiaf_rs.write(path,
  {"n": tensor})`` hands Rust a numpy view of the tensor's memory (bfloat16 viewed as
  16-bit words); ``read(..., as_torch=True)`` wraps the decoded arrays with
  ``torch.from_numpy``.
- ``torch``: the optional torch build (cargo feature ``torch``, tch 0.26): the same calls,
  the tensor crossing into Rust through libtorch, decoding into tensors libtorch allocated.
- ``plain``: what a user does without either: ``tensor.cpu().numpy()`` into the default
  build and ``torch.from_numpy`` on the way back. numpy has no bfloat16, so for bf16 this
  route must widen to float32 (``.float().numpy()``): twice the bytes, another dtype.

All three run under the same torch (2.13.0, the torch build's venv ``.venv-torch``), each
route in its own worker process (both builds are ``raiiaf_rs``), interleaved over several
rounds. Files go to /dev/shm when it exists, so disk noise stays out; every write
includes the SHA-256 of the tensor. The tensors are CPU tensors: no GPU on these machines.

    make bench                                   # includes this
    .venv/bin/python bench/bench_torch.py        # after dev/setup.sh and setup_torch.sh
    .venv/bin/python bench/bench_torch.py --quick

A benchmark, not a test: it prints a table and never fails on a timing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import benchlib

ROOT = Path(__file__).resolve().parent.parent
TORCH_PYTHON = ROOT / ".venv-torch" / "bin" / "python"
DEFAULT_BUILD = ROOT / "python"  # where `maturin develop` put the default build
SHAPES = [(1, 4, 128, 128), (1, 16, 128, 128), (1, 16, 21, 60, 104)]
DTYPES = ["float32", "float16", "bfloat16"]
ROUTES = ["default", "torch", "plain"]


def worker(route: str, reps: int) -> None:
    """Times one route on every shape and dtype; prints one JSON line per cell."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import raiiaf_rs
    import torch

    expect_torch_build = route == "torch"
    if (raiiaf_rs.LINKED_TORCH is not None) != expect_torch_build:
        sys.exit(f"route {route}: wrong build (LINKED_TORCH={raiiaf_rs.LINKED_TORCH})")
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    kw = {"environment": None, "metadata": {"date": ""}, "overwrite": True}

    def to_write(t):
        if route != "plain":
            return t
        if t.dtype == torch.bfloat16:
            return t.cpu().float().numpy()  # numpy has no bfloat16
        return t.cpu().numpy()

    def read_back(path):
        if route != "plain":
            return raiiaf_rs.read(path, as_torch=True, image=False).latents["n"]
        return torch.from_numpy(raiiaf_rs.read(path, image=False).latents["n"])

    def timed(op, reps: int) -> list[float]:
        return benchlib.timings(op, reps, warmup=2)[0]

    for shape in SHAPES:
        for dtype in DTYPES:
            g = torch.Generator().manual_seed(0)
            t = torch.randn(*shape, generator=g).to(getattr(torch, dtype))
            path = tmp / f"{dtype}.raiiaf"
            writes = timed(lambda p=path, t=t: raiiaf_rs.write(p, {"n": to_write(t)}, **kw), reps)
            reads = timed(lambda p=path: read_back(p), reps)
            back = read_back(path)
            word = torch.int16 if t.element_size() == 2 else torch.int32
            exact = torch.equal(back.to(t.dtype).view(word), t.view(word))
            print(
                json.dumps(
                    {
                        "route": route,
                        "shape": list(shape),
                        "dtype": dtype,
                        "write": writes,
                        "read": reads,
                        "bytes": path.stat().st_size,
                        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                        "stored_dtype": str(back.dtype).removeprefix("torch."),
                        "exact": exact,
                    }
                ),
                flush=True,
            )
            path.unlink()
    tmp.rmdir()


def run_route(route: str, reps: int) -> list[dict]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if route in ("default", "plain"):
        # The default build's package ahead of the torch build installed in .venv-torch.
        env["PYTHONPATH"] = os.pathsep.join([str(DEFAULT_BUILD), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [str(TORCH_PYTHON), __file__, "--worker", route, "--reps", str(reps)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        sys.exit(f"worker {route} failed:\n{out.stderr}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def main() -> None:
    ap = benchlib.parser(__doc__)
    ap.add_argument("--quick", action="store_true", help="one round, few repetitions")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--worker", choices=ROUTES, help=argparse.SUPPRESS)
    ap.add_argument("--reps", type=int, default=15)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.reps)
        return
    if not TORCH_PYTHON.exists():
        sys.exit("bench_torch: .venv-torch is missing; run `bash dev/setup_torch.sh` first")
    rounds, reps = (1, 3) if args.quick else (args.rounds, args.reps)

    cells: dict[tuple, dict] = {}
    for _ in range(rounds):
        for route in ROUTES:  # interleaved, so drift in machine load hits every route
            for row in run_route(route, reps):
                key = (route, tuple(row["shape"]), row["dtype"])
                cell = cells.setdefault(key, {**row, "write": [], "read": []})
                cell["write"] += row["write"]
                cell["read"] += row["read"]
                cell["exact"] = cell["exact"] and row["exact"]

    torch_version = subprocess.run(
        [str(TORCH_PYTHON), "-c", "import torch; print(torch.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print(
        f"## Torch tensors in and out: median ms over {rounds} x {reps} runs per route "
        f"(torch {torch_version}, CPU tensors, files on /dev/shm)\n"
    )
    ops = [f"{op} {r}" for op in ("write", "read") for r in ROUTES]
    heads = ["torch vs default (w / r)", "default vs plain (w / r)"]
    table = benchlib.Table(["shape", "dtype", *ops, *heads], "ll" + "r" * 8)
    print(table.head())
    identical = True
    for shape in SHAPES:
        for dtype in DTYPES:
            c = {r: cells[(r, shape, dtype)] for r in ROUTES}
            med = {
                (r, op): statistics.median(c[r][op]) * 1e3
                for r in ROUTES
                for op in ("write", "read")
            }
            identical &= c["default"]["sha256"] == c["torch"]["sha256"]
            plain_note = " *" if c["plain"]["stored_dtype"] != dtype else ""

            def ratio(a: str, b: str, op: str, med: dict = med) -> str:
                return f"{med[(b, op)] / med[(a, op)]:.2f}x"

            times = [
                f"{med[(r, op)]:.3f}{plain_note if r == 'plain' else ''}"
                for op in ("write", "read")
                for r in ROUTES
            ]
            pairs = (("torch", "default"), ("default", "plain"))
            ratios = [f"{ratio(a, b, 'write')} / {ratio(a, b, 'read')}" for a, b in pairs]
            print(table.row([shape, dtype, *times, *ratios]))
    print(
        "\nRatios above 1 mean the first route is faster (`torch vs default` = default time / "
        "torch time).\n* plain bfloat16: numpy has no bfloat16, so the tensor was widened to "
        "float32 and stored as float32 (twice the bytes; it reads back as float32)."
    )
    exact = all(c["exact"] for c in cells.values())
    print(
        f"\nRead back bit for bit: {'yes' if exact else 'NO'}; the default and torch builds "
        f"wrote byte-identical files: {'yes' if identical else 'NO'}."
    )


if __name__ == "__main__":
    main()
