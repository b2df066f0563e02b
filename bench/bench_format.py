"""Side-by-side benchmark: the reference ``raiiaf`` 1.1.0 (PyPI) against ``raiiaf_rs``.

Run from the repository root, in the venv where both packages are installed::

    make bench
    .venv/bin/python bench/bench_format.py            # full run, under a minute on 2 cores
    .venv/bin/python bench/bench_format.py --quick    # fewer iterations, for a smoke test
    .venv/bin/python bench/bench_format.py --json results.json

What it measures (all inputs are generated in memory; files go to a temporary directory
on local disk and are deleted afterwards):

1. Latent table: Gaussian-noise latents (1,4,128,128) f32, (1,16,128,128) f32 and
   (1,16,21,60,104) f32 and f16, each stored with a ~1.6 MB PNG and ~2 KB of JSON
   metadata. Every mode of both implementations: write ms, read ms (median and min
   wall time over N runs after a warm-up, file I/O included; every write goes to a
   new file), file size, and the ratios to the reference's fastest / smallest mode.
   The reference rejects 5-D latents, so for the 5-D rows it is timed on the same
   data reshaped to 4-D (16,21,60,104).
2. SDXL record: the PNG + two (1,4,128,128) f32 tensors + JSON, with checks of the
   targets: write median < 5 ms (on a 2-core machine), write and read >= 5x faster
   than the reference's fastest mode.
3. Compression table: the ``compact`` codec on f32 / f16 / bf16 Gaussian noise
   against the entropy limit (target: >= 95 % of the best possible lossless ratio).

Reads are not like for like: ``raiiaf_rs.read`` verifies the SHA-256 of every chunk
and returns owned arrays, while the reference's ``file_decoder`` verifies no hash
and returns zero-copy ``np.frombuffer`` views for raw latents.

This is a benchmark, not a test: it never fails on a timing, it prints whether each
target is met. Timings on a shared or busy machine are noisy; compare medians.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Callable

# Single-threaded numeric libraries (the reference imports torch), set before importing them.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import benchlib  # noqa: E402  (bench/, beside this file)
import numpy as np  # noqa: E402
import raiiaf_rs  # noqa: E402
from PIL import Image  # noqa: E402

with contextlib.redirect_stdout(io.StringIO()):
    # The reference imports torch: done once here, outside every timing.
    from raiiaf import raiiafFileHandler

# Best lossless ratio for i.i.d. N(0,1) noise (shared/docs/compression.md, section 1.2).
ENTROPY_BOUND = {"float32": 1.2092, "float16": 1.1884, "bfloat16": 1.5290}
ELEMENT_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}
COMPACT_TARGET = 0.95  # "within 5 % of the entropy limit"
SDXL_WRITE_TARGET_MS = 5.0
SPEEDUP_TARGET = 5.0
REF = f"raiiaf {importlib_metadata.version('raiiaf')}"
RS = f"raiiaf_rs {raiiaf_rs.__version__}"

PROMPT = (
    "a majestic red fox standing in a snowy birch forest at golden hour, volumetric light, "
    "highly detailed fur, shallow depth of field, 85mm lens, photorealistic, award-winning "
    "wildlife photography, soft rim light, crisp snowflakes in the air"
)
NEGATIVE_PROMPT = (
    "blurry, lowres, jpeg artifacts, watermark, signature, text, extra limbs, deformed, "
    "bad anatomy, oversaturated, cartoon, painting, illustration, cropped, out of frame"
)
TAGS = ["sdxl", "txt2img", "wildlife", "fox", "winter", "benchmark"]
GENERATION_SETTINGS: dict[str, Any] = {
    "seed": 3141592653,
    "steps": 30,
    "sampler": "dpmpp_2m",
    "cfg_scale": 7.0,
    "scheduler": "karras",
    "eta": 0.0,
    "guidance": "classifier-free",
    "precision": "fp16",
    "deterministic": True,
    "negative_prompt": NEGATIVE_PROMPT,
    "width": 1024,
    "height": 1024,
    "batch_size": 1,
    "clip_skip": 1,
    "denoise": 1.0,
    "noise_device": "cpu",
    "noise_generator": "torch.Generator(device='cpu').manual_seed(seed)",
    "model_hash": "31e35c80fc4829d14f90153f4c74cd59c90b779f6afe05a74cd6ffb2fbc6b2a3",
    "vae": "sdxl_vae.safetensors",
    "vae_hash": "63aeecb90ff7bc1c115395962d3e803571385b61938377bc7089b36e81e92e2e",
    "loras": [
        {
            "name": "fox_fur_detail_v2.safetensors",
            "weight": 0.65,
            "hash": "b7c2f0e6a3d94e18a6f1c0d2e5b8a7f4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8",
        },
        {
            "name": "golden_hour_lighting.safetensors",
            "weight": 0.4,
            "hash": "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0",
        },
    ],
    "ui": "ComfyUI",
    "ui_version": "0.3.10",
    "workflow_id": "9d3c7a52-1f7e-4b8e-9a51-5c2b6d8e0f13",
}
HARDWARE_INFO: dict[str, Any] = {
    "machine_name": "render-node-07",
    "os": "linux",
    "cpu": "x86_64",
    "cpu_cores": 16,
    "gpu": [
        {
            "name": "NVIDIA GeForce RTX 4090",
            "memory_gb": 24.0,
            "driver": "550.54.14",
            "cuda_version": "12.4",
        }
    ],
    "ram_gb": 64.0,
    "framework": "torch",
    "compute_lib": "cuda",
}
MODEL_NAME = "stable-diffusion-xl-base-1.0"
MODEL_VERSION = "1.0"
METADATA: dict[str, Any] = {
    "model_name": MODEL_NAME,
    "model_version": MODEL_VERSION,
    "prompt": PROMPT,
    "tags": TAGS,
    "generation_settings": GENERATION_SETTINGS,
    "hardware_info": HARDWARE_INFO,
}


# --------------------------------------------------------------------------- inputs


def gaussian(seed: int, shape: tuple[int, ...], dtype: str = "float32") -> np.ndarray:
    """N(0,1) noise drawn in float32 (float16: round-to-nearest-even cast)."""
    a = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
    return a.astype(np.float16) if dtype == "float16" else a


def make_png(noise_sigma: float = 3.0) -> bytes:
    """A 1024x1024 RGB PNG of smooth gradients plus pixel noise, about 1.6 MB."""
    y, x = np.mgrid[0:1024, 0:1024].astype(np.float32) / 1023.0
    base = np.stack([255 * x, 255 * y, 127.5 + 127.5 * np.sin(2 * np.pi * (x + y))], axis=-1)
    noise = np.random.default_rng(1234).normal(0.0, noise_sigma, base.shape)
    pixels = np.clip(base + noise, 0, 255).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


# --------------------------------------------------------------------------- timing


@dataclass
class Timing:
    median_ms: float
    min_ms: float
    runs: int

    @classmethod
    def of(cls, seconds: list[float]) -> Timing:
        return cls(statistics.median(seconds) * 1e3, min(seconds) * 1e3, len(seconds))


@dataclass(frozen=True)
class Budget:
    runs: int  # at most this many timed runs ...
    seconds: float  # ... stopping early once this much time is spent ...
    min_runs: int = 3  # ... but never fewer than this


class _NullWriter(io.TextIOBase):
    def write(self, s: str) -> int:
        return len(s)


_NULL = _NullWriter()


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the reference's debug prints and its environment-drift warnings."""
    with contextlib.redirect_stdout(_NULL), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def time_writes(
    write: Callable[[Path], Any], tmp: Path, tag: str, budget: Budget
) -> tuple[Timing, Path]:
    """Time ``write(path)`` to a new file each run; return the timing and the last file."""
    path = tmp / f"{tag}-warm.raiiaf"
    write(path)
    times: list[float] = []
    with no_gc():
        start = time.perf_counter()
        for i in range(budget.runs):
            prev, path = path, tmp / f"{tag}-{i}.raiiaf"
            t0 = time.perf_counter()
            write(path)
            times.append(time.perf_counter() - t0)
            prev.unlink()
            if len(times) >= budget.min_runs and time.perf_counter() - start > budget.seconds:
                break
    return Timing.of(times), path


