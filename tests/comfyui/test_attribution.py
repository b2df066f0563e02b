"""Attribution in graphs nobody edited for us, on a real ComfyUI (tiny SD1.5, CPU):

1. a sampler re-created under a new id (re-added, pasted, wrapped into a subgraph:
   ``40:11``) and served from ComfyUI's cache still gets the noise of the run that made
   the cached output; a pass truly missing gives its true reason;
2. a prompt built by string nodes is the text the encoder really encoded, and the
   shipped reload workflow regenerates the image from it; a prompt that is not one
   known text is stored as unknown, never as '';
3. an image picked out of a batch after the sampler (LatentFromBatch) holds its own
   row of the batch's noise, and regenerates alone.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import raiiaf_rs
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "workflows"))
import graphs

SIZE = 64
STEPS = 3


def base(ckpt: str, positive="a red cube", batch: int = 1) -> dict:
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": positive, "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["1", 1]}},
        "4": {
            "class_type": "EmptyLatentImage",
            "inputs": {"width": SIZE, "height": SIZE, "batch_size": batch},
        },
    }


def ksampler(seed: int, latent=("4", 0), positive=("2", 0)) -> dict:
    return {
        "class_type": "KSampler",
        "inputs": {
            "model": ["1", 0],
            "positive": list(positive),
            "negative": ["3", 0],
            "latent_image": list(latent),
            "seed": seed,
            "steps": STEPS,
            "cfg": 7.0,
            "sampler_name": "euler",
            "scheduler": "normal",
            "denoise": 1.0,
        },
    }


def txt2img(ckpt, seed, prefix, sampler_id="21", raiiaf=True) -> dict:
    g = base(ckpt)
    g[sampler_id] = ksampler(seed)
    g["6"] = {"class_type": "VAEDecode", "inputs": {"samples": [sampler_id, 0], "vae": ["1", 2]}}
    inputs = {"images": ["6", 0], "filename_prefix": prefix}
    if raiiaf:
        inputs.update(codec="raw", save_final_latent=False)
    g["7"] = {"class_type": "RaiiafSaveImage" if raiiaf else "SaveImage", "inputs": inputs}
    return g


def run(comfy, g) -> dict:
    return comfy.wait(comfy.queue(g), timeout=300)


def out(comfy, name: str) -> Path:
    return Path(comfy.base_dir) / "output" / name


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(path.read_bytes())).convert("RGB"))


def reload(comfy, file: str, prefix: str) -> np.ndarray:
    """The shipped reload workflow (loader -> prompts, settings, replay -> KSampler)."""
    run(comfy, graphs.to_api(graphs.reload_ksampler(file=file, ckpt=comfy.ckpt, prefix=prefix)))
    return pixels(out(comfy, f"{prefix}_00001_.png"))


# --- 1. re-created samplers, cached -----------------------------------------------------
def test_recreated_sampler_served_from_cache_keeps_its_noise(comfy, comfy_sample):
    run(comfy, txt2img(comfy.ckpt, 7101, "recreate_a", sampler_id="21"))
    first = raiiaf_rs.read(out(comfy, "recreate_a_00001_.raiiaf"))
    want = comfy_sample.prepare_noise(torch.zeros(1, 4, SIZE // 8, SIZE // 8), 7101).numpy()
    assert first.latents["initial_noise"].tobytes() == want.tobytes()
    # The same sampler, re-added (a new id), then wrapped into a subgraph (40:11):
    # ComfyUI serves it from its cache both times (same inputs, the id is no part of its
    # cache key), so no capture is made in these runs.
    for new_id, prefix in (("33", "recreate_b"), ("40:11", "recreate_c")):
        entry = run(comfy, txt2img(comfy.ckpt, 7101, prefix, sampler_id=new_id))
        cached = [m[1] for m in entry["status"]["messages"] if m[0] == "execution_cached"]
        assert new_id in cached[0]["nodes"], cached  # really served from the cache
        art = raiiaf_rs.read(out(comfy, f"{prefix}_00001_.raiiaf"))
        meta = art.metadata
        assert "missing_passes" not in meta and "warning" not in meta, meta.get("warning")
        assert art.latents["initial_noise"].tobytes() == want.tobytes()
        (rec,) = meta["captures"]
        assert rec["node_id"] == new_id and rec["cached"] is True and rec["seed"] == 7101
        assert rec["settings"]["steps"] == STEPS  # this graph's node, read by its new id
        assert np.array_equal(
            pixels(out(comfy, f"{prefix}_00001_.png")), pixels(out(comfy, "recreate_a_00001_.png"))
        )
    # And the file regenerates its image, pixel for pixel.
    again = reload(comfy, "recreate_c_00001_.raiiaf [output]", "recreate_re")
    assert np.array_equal(again, pixels(out(comfy, "recreate_a_00001_.png")))


def test_missing_pass_gives_its_true_reason(comfy):
    """A sampler first run under core SaveImage (no capture kept), then served from the
    cache to a raiiaf save: missing, because its run had no raiiaf save node, and the
    file says that, not the byte bound or a restart."""
    run(comfy, txt2img(comfy.ckpt, 7202, "why_plain", raiiaf=False))
    run(comfy, txt2img(comfy.ckpt, 7202, "why_raiiaf", sampler_id="22"))
    meta = raiiaf_rs.read(out(comfy, "why_raiiaf_00001_.raiiaf")).metadata
    (missing,) = meta["missing_passes"]
    assert missing["node_id"] == "22"
    reason = missing["reason"]
    assert "in a prompt without a raiiaf save node" in reason, reason
    assert "RAIIAF_CAPTURE_MAX_MB" not in reason and "before ComfyUI started" not in reason
    (gone,) = meta["passes"]  # the pass schema lists it, not exact, with the same reason
    assert gone["noise"] is None and not gone["exact"] and gone["source"]["node_id"] == "22"
    assert reason in gone["why_not_exact"][0]


# --- 2. prompts and settings as they ran ------------------------------------------------
def test_prompt_built_by_string_nodes_is_recorded_and_regenerates(comfy):
    g = txt2img(comfy.ckpt, 7303, "strings")
    g["30"] = {
        "class_type": "StringConcatenate",
        "inputs": {"string_a": "a red cube", "string_b": "on a wooden table", "delimiter": ", "},
    }
    g["2"]["inputs"]["text"] = ["30", 0]
    # The steps come from another node too: a linked setting is the value it ran with.
    g["31"] = {"class_type": "PrimitiveInt", "inputs": {"value": STEPS}}
    g["21"]["inputs"]["steps"] = ["31", 0]
    run(comfy, g)
    meta = raiiaf_rs.read(out(comfy, "strings_00001_.raiiaf")).metadata
    assert meta["prompt"] == "a red cube, on a wooden table"
    assert meta["negative_prompt"] == "blurry"
    assert meta["generation_settings"]["steps"] == STEPS
    assert "unknown_settings" not in meta, meta.get("unknown_settings")
    again = reload(comfy, "strings_00001_.raiiaf [output]", "strings_re")
    assert np.array_equal(again, pixels(out(comfy, "strings_00001_.png")))


def test_a_prompt_that_is_not_one_text_is_unknown_not_empty(comfy):
    """Two encoders combined into the positive: no single prompt text reproduces it.
    The file lists the prompt as unknown (and why) and the loader's summary says so."""
    g = txt2img(comfy.ckpt, 7404, "combined")
    g["32"] = {"class_type": "CLIPTextEncode", "inputs": {"text": "a blue ball", "clip": ["1", 1]}}
    g["33"] = {
        "class_type": "ConditioningCombine",
        "inputs": {"conditioning_1": ["2", 0], "conditioning_2": ["32", 0]},
    }
    g["21"]["inputs"]["positive"] = ["33", 0]
    run(comfy, g)
    meta = raiiaf_rs.read(out(comfy, "combined_00001_.raiiaf")).metadata
    why = meta["unknown_settings"]["positive_prompt"]
    assert "2 text encoders" in why and "2, 32" in why, why
    assert meta["prompt"] == ""  # the format requires the key; unknown_settings says why
    assert meta["negative_prompt"] == "blurry"
    load = {
        "1": {"class_type": "RaiiafLoad", "inputs": {"file": "combined_00001_.raiiaf [output]"}},
        "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 11]}},
    }
    entry = run(comfy, load)
    summary = "".join(entry["outputs"]["2"]["text"])
    assert "NOT RECORDED" in summary and "positive_prompt" in summary, summary


