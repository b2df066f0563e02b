"""Benchmark of the catalog: ``raiiaf index`` / ``raiiaf_rs.catalog`` against per-file Python loops.

Run from the repository root, in the venv where raiiaf_rs, the reference ``raiiaf`` 1.1.0,
pyarrow and duckdb are installed::

    .venv/bin/python bench/bench_catalog.py                  # 20,000 tiny + 2,000 realistic files
    .venv/bin/python bench/bench_catalog.py --files 2000 --ref-sample 200 \
        --realistic-files 200                                 # smoke test
    .venv/bin/python bench/bench_catalog.py --realistic-files 0   # the tiny case only
    .venv/bin/python bench/bench_catalog.py --cold drop_caches    # cold runs after one real drop
    .venv/bin/python bench/bench_catalog.py --keep            # keep the files and the catalogs

Input: N small ``.raiiaf`` files (default 20,000) written to a temporary directory under /tmp,
spread over 20 subdirectories (removed at the end unless ``--keep``). Each is one realistic
small generation, written by ``raiiaf_rs.write``: a float32 (1,4,8,8) ``initial_noise``, one
16x16 PNG (made once), the environment document captured once at the start
(``raiiaf_rs.environment.capture(import_torch=True)``), and metadata in the normalised keys the
hosts write (prompt, model_name, tags, generation_settings, negative_prompt, denoise, size,
batch, models, loras, host) plus a ComfyUI ``prompt`` graph of 10 nodes, so the manifest is
a few KB. Seeds and prompts vary per file, over 5 models, 3 samplers and 2 schedulers. Every
100th file reuses file 0's noise (and seed), and every 7th file carries an environment whose
``torch`` component differs from this machine's, so queries (b) and (c) find something. The
files are written by 2 worker processes; that time is printed, not tabulated.

Rows of the table, one run, each with files/s and the ratio to the reference loop:

- ``raiiaf_rs.index(dir, out, full=True)`` (the Rust code behind ``raiiaf index DIR -o
  catalog.parquet --full``), page cache warm: run once first, then the best of R runs;
- the same cold (``--cold``): by default (``fadvise``) ``posix_fadvise(POSIX_FADV_DONTNEED)``
  on every file after a sync before each run, which drops the files' pages and keeps directory
  entries and inodes cached; ``--cold drop_caches`` writes ``3`` to ``/proc/sys/vm/drop_caches``
  (root only) at most once per run of the script, since it empties the page cache of the
  whole machine: that cold row is then one run, and later cold rows fall back to fadvise;
  ``--cold none`` skips the cold rows. The method used is printed under each table;
- ``raiiaf_rs.index(dir, out)`` with the catalog present and nothing changed (incremental);
- ``pa.table(raiiaf_rs.catalog(dir))``: the in-memory Arrow table, conversion included;
- a single-threaded Python loop of ``raiiaf_rs.read_metadata(path)`` over every file;
- the reference ``raiiaf`` 1.1.0: it has no metadata-only reader, so the loop calls its full
  decoder ``raiiafFileHandler().file_decoder(path)`` (what ``bench_format.ref_read`` times:
  header, manifest, every chunk, the environment compared with this machine's, warnings and
  debug prints silenced), on the first S files (``--ref-sample``, default 2,000), warm.
  For scale a second reference row composes its own header and META parsers
  (``header_parse`` + ``metadata_parser``: manifest only, no environment): not an API of the
  reference, a lower bound for any loop built on it.

Then the indexer against the floor (``bench_floor.py``, ``--floor-runs``, default 5; 0 skips
it): ``raiiaf index --full`` (the release CLI, 2 threads) beside open + read 8 KB + close over
the same files, with and without SHA-256, on the tiny files and on N PNGs with A1111
``parameters``, and a PIL loop reading those; ratios to the floor, target >= 0.5x.

Then three DuckDB queries over the Parquet catalog, through ``raiiaf_rs.query.connect`` (views
``catalog``, ``current_env``, ``drift``), best of R, with their row counts: (a) count per
model and sampler, (b) files sharing one noise tensor, (c) files of one model whose environment
differs from this machine's in a pixel-relevant component.

Second case, realistic files (``--realistic-files``, default 2,000; 0 skips it): the same
metadata, environments, noise reuse and layout, but each file is shaped like a real SD 1.5
generation: one 512x512 RGB PNG with photo-like content (smooth gradients plus Gaussian noise,
so it compresses like a photo: ~440 KB; made once) and a float32 (1,4,64,64) ``initial_noise``
(64 KB, random per seed), ~0.5 MB a file. All are written with the ``raw`` codec: the
reference (format 1.1) cannot read ``compact`` files, and the point of this case is the
reference decoding its own kind of file. Here the reference's full decoder reads every chunk
(~0.5 MB a file), zstd-decompresses the image chunk (the PNG stays bytes: it decodes no pixels)
and turns the raw latent into a numpy array, while the indexer still reads only the manifest and
the environment. Rows: the indexer warm (best of R) and cold, ``raiiaf_rs.catalog``, the
``read_metadata`` loop over every file, and the reference ``file_decoder`` loop, warm, over
every file if that takes under ``--ref-budget`` seconds (60), else over the files it reached
by then (its rate is what the ratios use either way).

Targets (printed PASS / MISS, computed): the warm indexer reads >= 20,000 files/s on 2 cores,
and >= 50x the reference loop, in each case. This is a benchmark, not a test: it never fails on
a timing.
Each row also gives the CPU time of the process during the run (``getrusage``, all threads),
so a run slowed by other processes can be told from one that is slow by itself. Timings on a
shared or busy machine are noisy; ratios come from the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import io
import json
import multiprocessing
import os
import platform
import resource
import shutil
import sys
import time
import warnings
from collections.abc import Iterator
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Callable

# Single-threaded numeric libraries (the reference imports torch), set before importing them.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import bench_floor  # noqa: E402  (bench/, beside this file)
import benchlib  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import raiiaf_rs  # noqa: E402
import raiiaf_rs.query  # noqa: E402
from PIL import Image  # noqa: E402

with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
    # The reference imports torch (and pynvml, which warns): done once here, outside every timing.
    warnings.simplefilter("ignore")
    from raiiaf import raiiafFileHandler
    from raiiaf.core.constants import HEADER_SIZE as REF_HEADER_SIZE
    from raiiaf.core.header import header_parse, header_validate

WARM_TARGET = 20_000.0  # files/s, 2 cores
REF_TARGET = 50.0  # x the reference loop
SUBDIRS = 20
NOISE_REUSE_EVERY = 100  # file i reuses file 0's noise when i % 100 == 0
TORCH_DRIFT_EVERY = 7  # file i records another torch when i % 7 == 3
REF = f"raiiaf {importlib_metadata.version('raiiaf')}"
RS = f"raiiaf_rs {raiiaf_rs.__version__}"

MODELS = [
    (
        "sd_xl_base_1.0.safetensors",
        "31e35c80fc4829d14f90153f4c74cd59c90b779f6afe05a74cd6ffb2fbc6b2a3",
    ),
    (
        "juggernautXL_v9.safetensors",
        "c9e3e68f89b8e38689e1097d4be4573cf308de4e3fd044c64ca697bdb4aa8bca",
    ),
    (
        "v1-5-pruned-emaonly.safetensors",
        "cc6cb27103417325ff94f52b7a5d2dde45a7515b25c255d8e396c90014281516",
    ),
    (
        "flux1-dev-fp8.safetensors",
        "8e91b68084b53a7fc44ed2a3756d821e355ac1a7b6fe29be760c1db532f3d88a",
    ),
    (
        "dreamshaper_8.safetensors",
        "879db523c30d3b9017143d56705015e15a2cb5628762c11d086fed9538abd7fd",
    ),
]
SAMPLERS = ["euler", "dpmpp_2m", "dpmpp_2m_sde"]
SCHEDULERS = ["karras", "normal"]
LORAS = [
    (
        "fox_fur_detail_v2.safetensors",
        "b7c2f0e6a3d94e18a6f1c0d2e5b8a7f4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8",
    ),
    (
        "golden_hour_lighting.safetensors",
        "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0",
    ),
    ("add_detail.safetensors", "7c819b6d13663ed720c2254f4fe18373107dfef2448d337913c8fc545640881e"),
]
SUBJECTS = [
    "a majestic red fox standing in a snowy birch forest",
    "a lighthouse on a rocky coast during a storm",
    "a cozy reading nook with a cat asleep on a pile of books",
    "a futuristic city skyline at dusk with flying cars",
    "a bowl of ramen on a wooden table, steam rising",
    "an astronaut riding a horse on the moon",
    "a medieval market square bustling with merchants",
]
STYLES = [
    "golden hour, volumetric light, highly detailed, 85mm lens, photorealistic",
    "oil painting, impasto, dramatic chiaroscuro, museum quality",
    "studio ghibli style, soft pastel colours, whimsical",
    "cinematic still, anamorphic, film grain, moody teal and orange grade",
]
NEGATIVE_PROMPT = (
    "blurry, lowres, jpeg artifacts, watermark, signature, text, extra limbs, deformed, "
    "bad anatomy, oversaturated, cropped, out of frame"
)


# ----------------------------------------------------------------------------- generation


def make_png(size: int = 16) -> bytes:
    """A tiny RGB PNG (smooth gradient plus noise), made once."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:size, 0:size]
    img = np.stack([x * 255 // size, y * 255 // size, (x + y) * 127 // size], axis=-1)
    img = np.clip(img + rng.integers(-8, 9, img.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def make_photo_png(size: int = 512) -> bytes:
    """A size x size RGB PNG with photo-like content, made once: smooth low-frequency colour
    fields plus Gaussian noise (sigma 4), so zlib cannot flatten it (~440 KB at 512x512,
    within the 300-500 KB of a typical SD 1.5 output)."""
    rng = np.random.default_rng(11)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    r = 150 + 80 * np.sin(3.1 * x + 1.3 * y) + 20 * np.cos(9 * x * y)
    g = 120 + 70 * np.cos(2.3 * y - 0.7 * x) + 25 * np.sin(7 * x)
    b = 100 + 60 * np.sin(4.2 * (x + y)) + 30 * np.cos(5 * y)
    img = np.stack([r, g, b], axis=-1) + rng.normal(0.0, 4.0, (size, size, 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


TINY_NOISE = (1, 4, 8, 8)
SD15_NOISE = (1, 4, 64, 64)  # the latent of a 512x512 SD 1.5 generation


def noise(seed: int, shape: tuple[int, ...] = TINY_NOISE) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


def comfy_graph(
    i: int,
    seed: int,
    prompt: str,
    model: str,
    sampler: str,
    scheduler: str,
    steps: int,
    cfg: float,
    loras: list[dict[str, Any]],
) -> dict[str, Any]:
    """A ComfyUI API-format prompt graph of 10 nodes (checkpoint, 2 LoRAs, 2 CLIP encodes,
    latent, KSampler, VAE decode, save, and a note)."""
    lora_a = loras[0]["name"] if loras else LORAS[0][0]
    lora_b = loras[1]["name"] if len(loras) > 1 else LORAS[1][0]
    return {
        "4": {
            "class_type": "CheckpointLoaderSimple",
            "inputs": {"ckpt_name": model},
            "_meta": {"title": "Load Checkpoint"},
        },
        "10": {
            "class_type": "LoraLoader",
            "inputs": {
                "lora_name": lora_a,
                "strength_model": 0.65,
                "strength_clip": 0.65,
                "model": ["4", 0],
                "clip": ["4", 1],
            },
            "_meta": {"title": "Load LoRA"},
        },
        "11": {
            "class_type": "LoraLoader",
            "inputs": {
                "lora_name": lora_b,
                "strength_model": 0.4,
                "strength_clip": 0.4,
                "model": ["10", 0],
                "clip": ["10", 1],
            },
            "_meta": {"title": "Load LoRA"},
        },
        "6": {
            "class_type": "CLIPTextEncode",
            "inputs": {"text": prompt, "clip": ["11", 1]},
            "_meta": {"title": "CLIP Text Encode (Prompt)"},
        },
        "7": {
            "class_type": "CLIPTextEncode",
            "inputs": {"text": NEGATIVE_PROMPT, "clip": ["11", 1]},
            "_meta": {"title": "CLIP Text Encode (Negative)"},
        },
        "5": {
            "class_type": "EmptyLatentImage",
            "inputs": {"width": 1024, "height": 1024, "batch_size": 4},
            "_meta": {"title": "Empty Latent Image"},
        },
        "3": {
            "class_type": "KSampler",
            "inputs": {
                "seed": seed,
                "steps": steps,
                "cfg": cfg,
                "sampler_name": sampler,
                "scheduler": scheduler,
                "denoise": 1.0,
                "model": ["11", 0],
                "positive": ["6", 0],
                "negative": ["7", 0],
                "latent_image": ["5", 0],
            },
            "_meta": {"title": "KSampler"},
        },
        "8": {
            "class_type": "VAEDecode",
            "inputs": {"samples": ["3", 0], "vae": ["4", 2]},
            "_meta": {"title": "VAE Decode"},
        },
        "9": {
            "class_type": "SaveImageRaiiaf",
            "inputs": {
                "filename_prefix": f"bench/{i // 4:06d}",
                "images": ["8", 0],
                "initial_noise": ["3", 1],
            },
            "_meta": {"title": "Save Image + .raiiaf"},
        },
        "12": {
            "class_type": "Note",
            "inputs": {"text": "catalog benchmark workflow; seeds vary per batch"},
            "_meta": {"title": "Note"},
        },
    }


def file_seed(i: int) -> int:
    return 0x5EED_0000 + (0 if i % NOISE_REUSE_EVERY == 0 else i)


def generation(i: int, shape: tuple[int, ...] = TINY_NOISE) -> tuple[np.ndarray, dict[str, Any]]:
    """File i's initial noise (of ``shape``) and metadata."""
    seed = file_seed(i)
    model, model_sha = MODELS[i % len(MODELS)]
    sampler = SAMPLERS[(i // len(MODELS)) % len(SAMPLERS)]
    scheduler = SCHEDULERS[i % len(SCHEDULERS)]
    steps = (20, 25, 30)[i % 3]
    cfg = (5.0, 6.5, 7.0, 8.0)[i % 4]
    prompt = f"{SUBJECTS[i % len(SUBJECTS)]}, {STYLES[i % len(STYLES)]}, variation {i}"
    loras = [
        {
            "name": name,
            "sha256": sha,
            "strength_model": 0.65 - 0.25 * k,
            "strength_clip": 0.65 - 0.25 * k,
        }
        for k, (name, sha) in enumerate(LORAS[: i % 3])
    ]
    metadata = {
        "prompt": prompt,
        "model_name": model,
        "tags": ["bench", "txt2img", SAMPLERS[i % len(SAMPLERS)], f"subject{i % len(SUBJECTS)}"],
        "generation_settings": {
            "seed": seed,
            "steps": steps,
            "sampler": sampler,
            "scheduler": scheduler,
            "cfg_scale": cfg,
        },
        "negative_prompt": NEGATIVE_PROMPT,
        "denoise": 1.0,
        "width": 1024,
        "height": 1024,
        "batch_index": i % 4,
        "batch_size": 4,
        "batch_id": hashlib.sha1(f"batch{i // 4}".encode()).hexdigest()[:16],
        "models": [{"role": "checkpoint", "name": model, "sha256": model_sha}],
        "loras": loras,
        "host": {"app": "ComfyUI", "version": "0.3.10"},
        "comfyui": {
            "prompt": comfy_graph(i, seed, prompt, model, sampler, scheduler, steps, cfg, loras)
        },
    }
    return noise(seed, shape), metadata


def file_path(root: Path, i: int) -> Path:
    return root / f"batch_{i % SUBDIRS:02d}" / f"gen_{i:06d}.raiiaf"


_WORKER: dict[str, Any] = {}


def _worker_init(
    root: str,
    png: bytes,
    env: dict[str, Any],
    drift_env: dict[str, Any],
    shape: tuple[int, ...],
) -> None:
    _WORKER.update(root=Path(root), png=png, env=env, drift_env=drift_env, shape=shape)


def _write_range(bounds: tuple[int, int]) -> int:
    root, png, shape = _WORKER["root"], _WORKER["png"], _WORKER["shape"]
    for i in range(*bounds):
        latent, metadata = generation(i, shape)
        env = _WORKER["drift_env"] if i % TORCH_DRIFT_EVERY == 3 else _WORKER["env"]
        raiiaf_rs.write(
            file_path(root, i),
            {"initial_noise": latent},
            image=png,
            metadata=metadata,
            environment=env,
        )
    return bounds[1] - bounds[0]


def drifted_environment(env: dict[str, Any]) -> dict[str, Any]:
    """``env`` with its torch component replaced by another torch version (or one added)."""
    pairs = [
        (c["component_id"], c["cononical_str"])
        for c in env["components"]
        if c["component_id"] != "torch"
    ]
    return raiiaf_rs.environment_document([("torch", "name=torch;version=2.1.0;cuda=11.8"), *pairs])


def generate(
    root: Path,
    n: int,
    workers: int,
    env: dict[str, Any],
    png: bytes,
    shape: tuple[int, ...] = TINY_NOISE,
    step: int = 500,
) -> float:
    """Writes the N files (raw codec) with ``env`` (every 7th with a drifted torch), ``png``
    and noise of ``shape``; returns the seconds taken."""
    drift_env = drifted_environment(env)
    for d in range(min(SUBDIRS, n)):
        (root / f"batch_{d:02d}").mkdir(parents=True, exist_ok=True)
    ranges = [(a, min(a + step, n)) for a in range(0, n, step)]
    t0 = time.perf_counter()
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers, _worker_init, (str(root), png, env, drift_env, shape)) as pool:
        written = sum(pool.imap_unordered(_write_range, ranges))
    seconds = time.perf_counter() - t0
    assert written == n
    return seconds


# ----------------------------------------------------------------------------- timing


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the reference's debug prints and its environment-drift warnings."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def cpu_seconds() -> float:
    """User + system CPU time of this process, all its threads."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def best_of(
    runs: int, fn: Callable[[], Any], before: Callable[[], None] | None = None
) -> tuple[float, float, Any]:
    """Best wall time of ``runs`` calls of ``fn`` (``before`` runs untimed before each), the
    CPU time of that run (all threads) and the last result."""
    best, best_cpu, result = float("inf"), 0.0, None
    for _ in range(runs):
        if before is not None:
            before()
        gc.collect()
        c0, t0 = cpu_seconds(), time.perf_counter()
        result = fn()
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        if wall < best:
            best, best_cpu = wall, cpu
    return best, best_cpu, result


FADVISE_NOTE = (
    "os.posix_fadvise(POSIX_FADV_DONTNEED) on every file after a sync (file pages only; "
    "dentries and inodes stay cached)"
)
DROP_CACHES_NOTE = "sync; echo 3 > /proc/sys/vm/drop_caches (page cache, dentries and inodes)"


class ColdCache:
    """Empties the page cache before a cold run, by ``--cold``: ``fadvise`` (default) drops
    the pages of the files measured, before every run; ``drop_caches`` empties the whole
    machine's page cache, so at most once per run of the script (one run for that row; later
    cold rows fall back to fadvise); ``none`` measures no cold rows."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.drops_left = 1 if mode == "drop_caches" else 0

    @staticmethod
    def fadvise(files: list[Path]) -> None:
        os.sync()
        for p in files:
            fd = os.open(p, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)

    def plan(self, files: list[Path], runs: int) -> tuple[str, int, Callable[[], None]] | str:
        """(method, runs, the function to call before each) for the next cold row, or why
        there is none."""
        if self.mode == "none":
            return "cold: not measured (--cold none)"
        if self.drops_left > 0:
            self.drops_left -= 1
            try:
                os.sync()
                with open("/proc/sys/vm/drop_caches", "w") as f:
                    f.write("3\n")
            except OSError as e:
                if not hasattr(os, "posix_fadvise"):
                    return f"cold: not measurable here (drop_caches: {e}; no posix_fadvise)"
                return (f"{FADVISE_NOTE} (drop_caches refused: {e})", runs,
                        lambda: self.fadvise(files))  # fmt: skip
            # Dropped once just now: one run, nothing to do before it.
            return f"{DROP_CACHES_NOTE}, once: 1 run", 1, lambda: None
        if not hasattr(os, "posix_fadvise"):
            return "cold: not measurable here (no posix_fadvise)"
        why = " (drop_caches already used once in this run)" if self.mode == "drop_caches" else ""
        return f"{FADVISE_NOTE}{why}", runs, lambda: self.fadvise(files)


def ref_decode(path: Path) -> dict[str, Any]:
    """The reference's cheapest public way to a file's metadata: its full decoder."""
    return _HANDLER.file_decoder(str(path))["metadata"]


def ref_manifest_only(path: Path) -> dict[str, Any]:
    """The reference's own header and META parsers, composed: the manifest only."""
    with open(path, "rb") as f:
        header = header_parse(f.read(REF_HEADER_SIZE))
        if not header_validate(header):
            raise ValueError(f"{path}: invalid header")
        f.seek(header["chunk_table_offset"])
        return _HANDLER.metadata.metadata_parser(f.read(header["chunk_table_size"]))


_HANDLER = raiiafFileHandler()


# ----------------------------------------------------------------------------- output


def pass_miss(met: bool) -> str:
    return "PASS" if met else "MISS"


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{RS} vs {REF}; Python {platform.python_version()}, pyarrow {pa.__version__}, "
        f"duckdb {importlib_metadata.version('duckdb')}; {os.cpu_count()} cores ({cpu}), "
        f"{platform.system()} {platform.release()}"
    )


# ----------------------------------------------------------------------------- measurements

#: One table row: what, files, best wall seconds, CPU seconds of that run, note.
Row = tuple[str, int, float, float, str]


def index_rows(
    root: Path,
    out: Path,
    files: list[Path],
    runs: int,
    cold_cache: ColdCache,
    incremental: bool = True,
) -> tuple[list[Row], str]:
    """The indexer warm, cold and (if ``incremental``) incremental, and the in-memory table;
    and the cold note."""
    n = len(files)
    rows: list[Row] = []

    def full() -> Any:
        return raiiaf_rs.index(root, out, full=True)

    full()  # warm-up: page cache warm, catalog present
    warm_s, warm_cpu, report = best_of(runs, full)
    assert report["files"] == n and report["read"] == n and report["errors"] == 0, report
    rows.append(("`raiiaf_rs.index(dir, out, full=True)`, warm", n, warm_s, warm_cpu,
                 f"best of {runs}"))  # fmt: skip

    cold = cold_cache.plan(files, runs)
    if isinstance(cold, str):
        cold_note = cold
    else:
        method, cold_runs, drop = cold
        cold_s, cold_cpu, _ = best_of(cold_runs, full, before=drop)
        note = (f"best of {cold_runs}, cache dropped before each" if cold_runs > 1
                else "1 run, cache dropped before it")  # fmt: skip
        rows.append(("`raiiaf_rs.index(dir, out, full=True)`, cold", n, cold_s, cold_cpu, note))
        cold_note = f"cold: page cache dropped with {method}"
        full()  # warm again for the rows below

    if incremental:
        inc_s, inc_cpu, inc = best_of(runs, lambda: raiiaf_rs.index(root, out))
        reuse = f"best of {runs}; read {inc['read']}, reused {inc['reused']}"
        rows.append(("`raiiaf_rs.index(dir, out)`, incremental, nothing changed", n, inc_s,
                     inc_cpu, reuse))  # fmt: skip

    cat_s, cat_cpu, table = best_of(runs, lambda: pa.table(raiiaf_rs.catalog(root)))
    assert table.num_rows == n
    rows.append(("`pa.table(raiiaf_rs.catalog(dir))`", n, cat_s, cat_cpu,
                 f"best of {runs}; {table.num_columns} columns"))  # fmt: skip
    return rows, cold_note


def loop_rows(files: list[Path], sample: list[Path]) -> list[Row]:
    """Single-threaded Python loops: raiiaf_rs.read_metadata over every file, the reference
    over the sample (warm page cache)."""

    def rs_loop() -> int:
        return len({raiiaf_rs.read_metadata(p).metadata.get("model_name") for p in files})

    def ref_loop(fn: Callable[[Path], dict[str, Any]]) -> Callable[[], int]:
        def run() -> int:
            with quiet():
                return len({fn(p)["raiiaf_metadata"]["model_info"]["model_name"] for p in sample})

        return run

    loop_s, loop_cpu, _ = best_of(1, rs_loop)
    with quiet():
        ref_decode(sample[0])  # warm-up: the first call initialises torch.cuda and NVML
    ref_s, ref_cpu, _ = best_of(1, ref_loop(ref_decode))
    man_s, man_cpu, _ = best_of(1, ref_loop(ref_manifest_only))
    k = len(sample)
    return [
        ("Python loop: `raiiaf_rs.read_metadata(path)`", len(files), loop_s, loop_cpu,
         "1 run, 1 thread"),
        (f"Python loop: {REF} `file_decoder(path)` (full decode)", k, ref_s, ref_cpu,
         f"1 run, first {k} files; **reference**"),
        (f"Python loop: {REF} `header_parse` + `metadata_parser` (manifest only)", k, man_s,
         man_cpu, f"1 run, first {k} files; not an API of the reference"),
    ]  # fmt: skip


def realistic_loop_rows(files: list[Path], budget_s: float) -> list[Row]:
    """The read_metadata loop over every file, and the reference's full decoder over every
    file or, past ``budget_s`` seconds, over the files it reached (warm page cache)."""

    def rs_loop() -> int:
        return len({raiiaf_rs.read_metadata(p).metadata.get("model_name") for p in files})

    loop_s, loop_cpu, _ = best_of(1, rs_loop)

    # Warm the page cache with every byte the decoder will read (the cold indexer run comes
    # later), untimed.
    for p in files:
        with open(p, "rb") as f:
            while f.read(1 << 20):
                pass
    done = 0

    def ref_loop() -> int:
        nonlocal done
        models = set()
        deadline = time.perf_counter() + budget_s
        with quiet():
            for p in files:
                models.add(ref_decode(p)["raiiaf_metadata"]["model_info"]["model_name"])
                done += 1
                if time.perf_counter() >= deadline:
                    break
        return len(models)

    with quiet():
        ref_decode(files[0])  # warm-up: the first call initialises torch.cuda and NVML
    gc.collect()
    c0, t0 = cpu_seconds(), time.perf_counter()
    ref_loop()
    ref_s, ref_cpu = time.perf_counter() - t0, cpu_seconds() - c0
    scope = (f"all {done:,} files" if done == len(files)
             else f"first {done:,} files (stopped at the {budget_s:.0f} s budget)")  # fmt: skip
    return [
        ("Python loop: `raiiaf_rs.read_metadata(path)`", len(files), loop_s, loop_cpu,
         "1 run, 1 thread"),
        (f"Python loop: {REF} `file_decoder(path)` (full decode)", done, ref_s, ref_cpu,
         f"1 run, {scope}; **reference**"),
    ]  # fmt: skip


def query_rows(out: Path, runs: int) -> list[list[str]]:
    """The three DuckDB queries over the Parquet catalog: label, best ms, rows, detail."""
    con = raiiaf_rs.query.connect(out)
    model_x = MODELS[0][0]
    queries = [
        ("(a) count per model and sampler",
         "SELECT model_name, sampler, count(*) AS n FROM catalog GROUP BY ALL ORDER BY ALL"),
        ("(b) files sharing one noise tensor",
         "SELECT noise_sha256, count(*) AS n, list(path ORDER BY path) AS paths "
         "FROM catalog WHERE noise_sha256 IS NOT NULL "
         "GROUP BY noise_sha256 HAVING count(*) > 1"),
        (f"(c) model `{model_x}` made in a pixel-relevant other environment",
         "SELECT path, pixel_drift FROM drift JOIN catalog USING (path) "
         f"WHERE model_name = '{model_x}' AND len(pixel_drift) > 0"),
    ]  # fmt: skip
    out_rows = []
    try:
        for label, sql in queries:
            q_s, _, result = best_of(runs, lambda sql=sql: con.sql(sql).fetchall())
            detail = ""
            if label.startswith("(b)") and result:
                detail = f"largest group: {max(r[1] for r in result)} files"
            elif label.startswith("(c)") and result:
                detail = "drift: " + ", ".join(sorted({c for r in result for c in r[1]}))
            out_rows.append([label, f"{q_s * 1000:.1f}", f"{len(result):,}", detail])
    finally:
        con.close()
    return out_rows


# ----------------------------------------------------------------------------- main


def print_rows(rows: list[Row]) -> float:
    """Prints the table of ``rows``; returns the reference's rate (files/s)."""
    ref_rate = next(k / s for what, k, s, _, note in rows if "**reference**" in note)
    table_rows = [
        [what, f"{k:,}", f"{s:.3f}", f"{k / s:,.0f}", f"{k / s / ref_rate:,.1f}x",
         f"{cpu:.3f}", f"{k / cpu:,.0f}" if cpu > 0 else "-", note]
        for what, k, s, cpu, note in rows
    ]  # fmt: skip
    headers = ["Measurement", "Files", "Time (s)", "Files/s", "vs reference", "CPU (s)",
               "Files per CPU-s", "Notes"]  # fmt: skip
    print(benchlib.md_table(headers, table_rows, "lrrrrrrl"))
    return ref_rate


def cpu_note(load_before: float, load_after: float) -> str:
    return (
        "- CPU (s): user + system time of this process during the run, all threads; "
        "a rate far below files per CPU-s x cores means the run waited (I/O, or other "
        f"processes: 1-minute load average {load_before:.1f} before the timings, "
        f"{load_after:.1f} after, on {os.cpu_count()} cores)"
    )


def ref_line(label: str, warm_rate: float, ref_rate: float) -> str:
    ratio = warm_rate / ref_rate
    return (
        f"{label}: indexer warm {warm_rate:,.0f} files/s >= {REF_TARGET:.0f}x the reference loop "
        f"({ref_rate:,.0f} files/s): {ratio:,.1f}x {pass_miss(ratio >= REF_TARGET)}"
    )


def realistic_case(
    tmp: Path, n: int, args: argparse.Namespace, env: dict[str, Any], cold_cache: ColdCache
) -> tuple[float, float]:
    """Second case: N files shaped like SD 1.5 generations. Prints its section; returns
    (indexer warm files/s, reference files/s)."""
    runs = max(1, args.runs)
    root = tmp / "realistic"
    out = tmp / "realistic.parquet"
    png = make_photo_png()
    gen_s = generate(root, n, args.workers, env, png, SD15_NOISE, step=50)
    files = sorted(root.rglob("*.raiiaf"))
    assert len(files) == n, (len(files), n)
    total = sum(p.stat().st_size for p in files)
    manifest_kb = len(json.dumps(raiiaf_rs.read_metadata(files[0]).manifest)) / 1024
    # The reference cannot read compact files (format 1.1): checked here, not assumed.
    probe = tmp / "compact_probe.raiiaf"
    latent, metadata = generation(1, SD15_NOISE)
    raiiaf_rs.write(probe, {"initial_noise": latent}, image=png, metadata=metadata,
                    environment=env, codec="compact")  # fmt: skip
    try:
        with quiet():
            ref_decode(probe)
        compact_note = f"{REF} reads compact files too, but all are raw here, like the tiny case"
    except Exception as e:  # whatever the reference raises
        first = str(e).splitlines()[0][:80] if str(e) else "-"
        compact_note = (f"{REF} cannot read `codec=\"compact\"` files ({type(e).__name__}: "
                        f"{first}), so all are raw")  # fmt: skip
    compact_size = probe.stat().st_size
    probe.unlink()

    load_before = os.getloadavg()[0]
    rows, cold_note = [], ""
    full = lambda: raiiaf_rs.index(root, out, full=True)  # noqa: E731
    full()  # warm-up
    warm_s, warm_cpu, report = best_of(runs, full)
    assert report["files"] == n and report["read"] == n and report["errors"] == 0, report
    rows.append(("`raiiaf_rs.index(dir, out, full=True)`, warm", n, warm_s, warm_cpu,
                 f"best of {runs}"))  # fmt: skip
    cat_s, cat_cpu, table = best_of(runs, lambda: pa.table(raiiaf_rs.catalog(root)))
    assert table.num_rows == n
    rows.append(("`pa.table(raiiaf_rs.catalog(dir))`", n, cat_s, cat_cpu,
                 f"best of {runs}; {table.num_columns} columns"))  # fmt: skip
    rows += realistic_loop_rows(files, args.ref_budget)
    # Cold last, so that the loops above run warm without re-reading ~1 GB.
    cold = cold_cache.plan(files, runs)
    if isinstance(cold, str):
        cold_note = cold
    else:
        method, cold_runs, drop = cold
        cold_s, cold_cpu, _ = best_of(cold_runs, full, before=drop)
        note = (f"best of {cold_runs}, cache dropped before each" if cold_runs > 1
                else "1 run, cache dropped before it")  # fmt: skip
        rows.insert(1, ("`raiiaf_rs.index(dir, out, full=True)`, cold", n, cold_s, cold_cpu,
                        note))  # fmt: skip
        cold_note = f"cold: page cache dropped with {method}"
    load_after = os.getloadavg()[0]

    print(f"\n# Catalog benchmark, realistic files: {n:,} SD 1.5-shaped files\n")
    print(
        f"Generated {n:,} files ({total / 1e9:.2f} GB, {total / n / 1024:.0f} KB each: one "
        f"512x512 RGB PNG of {len(png) / 1024:.0f} KB with photo-like content, float32 "
        f"{SD15_NOISE} initial noise, manifest ~{manifest_kb:.1f} KB; the same metadata and "
        f"environments as above) in {SUBDIRS} subdirectories with {args.workers} processes in "
        f"{gen_s:.2f} s ({n / gen_s:,.0f} files/s); catalog {out.stat().st_size / 1e6:.2f} MB. "
        f"Codec: raw; {compact_note} (a compact file here: {compact_size / 1024:.0f} KB).\n"
    )
    ref_rate = print_rows(rows)
    print(f"\n- {cold_note}")
    print(
        f"- reference = the `file_decoder` loop: {ref_rate:,.0f} files/s "
        f"({ref_rate * total / n / 1e6:,.1f} MB/s of files); it reads every chunk, "
        "zstd-decompresses the image chunk (PNG bytes, no pixel decode) and maps the raw "
        "latent into numpy; the indexer reads the manifest and the environment only"
    )
    print(cpu_note(load_before, load_after))
    warm_rate = n / warm_s
    print(f"\nTargets: {ref_line('realistic files', warm_rate, ref_rate)}")
    return warm_rate, ref_rate


def main(argv: list[str] | None = None) -> int:
    parser = benchlib.parser(__doc__)
    parser.add_argument("--files", type=int, default=20_000, help="files to generate (20000)")
    parser.add_argument(
        "--ref-sample",
        type=int,
        default=2_000,
        help="files the reference loop reads (the first S by path; 2000)",
    )
    parser.add_argument("--runs", type=int, default=3, help="timed runs per row (best of; 3)")
    parser.add_argument("--workers", type=int, default=2, help="processes writing the files (2)")
    parser.add_argument("--keep", action="store_true", help="keep the files and the catalog")
    parser.add_argument(
        "--realistic-files",
        type=int,
        default=2_000,
        help="SD 1.5-shaped files (512x512 PNG, (1,4,64,64) noise) of the second case; 0 skips it "
        "(2000)",
    )
    parser.add_argument(
        "--ref-budget",
        type=float,
        default=60.0,
        help="seconds the reference loop may take on the realistic files before it stops (60)",
    )
    parser.add_argument(
        "--cold",
        choices=["fadvise", "drop_caches", "none"],
        default="fadvise",
        help="how cold rows empty the page cache: fadvise DONTNEED on the files before each run "
        "(default); drop_caches at most once per run of the script (root); none: no cold rows",
    )
    parser.add_argument(
        "--floor-runs",
        type=int,
        default=5,
        help="interleaved rounds of the table against the floor (bench_floor.py); 0 skips it (5)",
    )
    args = parser.parse_args(argv)  # fmt: skip
    n, runs = args.files, max(1, args.runs)
    if n < 1:
        parser.error("--files must be >= 1")
    if args.realistic_files < 0:
        parser.error("--realistic-files must be >= 0")
    cold_cache = ColdCache(args.cold)

    with benchlib.scratch("raiiaf-bench-catalog-", keep=args.keep) as tmp:
        root = tmp / "files"
        out = tmp / "catalog.parquet"
        env = raiiaf_rs.environment.capture(import_torch=True)
        gen_s = generate(root, n, args.workers, env, make_png())
        files = sorted(root.rglob("*.raiiaf"))
        assert len(files) == n, (len(files), n)
        total = sum(p.stat().st_size for p in files)
        sample = files[: max(1, min(args.ref_sample, n))]
        manifest_kb = len(json.dumps(raiiaf_rs.read_metadata(files[0]).manifest)) / 1024

        load_before = os.getloadavg()[0]
        rows, cold_note = index_rows(root, out, files, runs, cold_cache)
        rows += loop_rows(files, sample)
        load_after = os.getloadavg()[0]

        print(f"# Catalog benchmark: {n:,} files\n")
        print(machine_line())
        print(
            f"\nGenerated {n:,} files ({total / 1e6:.1f} MB, {total / n / 1024:.1f} KB each, "
            f"manifest ~{manifest_kb:.1f} KB) in {SUBDIRS} subdirectories with "
            f"{args.workers} processes in {gen_s:.2f} s ({n / gen_s:,.0f} files/s); "
            f"catalog {out.stat().st_size / 1e6:.2f} MB.\n"
        )
        ref_rate = print_rows(rows)
        print(f"\n- {cold_note}")
        print(f"- reference = the `file_decoder` loop: {ref_rate:,.0f} files/s on its sample")
        print(cpu_note(load_before, load_after))

        warm_rate = n / rows[0][2]
        print(
            f"\nTargets: indexer warm >= {WARM_TARGET:,.0f} files/s on 2 cores: "
            f"{warm_rate:,.0f} files/s {pass_miss(warm_rate >= WARM_TARGET)}; "
            f">= {REF_TARGET:.0f}x the reference loop: {warm_rate / ref_rate:,.1f}x "
            f"{pass_miss(warm_rate / ref_rate >= REF_TARGET)}"
        )

        print(f"\nDuckDB over `catalog.parquet` via `raiiaf_rs.query.connect` (best of {runs}):\n")
        queries = query_rows(out, runs)
        print(benchlib.md_table(["Query", "Time (ms)", "Rows", "Notes"], queries, "lrrl"))
        expected_b = len(range(0, n, NOISE_REUSE_EVERY))
        expected_c = sum(1 for i in range(3, n, TORCH_DRIFT_EVERY) if i % len(MODELS) == 0)
        torch_now = [c["cononical_str"] for c in env["components"] if c["component_id"] == "torch"]
        print(
            f"\nExpected: (b) 1 group of {expected_b:,} files (every {NOISE_REUSE_EVERY}th file "
            f"reuses file 0's noise); (c) {expected_c:,} rows (every {TORCH_DRIFT_EVERY}th file "
            f"records torch 2.1.0; this machine: {', '.join(torch_now) or 'no torch'})."
        )
        sys.stdout.flush()

        if args.floor_runs > 0:
            # The same tiny files against the floor, beside 20,000 PNGs (bench_floor.py).
            bench_floor.write_pngs(tmp / "pngs", n, args.workers)
            bench_floor.floor_table(root, tmp / "pngs", tmp, args.floor_runs, threads=2)
            shutil.rmtree(tmp / "pngs", ignore_errors=True)

        summary = [ref_line(f"tiny files ({n:,})", warm_rate, ref_rate)]
        if args.realistic_files > 0:
            shutil.rmtree(root, ignore_errors=True)  # the tiny files are done with
            r_warm, r_ref = realistic_case(tmp, args.realistic_files, args, env, cold_cache)
            summary.append(ref_line(f"realistic files ({args.realistic_files:,})", r_warm, r_ref))
        print(f"\n## {REF_TARGET:.0f}x target, both cases\n")
        for line in summary:
            print(f"- {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