def time_reads(read: Callable[[Path], Any], path: Path, budget: Budget) -> tuple[Timing, Any]:
    """Time ``read(path)``; return the timing and the warm-up call's result."""
    first = read(path)
    times: list[float] = []
    with no_gc():
        start = time.perf_counter()
        for _ in range(budget.runs):
            t0 = time.perf_counter()
            out = read(path)
            times.append(time.perf_counter() - t0)
            del out  # freed outside the timed region
            if len(times) >= budget.min_runs and time.perf_counter() - start > budget.seconds:
                break
    return Timing.of(times), first


# --------------------------------------------------------------------------- the two APIs

_HANDLER = raiiafFileHandler()


def ref_write(
    path: Path,
    latents: dict[str, np.ndarray],
    png: bytes | None,
    *,
    compress: bool,
    to_f16: bool,
) -> None:
    with quiet():
        _HANDLER.file_encoder(
            filename=str(path),
            latent=latents,
            chunk_records=[],
            model_name=MODEL_NAME,
            model_version=MODEL_VERSION,
            prompt=PROMPT,
            tags=TAGS,
            img_binary=png,
            should_compress=compress,
            convert_float16=to_f16,
            generation_settings=GENERATION_SETTINGS,
            hardware_info=HARDWARE_INFO,
        )


