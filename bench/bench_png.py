"""Side-by-side benchmark: ComfyUI SaveImage's PNG path against ``raiiaf_rs.encode_png``.

Run from the repository root, in the venv where raiiaf_rs is installed::

    .venv/bin/python bench/bench_png.py              # 10 timed runs per row
    .venv/bin/python bench/bench_png.py --runs 30

Input: one 1024x1024x3 float32 ComfyUI ``IMAGE`` slice (a torch tensor when torch is
installed, as ComfyUI passes it, else a numpy array) of smooth gradients plus a little
Gaussian noise (sigma 0.01, about 2.5 levels of 255), like a diffusion output, and
ComfyUI's ``prompt`` and ``workflow`` JSON text chunks (~20 KB together).

Rows, each the median (and min) wall time of N runs after a warm-up:

(a) SaveImage: ``Image.fromarray(np.clip(255. * image.cpu().numpy(), 0, 255)
    .astype(np.uint8))`` then Pillow ``save(path, pnginfo=..., compress_level=4)``
    to a file, exactly ComfyUI's code;
(b) ``raiiaf_rs.encode_png(image, text)``, in memory;
(c) what a "Save Image + .raiiaf" node does per image: (b), the PNG written to a
    file, and ``raiiaf_rs.write`` of a .raiiaf holding the PNG, a (1,4,128,128)
    float32 noise tensor and the prompt/workflow metadata. Target: (c) < (a).

A second table compares the compression levels alone (pixels already uint8, in
memory): ``encode_png`` fast / balanced / high and Pillow compress_level 1 / 4 / 6.

Numeric libraries run single-threaded (OMP_NUM_THREADS=1, set before they load);
encode_png is single-threaded too. Files go to a temporary directory.
This is a benchmark, not a test: it never fails on a timing.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import benchlib  # noqa: E402  (bench/, beside this file)
import numpy as np  # noqa: E402
import PIL  # noqa: E402
import raiiaf_rs  # noqa: E402
from PIL import Image  # noqa: E402
from PIL.PngImagePlugin import PngInfo  # noqa: E402

try:
    import torch
except ImportError:  # the benchmark runs on numpy arrays then
    torch = None


def make_image(h: int = 1024, w: int = 1024, seed: int = 0) -> np.ndarray:
    """Smooth colour gradients and waves plus N(0, 0.01) noise, float32 (H, W, 3)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    y /= h
    x /= w
    r = 0.5 + 0.35 * np.sin(2 * np.pi * (1.3 * x + 0.4 * y)) + 0.1 * np.cos(2 * np.pi * 5 * x * y)
    g = (
        0.45
        + 0.3 * np.cos(2 * np.pi * (0.7 * y - 0.9 * x))
        + 0.1 * np.sin(6 * np.pi * (x + y) ** 2)
    )
    b = 0.4 + 0.25 * np.sin(2 * np.pi * (2.1 * x * x + 1.1 * y)) + 0.2 * y
    img = np.stack([r, g, b], axis=-1)
    img += np.random.default_rng(seed).normal(0.0, 0.01, img.shape)
    return img.astype(np.float32)


