"""Plain ComfyUI (0.3.75 or 0.33.0; no node-pack nodes involved): the server runs and the core
txt2img graph (CheckpointLoaderSimple -> KSampler -> VAEDecode -> SaveImage) works."""

from __future__ import annotations

import io

from PIL import Image

from .harness import default_txt2img


def test_object_info_lists_ksampler(comfy):
    info = comfy.object_info()
    assert "KSampler" in info
    assert "euler" in info["KSampler"]["input"]["required"]["sampler_name"][0]


def test_txt2img_saves_a_64x64_png(comfy):
    entry = comfy.run(default_txt2img(comfy.ckpt, seed=1, steps=4, prefix="server_txt2img"))
    assert entry["status"]["status_str"] == "success"
    (image,) = entry["outputs"]["7"]["images"]
    assert image["type"] == "output" and image["filename"].startswith("server_txt2img")
    png = comfy.view(image["filename"], image["subfolder"], image["type"])
    assert png == (comfy.output_dir / image["subfolder"] / image["filename"]).read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    Image.open(io.BytesIO(png)).verify()  # chunk CRCs and structure
    with Image.open(io.BytesIO(png)) as img:
        img.load()  # decodes all pixel data
        assert img.format == "PNG" and img.size == (64, 64) and img.mode == "RGB"