def ref_read(path: Path) -> dict[str, Any]:
    with quiet():
        return _HANDLER.file_decoder(str(path))


def ref_roundtrip_ok(
    decoded: dict[str, Any], latents: dict[str, np.ndarray], png: bytes | None
) -> bool:
    got = decoded["chunks"]["latent"]
    if len(got) != len(latents):
        return False
    for arr, want in zip(got, latents.values()):
        if arr.dtype != want.dtype or arr.tobytes() != want.tobytes():
            return False
    return png is None or decoded["chunks"].get("image") == png


def rs_write(
    path: Path,
    latents: dict[str, np.ndarray],
    png: bytes | None,
    *,
    codec: str,
    dtype: str | None = None,
) -> int:
    return raiiaf_rs.write(path, latents, image=png, metadata=METADATA, codec=codec, dtype=dtype)


def rs_roundtrip_ok(
    art: raiiaf_rs.Artifact, latents: dict[str, np.ndarray], png: bytes | None
) -> bool:
    if list(art.latents) != list(latents):
        return False
    for name, want in latents.items():
        got = art.latents[name]
        if got.shape != want.shape or got.dtype != want.dtype:
            return False
        if got.tobytes() != want.tobytes():
            return False
    return art.image == png


# --------------------------------------------------------------------------- latent table


@dataclass
class Row:
    case: str
    impl: str
    mode: str
    write: Timing | None = None
    read: Timing | None = None
    file_bytes: int | None = None
    roundtrip: str = ""
    note: str = ""
    write_speedup: float | None = None  # reference's fastest write median / this median
    read_speedup: float | None = None
    size_ratio: float | None = None  # this file / reference's smallest file


@dataclass
class Case:
    label: str
    latents: dict[str, np.ndarray]
    budget: Budget


def _ref_modes(dtype: str) -> list[tuple[str, bool, bool]]:
    """(label, should_compress, convert_float16) of the reference modes for one input dtype."""
    if dtype == "float16":
        return [("F16 raw", False, True)]  # zfpy rejects float16
    return [("F32 raw", False, False), ("F32 zfp", True, False)]


