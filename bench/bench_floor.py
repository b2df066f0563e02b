"""The indexer against the floor: ``raiiaf index`` beside the least work any per-file reader does.

Part of ``bench/bench_catalog.py`` (its "Indexer against the floor" table), or alone::

    .venv/bin/python bench/bench_floor.py                 # 20,000 .raiiaf files and 20,000 PNGs
    .venv/bin/python bench/bench_floor.py --files 2000 --runs 3
    .venv/bin/python bench/bench_floor.py --raiiaf-dir D --png-dir P --raiiaf-bin OLD/raiiaf

Rows, all over the same files in the same run, each the best of R interleaved rounds (the median
is in the notes: other processes share the cores):

- the floor (``bench/index_floor.rs``, built as the ``index_floor`` example): open + one read of
  up to 8 KB + close per file, on T threads (default 2), and the same plus SHA-256 of the bytes
  read; the file list is made before the timing;
- the floor of the format, by the same program on the ``.raiiaf`` files: the same I/O plus
  inflating each file's manifest (zstd), then plus checking that it is valid JSON (the core
  crate's scanner): the least any indexer that gives a damaged file no clean row can do;
- ``raiiaf index DIR -o catalog.parquet --full`` (the release CLI, ``RAYON_NUM_THREADS=T``): the
  whole command, process start, directory walk and Parquet file included, on the ``.raiiaf``
  files and on PNGs carrying A1111 ``parameters`` (``n/a`` while the indexer reads no PNGs);
- the floor on the PNGs;
- a single-threaded Python loop reading each PNG's ``parameters`` with PIL
  (``Image.open(p).info["parameters"]``: the text chunks before the pixels, no pixel decode).

The PNGs (32x32, ~1.5 KB with their text) are written with PIL's ``PngInfo``, the way A1111
writes its ``parameters`` chunk. Target (PASS / MISS, computed): ``raiiaf index`` on the
``.raiiaf`` files >= 0.5x the floor. The format's floor is printed beside it: where it is below
0.5x itself, no correct indexer can meet the target on these files, and the indexer's ratio to
the format's floor says how far it is from what the files allow.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import benchlib
from PIL import Image
from PIL.PngImagePlugin import PngInfo

REPO = Path(__file__).resolve().parent.parent
FLOOR_TARGET = 0.5  # x the open + read + close floor
SUBDIRS = 20

SAMPLERS = ["Euler a", "DPM++ 2M Karras", "DPM++ SDE Karras"]
MODELS = [("v1-5-pruned-emaonly", "6ce0161689"), ("juggernautXL_v9", "c9e3e68f89")]


def target_dir() -> Path:
    """Where cargo puts its builds: ``$CARGO_TARGET_DIR``, else ``target/`` in the repository."""
    return Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")


def build_binaries(build: bool = True) -> tuple[Path, Path]:
    """Builds (release; unless ``build`` is false: as they are) and returns the ``raiiaf`` CLI
    and the ``index_floor`` example."""
    if build:
        cmd = ["cargo", "build", "--release", "--quiet", "-p", "raiiaf-cli", "--bin", "raiiaf",
               "--example", "index_floor"]  # fmt: skip
        subprocess.run(cmd, cwd=REPO, check=True)
    release = target_dir() / "release"
    return release / "raiiaf", release / "examples" / "index_floor"


def a1111_parameters(i: int) -> str:
    """A1111's infotext: prompt, negative prompt, then the settings line."""
    model, model_hash = MODELS[i % len(MODELS)]
    return (
        f"a lighthouse on a rocky coast during a storm, variation {i}, highly detailed\n"
        "Negative prompt: blurry, lowres, watermark, text\n"
        f"Steps: {20 + i % 10}, Sampler: {SAMPLERS[i % len(SAMPLERS)]}, Schedule type: Karras, "
        f"CFG scale: 7, Seed: {1_000_000 + i}, Size: 512x512, Model hash: {model_hash}, "
        f"Model: {model}, Version: v1.10.1"
    )


def _write_pngs(args: tuple[str, int, int]) -> int:
    root, start, stop = args
    image = Image.new("RGB", (32, 32))
    image.putdata(
        [(x * 8 % 256, y * 8 % 256, (x + y) * 4 % 256) for y in range(32) for x in range(32)]
    )
    for i in range(start, stop):
        info = PngInfo()
        info.add_text("parameters", a1111_parameters(i))
        image.save(Path(root) / f"batch_{i % SUBDIRS:02d}" / f"{i:06d}.png", pnginfo=info)
    return stop - start


