"""The catalog reads the PNGs the real ComfyUI writes (CATALOG.md, "Images from other tools"):
one run with ComfyUI's own SaveImage and the pack's save node side by side. The SaveImage
PNG's row takes its settings from the graph by the save node's rules, so it equals the
sidecar's row column for column; the pack's PNG and its .raiiaf are one row."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import raiiaf_rs
from catalog_check import rows_by_path

from .harness import default_txt2img

#: The columns both kinds of row fill from the same settings.
SHARED = (
    "prompt",
    "negative_prompt",
    "seed",
    "steps",
    "cfg",
    "sampler",
    "scheduler",
    "denoise",
    "model_name",
    "width",
    "height",
    "host_app",
)


def test_saveimage_pngs_are_indexed_by_the_save_nodes_rules(comfy):
    graph = default_txt2img(
        comfy.ckpt,
        seed=2**64 - 5,
        steps=2,
        scheduler="karras",
        cfg=6.5,
        prefix="catimg",
        positive="a cat, 猫 \U0001f431",
        negative="blurry",
    )
    graph["8"] = {
        "class_type": "RaiiafSaveImage",
        "inputs": {
            "images": ["6", 0],
            "filename_prefix": "catraiiaf",
            "codec": "raw",
            "save_final_latent": False,
        },
    }
    comfy.wait(comfy.queue(graph, {"extra_pnginfo": {"workflow": {"nodes": []}}}), timeout=300)
    out = Path(comfy.output_dir)
    (plain,) = sorted(out.glob("catimg_*.png"))
    (ours,) = sorted(out.glob("catraiiaf_*.png"))
    sidecar = ours.with_suffix(".raiiaf")

    # Named together, the pack's PNG is its sidecar's row; the SaveImage PNG has its own.
    rows = rows_by_path(pa.table(raiiaf_rs.catalog([plain, ours, sidecar])))
    assert sorted(rows) == sorted(str(p.absolute()) for p in (plain, sidecar))
    side, png = rows[str(sidecar.absolute())], rows[str(plain.absolute())]
    assert (side["source_kind"], side["image_path"]) == ("raiiaf", str(ours.absolute()))
    assert (png["source_kind"], png["image_path"], png["error"]) == (
        "png-comfyui",
        str(plain.absolute()),
        None,
    )
    assert png["prompt"] == "a cat, 猫 \U0001f431" and int(png["seed"]) == 2**64 - 5
    assert (png["steps"], png["scheduler"], png["width"]) == (2, "karras", 64)
    for col in SHARED:
        assert png[col] == side[col], f"{col}: png {png[col]!r}, sidecar {side[col]!r}"

    # The pack's PNG alone is read from its own chunks, to the same values.
    (alone,) = rows_by_path(pa.table(raiiaf_rs.catalog(ours))).values()
    assert alone["source_kind"] == "png-comfyui"
    assert all(alone[col] == side[col] for col in SHARED), alone