def comfy_text() -> dict[str, str]:
    """ComfyUI's ``prompt`` (API graph) and ``workflow`` (UI graph) chunks, ~20 KB."""
    prompt: dict[str, Any] = {
        "3": {
            "class_type": "KSampler",
            "inputs": {
                "seed": 156680208700286,
                "steps": 30,
                "cfg": 7.0,
                "sampler_name": "dpmpp_2m",
                "scheduler": "karras",
                "denoise": 1.0,
                "model": ["4", 0],
                "positive": ["6", 0],
                "negative": ["7", 0],
                "latent_image": ["5", 0],
            },
        },
        "4": {
            "class_type": "CheckpointLoaderSimple",
            "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"},
        },
        "5": {
            "class_type": "EmptyLatentImage",
            "inputs": {"width": 1024, "height": 1024, "batch_size": 1},
        },
        "6": {
            "class_type": "CLIPTextEncode",
            "inputs": {
                "text": "a majestic red fox standing in a snowy birch forest at golden hour, "
                "volumetric light, highly detailed fur, 85mm lens, photorealistic",
                "clip": ["4", 1],
            },
        },
        "7": {
            "class_type": "CLIPTextEncode",
            "inputs": {"text": "blurry, lowres, watermark, text", "clip": ["4", 1]},
        },
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {
            "class_type": "SaveImage",
            "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]},
        },
    }
    nodes = []
    for i in range(44):  # a mid-sized UI graph: nodes with positions, sizes, widgets
        node_id = int(i + 3)
        nodes.append(
            {
                "id": node_id,
                "type": prompt.get(str(node_id), {}).get("class_type", "Reroute"),
                "pos": [100.0 + 37.5 * i, 130.25 + 11.0 * i],
                "size": [315, 262],
                "flags": {},
                "order": i,
                "mode": 0,
                "inputs": [{"name": "model", "type": "MODEL", "link": 100 + i}],
                "outputs": [
                    {"name": "LATENT", "type": "LATENT", "links": [200 + i], "slot_index": 0}
                ],
                "properties": {"Node name for S&R": f"Node{i}", "cnr_id": "comfy-core"},
                "widgets_values": [156680208700286 + i, "randomize", 30, 7.0, "dpmpp_2m"],
            }
        )
    workflow = {
        "id": "9d3c7a52-1f7e-4b8e-9a51-5c2b6d8e0f13",
        "revision": 0,
        "last_node_id": 42,
        "last_link_id": 240,
        "nodes": nodes,
        "links": [[100 + i, i + 3, 0, i + 4, 0, "MODEL"] for i in range(44)],
        "groups": [],
        "config": {},
        "extra": {"ds": {"scale": 0.8264, "offset": [412.5, 98.75]}, "frontendVersion": "1.18.9"},
        "version": 0.4,
    }
    return {"prompt": json.dumps(prompt), "workflow": json.dumps(workflow)}


def median_ms(fn: Callable[[], Any], runs: int) -> tuple[float, float, Any]:
    times, result = benchlib.timings(fn, runs, warmup=1)
    return statistics.median(times) * 1e3, min(times) * 1e3, result


