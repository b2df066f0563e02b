"""Archives for the browser's tests: a few real ``.raiiaf`` files (images, batches, drift,
passes, captures, noise only), and a catalog of 300,000 rows generated directly as Parquet
(realistic values, the catalog's own schema and key-value metadata; no 300,000 files), whose
first rows are the real files' so that their details and thumbnails still work.

``python tests/archive_data.py DIR`` writes both (DIR/files, DIR/catalog.parquet).
"""

from __future__ import annotations

import io
import json
import random
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import raiiaf_rs
from PIL import Image

WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows"
HERE_ENV = raiiaf_rs.environment_document(
    [("python", "name=python;version=3.11.7"), ("torch", "name=torch;version=2.5.1;cuda=12.4")]
)
OTHER_ENV = raiiaf_rs.environment_document(
    [("python", "name=python;version=3.9.0"), ("torch", "name=torch;version=1.13.1;cuda=11.7")]
)
SAMPLERS = ["euler", "euler_ancestral", "dpmpp_2m", "dpmpp_sde", "ddim", "uni_pc"]
MODELS = ["sd15.safetensors", "sdxl_base.safetensors", "flux-dev.safetensors", "pony.safetensors"]
SUBJECTS = ["red fox", "lighthouse", "old tram", "cat astronaut", "mountain lake", "robot"]
STYLES = ["watercolor", "oil painting", "photo, 35mm", "ink sketch", "pixel art", "low poly"]


def png(seed: int, size: tuple[int, int] = (96, 64)) -> bytes:
    """A small picture: a gradient and a disc, in colours drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    a, b, disc = (rng.integers(0, 255, 3) for _ in range(3))
    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    t = (x / size[0])[..., None]
    pixels = (a * (1 - t) + b * t).astype(np.uint8)
    cx, cy, r = rng.integers(20, 76), rng.integers(16, 48), rng.integers(8, 20)
    pixels[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = disc
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def write_file(path: Path, i: int, *, env=HERE_ENV, image=True, **extra) -> Path:
    """One file like a host writes (settings through raiiaf_rs.host.build_metadata)."""
    from raiiaf_rs import host

    me = host.Host("ComfyUI" if i % 2 else "AUTOMATIC1111", "1.0")
    meta = host.build_metadata(
        me,
        prompt=f"a {SUBJECTS[i % len(SUBJECTS)]}, {STYLES[i % len(STYLES)]}, take {i}",
        negative_prompt="blurry",
        model_name=MODELS[i % len(MODELS)],
        generation=host.Generation(
            seed=1000 + i, steps=20 + i % 5, sampler=SAMPLERS[i % len(SAMPLERS)], cfg_scale=7.0
        ),
        width=96,
        height=64,
    )
    meta.update(extra)
    noise = np.random.default_rng(i).standard_normal((1, 4, 8, 12)).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    raiiaf_rs.write(
        path, {"initial_noise": noise}, png(i) if image else None, meta, environment=env
    )
    return path


def write_files(root: Path, n: int = 12) -> list[Path]:
    """``n`` files under ``root`` (two folders); file 3 has another environment (torch
    differs), file 4 no image, file 5 ``passes``, file 6 ``captures``, file 7 a ComfyUI
    workflow holding a loader (the pack's reload workflow, set to another file), files 8-9 a
    batch."""
    out = []
    for i in range(n):
        extra: dict = {}
        if i == 5:
            extra["passes"] = [
                {
                    "order": 0,
                    "role": "txt2img",
                    "noise": "initial_noise",
                    "seed": 1005,
                    "settings": {"steps": 25},
                    "exact": True,
                    "why_not_exact": [],
                }
            ]
        if i == 6:
            extra["captures"] = [
                {"name": "initial_noise", "node_id": "3", "class_type": "KSampler", "seed": 1006}
            ]
        if i == 7:
            workflow = json.loads((WORKFLOWS / "raiiaf_reload_ksampler.json").read_text())
            extra["comfyui"] = {"workflow": workflow, "prompt": None}
        if i in (8, 9):
            extra.update(batch_id="batch-8", batch_index=i - 8, batch_size=2)
        folder = root / ("day1" if i < n // 2 else "day2")
        out.append(
            write_file(
                folder / f"img_{i:03d}.raiiaf",
                i,
                env=OTHER_ENV if i == 3 else HERE_ENV,
                image=i != 4,
                **extra,
            )
        )
    return out


def big_catalog(real: Path, out: Path, rows: int = 300_000, seed: int = 7) -> Path:
    """``rows`` rows: the real catalog ``real``'s rows first, then generated ones under the
    same directory (files that do not exist), with the real catalog's schema and metadata."""
    table = pq.read_table(real)
    schema = table.schema
    base = table.to_pylist()
    root = str(Path(base[0]["path"]).parent.parent)
    rnd = random.Random(seed)
    template = base[0]
    gen = []
    start = 1_700_000_000
    for i in range(rows - len(base)):
        model = rnd.choice(MODELS)
        batch = i // 4 if i % 3 == 0 else None
        words = rnd.sample(SUBJECTS, 2) + rnd.sample(STYLES, 2)
        t = start + i * 37
        gen.append(
            {
                **template,
                "path": f"{root}/gen/{i // 1000:03d}/img_{i:06d}.raiiaf",
                "size": 40_000 + i % 9000,
                "mtime_ns": t * 10**9,
                "created": _iso(t),
                "model_name": model,
                "model_sha256": f"{abs(hash(model)) % 16**16:016x}" + "0" * 48,
                "prompt": f"{', '.join(words)}, highly detailed, masterpiece, take {i}, "
                + "soft light, " * rnd.randint(2, 12),
                "negative_prompt": "blurry, lowres, bad anatomy",
                "seed": rnd.randint(0, 2**64 - 1) if i % 5 == 0 else rnd.randint(0, 2**32),
                "steps": rnd.choice([20, 25, 30, 40]),
                "cfg": rnd.choice([4.5, 6.0, 7.0, 7.5]),
                "sampler": rnd.choice(SAMPLERS),
                "width": rnd.choice([512, 768, 1024]),
                "height": rnd.choice([512, 768, 1024, 1344]),
                "batch_id": None if batch is None else f"gen-{batch}",
                "batch_index": None if batch is None else i % 4,
                "batch_size": None if batch is None else 4,
                "host_app": rnd.choice(["ComfyUI", "AUTOMATIC1111", "Forge"]),
                "env_torch": rnd.choice(
                    [template["env_torch"], "version=2.1.0;cuda=11.8", "version=2.5.1;cuda=12.4"]
                ),
                "image_sha256": None,
                "has_image": False,
            }
        )
    from decimal import Decimal

    for r in gen:
        r["seed"] = Decimal(r["seed"])
    big = pa.concat_tables([table, pa.Table.from_pylist(gen, schema=schema)])
    pq.write_table(big, out, compression="zstd")
    return out


def _iso(t: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat()


if __name__ == "__main__":
    target = Path(sys.argv[1])
    write_files(target / "files")
    raiiaf_rs.index([target / "files"], target / "real.parquet")
    big_catalog(target / "real.parquet", target / "catalog.parquet")