# --- 3. batch pickers after the sampler ---------------------------------------------------
def test_latent_from_batch_holds_that_images_row(comfy, comfy_sample):
    g = base(comfy.ckpt, batch=4)
    g["21"] = ksampler(7505)
    g["22"] = {
        "class_type": "LatentFromBatch",
        "inputs": {"samples": ["21", 0], "batch_index": 2, "length": 1},
    }
    g["6"] = {"class_type": "VAEDecode", "inputs": {"samples": ["22", 0], "vae": ["1", 2]}}
    g["7"] = {
        "class_type": "RaiiafSaveImage",
        "inputs": {
            "images": ["6", 0],
            "filename_prefix": "picked",
            "codec": "raw",
            "save_final_latent": False,
        },
    }
    run(comfy, g)
    art = raiiaf_rs.read(out(comfy, "picked_00001_.raiiaf"))
    batch = comfy_sample.prepare_noise(torch.zeros(4, 4, SIZE // 8, SIZE // 8), 7505)
    assert art.latents["initial_noise"].tobytes() == batch[2:3].numpy().tobytes()
    assert (art.metadata["batch_index"], art.metadata["batch_size"]) == (2, 4)
    assert "warning" not in art.metadata
    # Regenerated alone: within the model's batch variance (README), as any batch image.
    again = reload(comfy, "picked_00001_.raiiaf [output]", "picked_re")
    diff = np.abs(pixels(out(comfy, "picked_00001_.png")).astype(int) - again.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01, diff.max()


def test_batch_changed_between_sampler_and_save_says_what_it_holds(comfy):
    """A batch changed by a node that is no known picker: the file holds the whole
    batch's noise and says so (never a silently wrong slice)."""
    g = base(comfy.ckpt, batch=2)
    g["21"] = ksampler(7606)
    g["6"] = {"class_type": "VAEDecode", "inputs": {"samples": ["21", 0], "vae": ["1", 2]}}
    g["23"] = {"class_type": "ImageBatch", "inputs": {"image1": ["6", 0], "image2": ["6", 0]}}
    g["7"] = {
        "class_type": "RaiiafSaveImage",
        "inputs": {
            "images": ["23", 0],
            "filename_prefix": "rebatched",
            "codec": "raw",
            "save_final_latent": False,
        },
    }
    run(comfy, g)
    meta = raiiaf_rs.read(out(comfy, "rebatched_00001_.raiiaf")).metadata
    assert "whole batch of 2" in meta["warning"], meta["warning"]
    assert len(meta["whole_batch"]) == 1
    whole = [p for p in meta["passes"] if not p["exact"]]
    assert [p["why_not_exact"] for p in whole] == [meta["whole_batch"]]