def main(argv: list[str] | None = None) -> int:
    parser = benchlib.parser(__doc__)
    parser.add_argument("--runs", type=int, default=10, help="timed runs per row (default 10)")
    args = parser.parse_args(argv)
    runs = max(1, args.runs)

    pixels = make_image()
    image: Any = torch.from_numpy(pixels) if torch is not None else pixels
    text = comfy_text()
    noise = np.random.default_rng(42).standard_normal((1, 4, 128, 128), dtype=np.float32)
    metadata = {
        "prompt": "a majestic red fox standing in a snowy birch forest at golden hour",
        "comfyui_prompt": json.loads(text["prompt"]),
        "workflow": json.loads(text["workflow"]),
        "model_name": "sd_xl_base_1.0",
        "generation_settings": {"seed": 156680208700286, "steps": 30, "cfg_scale": 7.0},
    }

    print(
        f"# encode_png vs ComfyUI SaveImage: 1024x1024x3 float32 "
        f"({'torch tensor' if torch is not None else 'numpy array'}), "
        f"text chunks {sum(len(v) for v in text.values()) / 1000:.1f} KB, median of {runs} runs\n"
    )
    print(
        f"Python {platform.python_version()}, numpy {np.__version__}, Pillow {PIL.__version__}, "
        f"torch {torch.__version__ if torch is not None else '-'}, raiiaf_rs "
        f"{raiiaf_rs.__version__}; {os.cpu_count()} CPUs ({platform.machine()}), "
        f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}\n"
    )

    with tempfile.TemporaryDirectory(prefix="bench_png_") as tmp:
        out = Path(tmp)
        counter = iter(range(10**9))

        def save_image() -> int:
            # ComfyUI nodes.py SaveImage.save_images, for one image of the batch.
            i = 255.0 * image.cpu().numpy() if torch is not None else 255.0 * image
            img = Image.fromarray(np.clip(i, 0, 255).astype(np.uint8))
            meta = PngInfo()
            for key, value in text.items():
                meta.add_text(key, value)
            path = out / f"ComfyUI_{next(counter):05}_.png"
            img.save(path, pnginfo=meta, compress_level=4)
            return path.stat().st_size

        def encode() -> bytes:
            return raiiaf_rs.encode_png(image, text)

        def node() -> tuple[int, int]:
            stem = out / f"raiiaf_{next(counter):05}_"
            png = raiiaf_rs.encode_png(image, text)
            stem.with_suffix(".png").write_bytes(png)
            size = raiiaf_rs.write(
                stem.with_suffix(".raiiaf"),
                {"initial_noise": noise},
                image=png,
                metadata=metadata,
            )
            return len(png), size

        a_ms, a_min, a_bytes = median_ms(save_image, runs)
        b_ms, b_min, b_png = median_ms(encode, runs)
        c_ms, c_min, (c_png, c_raiiaf) = median_ms(node, runs)

    # Same pixels and text as SaveImage's file.
    with Image.open(io.BytesIO(b_png)) as im:
        assert im.text == text
        expected = np.clip(255.0 * pixels, 0, 255).astype(np.uint8)
        assert np.array_equal(np.asarray(im), expected)

    rows = [
        ["(a) SaveImage: numpy + Pillow level 4, to file", f"{a_ms:.1f}", f"{a_min:.1f}",
         f"{a_bytes:,}", "1.00x", "1.000"],
        ["(b) raiiaf_rs.encode_png, in memory", f"{b_ms:.1f}", f"{b_min:.1f}", f"{len(b_png):,}",
         f"{a_ms / b_ms:.1f}x faster", f"{len(b_png) / a_bytes:.3f}"],
        ["(c) encode_png + .png file + raiiaf_rs.write .raiiaf", f"{c_ms:.1f}", f"{c_min:.1f}",
         f"{c_png:,} + {c_raiiaf:,}", f"{a_ms / c_ms:.1f}x faster", f"{c_png / a_bytes:.3f}"],
    ]  # fmt: skip
    headers = ["path", "median ms", "min ms", "bytes", "time vs (a)", "size vs (a)"]
    print(benchlib.md_table(headers, rows, "lrrrrr"))
    verdict = "met" if c_ms < a_ms else "NOT met"
    print(f"\nTarget (c) < (a): {verdict} ({c_ms:.1f} ms vs {a_ms:.1f} ms).\n")

    # Compression levels alone, on the already converted bytes, in memory.
    u8 = np.clip(255.0 * pixels, 0, 255).astype(np.uint8)
    rows = []
    for level in (1, 4, 6):

        def pillow(level: int = level) -> int:
            buf = io.BytesIO()
            Image.fromarray(u8).save(buf, format="PNG", compress_level=level)
            return len(buf.getvalue())

        ms, _, size = median_ms(pillow, runs)
        rows.append((f"Pillow compress_level={level}", ms, size))
    for name in ("fast", "balanced", "high"):
        ms, _, png = median_ms(lambda name=name: raiiaf_rs.encode_png(u8, level=name), runs)
        rows.append((f'encode_png level="{name}"', ms, len(png)))
    ref = rows[1][2]
    print(
        benchlib.md_table(
            ["encoder (uint8 input, in memory)", "median ms", "bytes", "size vs Pillow 4"],
            [[name, f"{ms:.1f}", f"{size:,}", f"{size / ref:.3f}"] for name, ms, size in rows],
            "lrrr",
        )
    )
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