def run_case(case: Case, png: bytes, tmp: Path, slug: str) -> list[Row]:
    rows: list[Row] = []
    first = next(iter(case.latents.values()))
    dtype = str(first.dtype)
    ref_latents = case.latents
    ref_label = ""
    if first.ndim != 4:
        # The reference only takes 4-D latents: show that, then time it on a 4-D view.
        try:
            ref_write(tmp / f"{slug}-5d.raiiaf", case.latents, png, compress=False, to_f16=False)
            rejected = ""
        except Exception as e:
            rejected = f"{type(e).__name__}: ...{str(e).rpartition(': ')[2]}"
        rows.append(
            Row(
                case.label,
                REF,
                f"any ({first.ndim}-D input)",
                note=f"n/a (rejects {first.ndim}-D)" if rejected else "accepted?!",
                roundtrip=rejected,
            )
        )
        ref_latents = {k: v.reshape(v.shape[1:]) for k, v in case.latents.items()}
        ref_label = f" on 4-D {tuple(next(iter(ref_latents.values())).shape)}"

    for label, compress, to_f16 in _ref_modes(dtype):
        tag = f"{slug}-ref-{label.replace(' ', '_')}"

        def write(p: Path, compress: bool = compress, to_f16: bool = to_f16) -> None:
            ref_write(p, ref_latents, png, compress=compress, to_f16=to_f16)

        wt, path = time_writes(write, tmp, tag, case.budget)
        rt, decoded = time_reads(ref_read, path, case.budget)
        ok = ref_roundtrip_ok(decoded, ref_latents, png)
        rows.append(
            Row(
                case.label,
                REF,
                label + ref_label,
                wt,
                rt,
                path.stat().st_size,
                "exact" if ok else "MISMATCH",
            )
        )
        del decoded
        path.unlink()

    codecs = ["raw", "compact"]
    if dtype == "float32" and first.ndim == 4:
        codecs.append("zfp")
    for codec in codecs:
        tag = f"{slug}-rs-{codec}"

        def write(p: Path, codec: str = codec) -> None:
            rs_write(p, case.latents, png, codec=codec)

        wt, path = time_writes(write, tmp, tag, case.budget)
        rt, art = time_reads(raiiaf_rs.read, path, case.budget)
        ok = rs_roundtrip_ok(art, case.latents, png)
        rows.append(
            Row(
                case.label,
                RS,
                f"codec={codec}",
                wt,
                rt,
                path.stat().st_size,
                "exact" if ok else "MISMATCH",
            )
        )
        del art
        path.unlink()

    ref_rows = [r for r in rows if r.impl == REF and r.write is not None]
    best_w = min(r.write.median_ms for r in ref_rows if r.write)
    best_r = min(r.read.median_ms for r in ref_rows if r.read)
    smallest = min(r.file_bytes for r in ref_rows if r.file_bytes)
    for r in rows:
        if r.write and r.read and r.file_bytes:
            r.write_speedup = best_w / r.write.median_ms
            r.read_speedup = best_r / r.read.median_ms
            r.size_ratio = r.file_bytes / smallest
    return rows


# --------------------------------------------------------------------------- SDXL targets


@dataclass
class Target:
    what: str
    measured: str
    met: bool


def sdxl_targets(rows: list[Row], cores: int) -> list[Target]:
    ref_w = [(r.mode, r.write) for r in rows if r.impl == REF and r.write is not None]
    ref_r = [(r.mode, r.read) for r in rows if r.impl == REF and r.read is not None]
    best_w_mode, best_w = min(ref_w, key=lambda m: m[1].median_ms)
    best_r_mode, best_r = min(ref_r, key=lambda m: m[1].median_ms)
    targets: list[Target] = []
    core_note = "" if cores == 2 else f" (this machine: {cores} cores; target is for 2)"
    for r in rows:
        if r.impl != RS or not r.write or not r.read:
            continue
        targets.append(
            Target(
                f"{r.mode}: write median < {SDXL_WRITE_TARGET_MS:g} ms{core_note}",
                f"{r.write.median_ms:.2f} ms",
                r.write.median_ms < SDXL_WRITE_TARGET_MS,
            )
        )
        ws = r.write_speedup or 0.0
        targets.append(
            Target(
                f"{r.mode}: write >= {SPEEDUP_TARGET:g}x faster than reference's fastest "
                f"({best_w_mode}, {best_w.median_ms:.2f} ms)",
                f"{ws:.2f}x",
                ws >= SPEEDUP_TARGET,
            )
        )
        rs_ = r.read_speedup or 0.0
        targets.append(
            Target(
                f"{r.mode}: read (all SHA-256 verified) >= {SPEEDUP_TARGET:g}x faster than "
                f"reference's fastest ({best_r_mode}, {best_r.median_ms:.2f} ms, no hashes)",
                f"{rs_:.2f}x",
                rs_ >= SPEEDUP_TARGET,
            )
        )
    return targets