def write_pngs(root: Path, n: int, workers: int) -> float:
    """N PNGs with A1111 ``parameters`` under ``root`` (20 subdirectories); returns seconds."""
    for d in range(min(SUBDIRS, n)):
        (root / f"batch_{d:02d}").mkdir(parents=True, exist_ok=True)
    ranges = [(str(root), a, min(a + 500, n)) for a in range(0, n, 500)]
    t0 = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        assert sum(pool.imap_unordered(_write_pngs, ranges)) == n
    return time.perf_counter() - t0


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def floor_run(floor_bin: Path, root: Path, ext: str, threads: int) -> dict[str, float]:
    """One round of the floor: seconds per mode (``open``, ``open_sha256``)."""
    out = subprocess.run(
        [str(floor_bin), str(root), "--ext", ext, "--threads", str(threads), "--runs", "1"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {d["mode"]: d["seconds"] for d in map(json.loads, out.splitlines())}


def index_run(raiiaf_bin: Path, root: Path, out: Path, threads: int) -> tuple[float, float, int]:
    """One ``raiiaf index --full`` run: wall seconds, CPU seconds, files it indexed."""
    env = {**os.environ, "RAYON_NUM_THREADS": str(threads)}
    c0, t0 = children_cpu(), time.perf_counter()
    line = subprocess.run(
        [str(raiiaf_bin), "index", str(root), "-o", str(out), "--full"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    wall, cpu = time.perf_counter() - t0, children_cpu() - c0
    # "<out>: N files (R read, ...": the count after the path.
    files = int(line.rsplit(": ", 1)[-1].split(" files", 1)[0]) if " files (" in line else -1
    return wall, cpu, files


def pil_loop(files: list[Path]) -> float:
    t0 = time.perf_counter()
    found = 0
    for p in files:
        with Image.open(p) as im:
            found += "parameters" in im.info
    seconds = time.perf_counter() - t0
    assert found == len(files), (found, len(files))
    return seconds


def floor_table(
    raiiaf_root: Path,
    png_root: Path,
    tmp: Path,
    runs: int,
    threads: int,
    raiiaf_bin: Path | None = None,
    build: bool = True,
) -> float:
    """Times every row over ``runs`` interleaved rounds and prints the table; returns the
    indexer's ratio to the floor on the ``.raiiaf`` files. ``raiiaf_bin``: another build of the
    CLI to time (an older one, to compare) instead of this tree's."""
    built, floor_bin = build_binaries(build)
    raiiaf_bin = raiiaf_bin or built
    n_raiiaf = sum(1 for _ in raiiaf_root.rglob("*.raiiaf"))
    pngs = sorted(png_root.rglob("*.png"))
    out = tmp / "floor-catalog.parquet"
    out_png = tmp / "floor-png-catalog.parquet"
    times: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    png_indexed = -1

    def add(key: str, seconds: float, cpu: float | None = None) -> None:
        times.setdefault(key, []).append(seconds)
        if cpu is not None:
            cpus.setdefault(key, []).append(cpu)

    # Warm-up: page cache, dentries and the binaries.
    floor_run(floor_bin, raiiaf_root, "raiiaf", threads)
    index_run(raiiaf_bin, raiiaf_root, out, threads)
    floor_run(floor_bin, png_root, "png", threads)
    for _ in range(runs):
        for mode, s in floor_run(floor_bin, raiiaf_root, "raiiaf", threads).items():
            add(f"floor_{mode}", s)
        wall, cpu, files = index_run(raiiaf_bin, raiiaf_root, out, threads)
        assert files == n_raiiaf, (files, n_raiiaf)
        add("index", wall, cpu)
        for mode, s in floor_run(floor_bin, png_root, "png", threads).items():
            add(f"png_floor_{mode}", s)
        wall, cpu, png_indexed = index_run(raiiaf_bin, png_root, out_png, threads)
        add("png_index", wall, cpu)
        add("pil", pil_loop(pngs))

    def best(key: str) -> float:
        return min(times[key])

    floor = n_raiiaf / best("floor_open")
    png_floor = len(pngs) / best("png_floor_open")

    def row(what: str, key: str, n: int, base: float, note: str) -> list[str]:
        s = best(key)
        rate = n / s
        cpu = ""
        if key in cpus:
            c = cpus[key][times[key].index(s)]
            cpu = f"{c:.3f} ({c / n * 1e6:.0f} µs/file)"
        med = n / statistics.median(times[key])
        return [what, f"{n:,}", f"{s:.3f}", f"{rate:,.0f}", f"{rate / base:.2f}x", cpu,
                f"median {med:,.0f} files/s; {note}"]  # fmt: skip

    t = f"{threads} threads"
    rows = [
        row("floor: open + read 8 KB + close (`.raiiaf`)", "floor_open", n_raiiaf, floor, t),
        row("floor + SHA-256 of the bytes read (`.raiiaf`)", "floor_open_sha256", n_raiiaf,
            floor, t),
        row("floor + inflate the manifest (zstd)", "floor_open_inflate", n_raiiaf, floor, t),
        row("format floor: + check the manifest is valid JSON", "floor_open_manifest", n_raiiaf,
            floor, f"{t}; the least a correct indexer does"),
        row("`raiiaf index DIR -o out --full` (`.raiiaf`)", "index", n_raiiaf, floor,
            f"{t} (RAYON_NUM_THREADS); whole command: start, walk, Parquet"),
        row("floor: open + read 8 KB + close (PNG)", "png_floor_open", len(pngs), png_floor, t),
    ]  # fmt: skip
    if png_indexed == len(pngs):
        rows.append(row("`raiiaf index DIR -o out --full` (PNG, A1111 `parameters`)",
                        "png_index", len(pngs), png_floor, t))  # fmt: skip
    else:
        rows.append(["`raiiaf index DIR -o out --full` (PNG, A1111 `parameters`)",
                     f"{len(pngs):,}", "-", "n/a (PNG indexing not in this build)", "-", "-",
                     f"indexed {max(png_indexed, 0):,} of them"])  # fmt: skip
    rows.append(row("Python loop: PIL `Image.open(p).info['parameters']` (PNG)", "pil", len(pngs),
                    png_floor, "1 thread"))  # fmt: skip

    print(f"\n# Indexer against the floor: {n_raiiaf:,} `.raiiaf` files, {len(pngs):,} PNGs\n")
    headers = ["Measurement", "Files", "Time (s)", "Files/s", "vs floor", "CPU (s)", "Notes"]
    print(benchlib.md_table(headers, rows, "lrrrrrl", pad=True))
    ratio = (n_raiiaf / best("index")) / floor
    verdict = "PASS" if ratio >= FLOOR_TARGET else "MISS"
    format_floor = best("floor_open_manifest") / best("floor_open")
    print(
        f"\n- best of {runs} interleaved rounds (floor, index, PNG floor, PNG index, PIL loop; "
        f"one warm-up round first), page cache warm; `vs floor` = the rate over the floor's on "
        f"the same files; CPU: the command's user + system time\n"
        f"- 1-minute load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n\n"
        f"Target: `raiiaf index` >= {FLOOR_TARGET}x the floor on the `.raiiaf` files: "
        f"{ratio:.2f}x {verdict}. The format's floor (I/O + inflate + validate the manifest) is "
        f"{1 / format_floor:.2f}x the floor; `raiiaf index` is "
        f"{best('floor_open_manifest') / best('index'):.2f}x the format's floor"
    )
    sys.stdout.flush()
    return ratio


def main(argv: list[str] | None = None) -> int:
    parser = benchlib.parser(__doc__)
    parser.add_argument("--files", type=int, default=20_000, help="files of each kind (20000)")
    parser.add_argument("--runs", type=int, default=5, help="interleaved rounds (best of; 5)")
    parser.add_argument("--threads", type=int, default=2, help="threads (2)")
    parser.add_argument("--workers", type=int, default=2, help="processes writing files (2)")
    parser.add_argument(
        "--raiiaf-dir", type=Path, help="index these .raiiaf files instead of generating them"
    )
    parser.add_argument(
        "--png-dir", type=Path, help="read these PNGs (A1111 parameters) instead of writing them"
    )
    parser.add_argument(
        "--raiiaf-bin", type=Path, help="time this build of the CLI instead of this tree's"
    )
    parser.add_argument(
        "--no-build", action="store_true", help="use the binaries already built (no cargo build)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args(argv)
    with benchlib.scratch("raiiaf-bench-floor-", keep=args.keep) as tmp:
        raiiaf_root = args.raiiaf_dir
        if raiiaf_root is None:
            import bench_catalog  # the same files as the catalog benchmark

            raiiaf_root = tmp / "files"
            env: dict[str, Any] = bench_catalog.raiiaf_rs.environment.capture(import_torch=False)
            bench_catalog.generate(raiiaf_root, args.files, args.workers, env,
                                   bench_catalog.make_png())  # fmt: skip
        png_root = args.png_dir
        if png_root is None:
            png_root = tmp / "pngs"
            write_pngs(png_root, args.files, args.workers)
        floor_table(raiiaf_root, png_root, tmp, max(1, args.runs), args.threads, args.raiiaf_bin,
                    build=not args.no_build)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