def sdxl_floors(
    latents: dict[str, np.ndarray], png: bytes, tmp: Path, budget: Budget
) -> dict[str, Timing]:
    """What parts of an SDXL-record write / read cost on this machine, for comparison."""
    import hashlib

    payload = [a.tobytes() for a in latents.values()] + [png]

    def sha_all(_: Path) -> None:
        for b in payload:
            hashlib.sha256(b).digest()

    def plain_write(path: Path) -> None:
        with open(path, "wb") as f:
            for b in payload:
                f.write(b)

    out: dict[str, Timing] = {}
    out["hashlib SHA-256 of all payload bytes"], _ = time_reads(sha_all, tmp, budget)
    out["Python open/write/close of the payload to a new file"], plain = time_writes(
        plain_write, tmp, "plain", budget
    )
    out["Python read_bytes of that file"], _ = time_reads(Path.read_bytes, plain, budget)
    plain.unlink()
    for codec in ("raw", "compact"):

        def write(p: Path, codec: str = codec) -> None:
            rs_write(p, latents, png, codec=codec)

        _, path = time_writes(write, tmp, f"floor-{codec}", Budget(1, 0.0, 1))
        out[f"raiiaf_rs.read(verify=False), codec={codec}"], _ = time_reads(
            lambda p: raiiaf_rs.read(p, verify=False), path, budget
        )
        out[f"raiiaf_rs.read_metadata (no tensors, no image), codec={codec}"], _ = time_reads(
            raiiaf_rs.read_metadata, path, budget
        )
        path.unlink()
    return out


# --------------------------------------------------------------------------- large tensor vs floor

LARGE_MIB = 256


@dataclass
class FloorRow:
    path: str
    best_s: float
    mib_s: float
    ratio: float  # the floor's time / this path's time: >= 1.0 is at least as fast as the floor
    file_bytes: int | None = None  # for writes: the size of the file written


def large_tensor_table(tmp: Path, runs: int = 3) -> list[FloorRow]:
    """256 MiB of float32 noise through every raw / compact read and write path, best of
    ``runs``, against the floor measured in the same run: SHA-256 of the bytes plus a copy
    into a fresh buffer (what any verified read or write must at least do)."""
    import hashlib

    arr = gaussian(21, (1, 16, 2048, 2048))  # 256 MiB
    assert arr.nbytes == LARGE_MIB << 20
    data = memoryview(arr).cast("B")

    def best(fn: Callable[[int], Any]) -> float:
        times = []
        for i in range(runs):
            gc.collect()
            t0 = time.perf_counter()
            out = fn(i)
            times.append(time.perf_counter() - t0)
            del out
        return min(times)

    def floor(_: int) -> Any:
        hashlib.sha256(data).digest()
        return bytearray(data)  # a fresh buffer: allocation, page faults and the copy

    rows: list[tuple[str, float]] = [("floor: SHA-256 + fresh-buffer copy", best(floor))]
    sizes: dict[str, int] = {}
    plain = [tmp / f"large-plain-{i}.bin" for i in range(runs)]

    def plain_write(i: int) -> Any:
        with open(plain[i], "wb") as f:
            f.write(data)

    # For reference (not targets): what the file system alone costs for the same bytes.
    reference = [
        ("(reference) Python open/write of the same bytes to a new file", best(plain_write)),
        ("(reference) Python read_bytes of that file", best(lambda i: plain[i].read_bytes())),
    ]
    for p in plain:
        p.unlink()
    for codec in ("raw", "compact"):
        paths = [tmp / f"large-{codec}-{i}.raiiaf" for i in range(runs)]

        def write(i: int, codec: str = codec, paths: list[Path] = paths) -> Any:
            return raiiaf_rs.write(paths[i], {"initial_noise": arr}, environment=None, codec=codec)

        rows.append((f"write, codec={codec}", best(write)))
        sizes[f"write, codec={codec}"] = paths[0].stat().st_size

        def read(i: int, paths: list[Path] = paths) -> Any:
            return raiiaf_rs.read(paths[i])

        rows.append((f"read (SHA-256 verified), codec={codec}", best(read)))
        back = raiiaf_rs.read(paths[0]).latents["initial_noise"]
        assert back.tobytes() == arr.tobytes(), f"{codec}: round trip differs"
        del back
        for p in paths:
            p.unlink()
    floor_s = rows[0][1]
    return [
        FloorRow(what, t, LARGE_MIB / t, floor_s / t, sizes.get(what))
        for what, t in rows + reference
    ]


def large_tensor_md(rows: list[FloorRow], runs: int = 3) -> str:
    return benchlib.md_table(
        [
            f"path (256 MiB float32 noise, best of {runs})",
            "seconds",
            "MiB/s",
            "x floor",
            ">= 1.0x",
            "file bytes",
        ],
        [
            [
                r.path,
                f"{r.best_s:.3f}",
                f"{r.mib_s:.0f}",
                f"{r.ratio:.2f}",
                "" if r.path.startswith("(reference)") else yes(r.ratio >= 1.0),
                "" if r.file_bytes is None else f"{r.file_bytes:,}",
            ]
            for r in rows
        ],
        "lrrrlr",
    )


# --------------------------------------------------------------------------- compression


@dataclass
class CompressionRow:
    shape: str
    dtype: str
    raw_bytes: int
    compact_bytes: int
    ratio: float
    bound: float
    pct_of_bound: float
    met: bool
    roundtrip: str


def compression_table(tmp: Path) -> list[CompressionRow]:
    out: list[CompressionRow] = []
    for shape in [(1, 4, 128, 128), (1, 16, 21, 60, 104)]:
        noise = gaussian(7, shape)
        for dtype in ("float32", "float16", "bfloat16"):
            path = tmp / f"compression-{dtype}-{len(shape)}d.raiiaf"
            if dtype == "float16":
                want = noise.astype(np.float16)
                raiiaf_rs.write(path, {"initial_noise": want}, codec="compact")
            else:
                # float32 as is; bfloat16 converted by raiiaf_rs (round to nearest even).
                stored = None if dtype == "float32" else dtype
                raiiaf_rs.write(path, {"initial_noise": noise}, codec="compact", dtype=stored)
                want = noise if dtype == "float32" else _bf16_bits(noise)
            art = raiiaf_rs.read(path)
            latn = next(c for c in art.chunks if c["type"] == "LATN")
            got = art.latents["initial_noise"]
            ok = art.dtypes["initial_noise"] == dtype and got.tobytes() == want.tobytes()
            raw = noise.size * ELEMENT_BYTES[dtype]
            ratio = raw / latn["compressed_size"]
            bound = ENTROPY_BOUND[dtype]
            out.append(
                CompressionRow(
                    "(" + ",".join(map(str, shape)) + ")",
                    dtype,
                    raw,
                    latn["compressed_size"],
                    ratio,
                    bound,
                    100.0 * ratio / bound,
                    ratio / bound >= COMPACT_TARGET,
                    "exact" if ok else "MISMATCH",
                )
            )
            path.unlink()
    return out


def _bf16_bits(a: np.ndarray) -> np.ndarray:
    """bfloat16 bit patterns of finite float32 values, rounded to nearest even."""
    bits = a.view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


# --------------------------------------------------------------------------- reporting


def machine_info(tmp: Path) -> dict[str, Any]:
    cpu, flags = platform.processor() or platform.machine(), set()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                cpu = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch_version = "n/a"
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "sha_ni": "sha_ni" in flags,
        "avx2": "avx2" in flags,
        "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch_version,
        "raiiaf": importlib_metadata.version("raiiaf"),
        "raiiaf_rs": raiiaf_rs.__version__,
        "tmpdir": str(tmp),
    }


def _ms(t: Timing | None) -> str:
    return "" if t is None else f"{t.median_ms:.2f} / {t.min_ms:.2f}"


def _x(v: float | None) -> str:
    return "" if v is None else f"{v:.2f}x"


def latent_rows_md(rows: list[Row]) -> str:
    body = []
    for r in rows:
        if r.write is None or r.read is None:
            body.append([r.case, r.impl, r.mode, r.note, "n/a", "", "", "", "", "", r.roundtrip])
            continue
        body.append(
            [
                r.case,
                r.impl,
                r.mode,
                _ms(r.write),
                _ms(r.read),
                f"{r.write.runs}/{r.read.runs}",
                f"{r.file_bytes:,}",
                _x(r.write_speedup),
                _x(r.read_speedup),
                f"{r.size_ratio:.3f}" if r.size_ratio is not None else "",
                r.roundtrip,
            ]
        )
    return benchlib.md_table(
        [
            "latents (+PNG, JSON)",
            "impl",
            "mode",
            "write ms med / min",
            "read ms med / min",
            "runs w/r",
            "file bytes",
            "write speedup vs ref fastest",
            "read speedup vs ref fastest",
            "size / ref smallest",
            "round-trip",
        ],
        body,
        "lllrrrrrrrl",
    )


def yes(met: bool) -> str:
    return "yes" if met else "**NO**"


def main(argv: list[str] | None = None) -> int:
    ap = benchlib.parser(__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer iterations (smoke test)")
    ap.add_argument("--json", metavar="PATH", help="also write all results to this JSON file")
    ap.add_argument(
        "--tmpdir",
        metavar="DIR",
        help="where to write the temporary files (default: the system temp dir; use local disk)",
    )
    ap.add_argument(
        "--large-only", action="store_true", help="only the 256 MiB table against the floor"
    )
    ap.add_argument(
        "--large-runs",
        type=int,
        default=3,
        metavar="N",
        help="best of N for each path of the 256 MiB table (default 3; more on a busy machine)",
    )
    args = ap.parse_args(argv)
    if args.large_only:
        with tempfile.TemporaryDirectory(prefix="raiiaf-bench-", dir=args.tmpdir) as tmpdir:
            print("## 256 MiB float32 tensor against the floor (same run)\n")
            rows = large_tensor_table(Path(tmpdir), args.large_runs)
            print(large_tensor_md(rows, args.large_runs))
        return 0

    def budget(runs: int, seconds: float) -> Budget:
        if args.quick:
            return Budget(max(3, runs // 4), min(seconds, 1.0))
        return Budget(runs, seconds)

    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="raiiaf-bench-", dir=args.tmpdir) as tmpdir:
        tmp = Path(tmpdir)
        info = machine_info(tmp)
        png = make_png()
        meta_json = len(json.dumps(METADATA))

        print(f"# raiiaf_rs vs reference {REF}{' (quick)' if args.quick else ''}\n")
        print(
            f"- CPU: {info['cpu']}; {info['logical_cpus']} logical CPUs "
            f"({info['usable_cpus']} usable); sha_ni: {'yes' if info['sha_ni'] else 'no'}; "
            f"avx2: {'yes' if info['avx2'] else 'no'}; load avg (1 min): {info['load_avg_1m']}"
        )
        print(
            f"- Python {info['python']}, numpy {info['numpy']}, torch {info['torch']}, "
            f"{REF}, {RS}; {info['platform']}"
        )
        print(f"- PNG: 1024x1024 RGB, {len(png):,} bytes; metadata JSON: {meta_json:,} bytes")
        print(f"- files in {tmp} (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')})")
        load = info["load_avg_1m"]
        if load is not None and load > 0.5 * info["usable_cpus"]:
            print(
                f"- **warning: the machine is busy (load {load} on {info['usable_cpus']} CPUs); "
                "timings are unreliable, the Rust writer's second thread especially**"
            )
        print(
            "- times: wall clock (time.perf_counter), file I/O included, median / min of the "
            "runs after one warm-up; every write goes to a new file"
        )
        print(
            "- read: raiiaf_rs.read verifies the SHA-256 of every chunk and returns owned "
            "arrays; the reference's file_decoder checks no hash and returns np.frombuffer "
            "views for raw latents"
        )
        print(
            "- speedup = reference's fastest mode median / this median (> 1: faster than the "
            "reference); size / ref smallest = this file / the reference's smallest file"
        )
        print()

        cases = [
            Case(
                "(1,4,128,128) f32", {"initial_noise": gaussian(1, (1, 4, 128, 128))}, budget(40, 3)
            ),
            Case(
                "(1,16,128,128) f32",
                {"initial_noise": gaussian(2, (1, 16, 128, 128))},
                budget(25, 3),
            ),
            Case(
                "(1,16,21,60,104) f32",
                {"initial_noise": gaussian(3, (1, 16, 21, 60, 104))},
                budget(9, 3),
            ),
            Case(
                "(1,16,21,60,104) f16",
                {"initial_noise": gaussian(3, (1, 16, 21, 60, 104), "float16")},
                budget(9, 3),
            ),
        ]
        rows: list[Row] = []
        for i, case in enumerate(cases):
            print(f"... {case.label}", file=sys.stderr, flush=True)
            rows += run_case(case, png, tmp, f"case{i}")
        print("## Latents with the PNG\n")
        print(latent_rows_md(rows))
        print()

        print("... SDXL record", file=sys.stderr, flush=True)
        sdxl_latents = {
            "initial_noise": gaussian(11, (1, 4, 128, 128)),
            "final_latent": gaussian(12, (1, 4, 128, 128)),
        }
        sdxl_case = Case("SDXL record", sdxl_latents, budget(60, 5))
        sdxl_rows = [r for r in run_case(sdxl_case, png, tmp, "sdxl") if r.mode != "codec=zfp"]
        targets = sdxl_targets(sdxl_rows, info["usable_cpus"])
        floors = sdxl_floors(sdxl_latents, png, tmp, budget(60, 3))
        print(
            "## SDXL record: PNG + initial_noise + final_latent (2 x (1,4,128,128) f32) + "
            f"{meta_json:,} B JSON\n"
        )
        print(latent_rows_md(sdxl_rows))
        print()
        print(
            benchlib.md_table(
                ["target", "measured", "met"],
                [[t.what, t.measured, yes(t.met)] for t in targets],
                "lrl",
            )
        )
        print()
        payload = sum(a.nbytes for a in sdxl_latents.values()) + len(png)
        print(f"Where the time goes, same record ({payload:,} payload bytes):\n")
        print(
            benchlib.md_table(
                ["operation", "ms median / min"],
                [[k, _ms(t)] for k, t in floors.items()],
                "lr",
            )
        )
        print()

        print("... 256 MiB tensor", file=sys.stderr, flush=True)
        large = large_tensor_table(tmp, args.large_runs)
        print("## 256 MiB float32 tensor against the floor (same run)\n")
        print(
            f"Each path's best of {args.large_runs} as a ratio to the floor measured in this run: "
            "SHA-256 of the "
            "same bytes plus a copy into a fresh buffer. Target: every path >= 1.0x.\n"
        )
        print(large_tensor_md(large, args.large_runs))
        print()

        print("... compression", file=sys.stderr, flush=True)
        comp = compression_table(tmp)
        print("## compact codec on Gaussian noise vs the entropy limit\n")
        print(
            benchlib.md_table(
                [
                    "shape",
                    "dtype",
                    "raw bytes",
                    "compact LATN bytes",
                    "ratio",
                    "entropy limit",
                    "% of limit",
                    f">= {COMPACT_TARGET:.0%} of limit",
                    "round-trip",
                ],
                [
                    [
                        c.shape,
                        c.dtype,
                        f"{c.raw_bytes:,}",
                        f"{c.compact_bytes:,}",
                        f"{c.ratio:.4f}",
                        f"{c.bound:.4f}",
                        f"{c.pct_of_bound:.1f} %",
                        yes(c.met),
                        c.roundtrip,
                    ]
                    for c in comp
                ],
                "llrrrrrll",
            )
        )
        print()

        all_targets = (
            [t.met for t in targets]
            + [c.met for c in comp]
            + [r.ratio >= 1.0 for r in large[1:] if not r.path.startswith("(reference)")]
        )
        mismatches = [r for r in rows + sdxl_rows if r.roundtrip == "MISMATCH"]
        mismatches_c = [c for c in comp if c.roundtrip == "MISMATCH"]
        elapsed = time.perf_counter() - t_start
        load_end = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
        print(
            f"Targets met: {sum(all_targets)} of {len(all_targets)}. "
            f"Round-trip mismatches: {len(mismatches) + len(mismatches_c)}. "
            f"Benchmark time: {elapsed:.0f} s. Load avg (1 min) at the end: {load_end}."
        )

        if args.json:
            result = {
                "machine": info,
                "quick": args.quick,
                "png_bytes": len(png),
                "metadata_json_bytes": meta_json,
                "latent_rows": [asdict(r) for r in rows],
                "sdxl_rows": [asdict(r) for r in sdxl_rows],
                "sdxl_targets": [asdict(t) for t in targets],
                "sdxl_floors": {k: asdict(t) for k, t in floors.items()},
                "compression": [asdict(c) for c in comp],
                "large_tensor": [asdict(r) for r in large],
                "elapsed_s": elapsed,
                "load_avg_1m_end": load_end,
            }
            Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
            print(f"Results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
