"""The node pack inside a real ComfyUI (0.3.75, or 0.33.0 with `make comfyui-latest-test`;
tiny random SD1.5 model, CPU):
capture, save, load and regenerate pixel-identical images; bad input gives
errors and the server keeps running."""

from __future__ import annotations

import hashlib
import io
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import raiiaf_rs
import torch
from catalog_check import assert_row_matches, rows_by_path
from PIL import Image

from .harness import comfyui_version

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "workflows"))
import graphs

STEPS = 4
SIZE = 64


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def run(comfy, nodes) -> dict:
    return comfy.wait(comfy.queue(graphs.to_api(nodes)), timeout=300)


def output(comfy, name: str) -> Path:
    return Path(comfy.base_dir) / "output" / name


def save(comfy, prefix, **kw) -> dict:
    nodes = graphs.save_ksampler(
        ckpt=comfy.ckpt, steps=STEPS, width=SIZE, height=SIZE, prefix=prefix, **kw
    )
    return run(comfy, nodes)


def regenerate(comfy, prefix, nodes) -> bytes:
    run(comfy, nodes)
    return output(comfy, f"{prefix}_00001_.png").read_bytes()


def test_pack_is_loaded(comfy):
    info = comfy.object_info()
    for node in ("RaiiafSaveImage", "RaiiafLoad", "RaiiafReplayNoise", "RaiiafCaptureNoise"):
        assert node in info, node
    assert "IMPORT FAILED" not in comfy.log_text()


def test_save_stores_the_exact_noise(comfy, comfy_sample):
    save(comfy, "exact", seed=123)
    png = output(comfy, "exact_00001_.png").read_bytes()
    art = raiiaf_rs.read(output(comfy, "exact_00001_.raiiaf"))
    # The stored noise is ComfyUI's own prepare_noise for that latent and seed, bit for bit.
    want = comfy_sample.prepare_noise(torch.zeros(1, 4, SIZE // 8, SIZE // 8), 123)
    assert art.latents["initial_noise"].tobytes() == want.numpy().tobytes()
    assert art.image == png
    meta = art.metadata
    assert meta["generation_settings"] == {
        "seed": 123,
        "steps": STEPS,
        "sampler": "euler",
        "cfg_scale": 7.0,
        "scheduler": "normal",
    }
    assert meta["prompt"] == graphs.POSITIVE and meta["negative_prompt"] == graphs.NEGATIVE
    assert meta["model_name"] == comfy.ckpt
    assert meta["models"][0]["sha256"] == raiiaf_rs.fingerprint(comfy.ckpt_path).sha256
    assert len(meta["sigmas"]) == STEPS + 1
    version = comfyui_version()  # of the tree under test
    assert meta["comfyui"]["version"] == version
    assert meta["comfyui"]["prompt"]["9"]["class_type"] == "RaiiafSaveImage"
    comps = {c["component_id"]: c["cononical_str"] for c in art.environment["components"]}
    assert comps["host"] == f"name=host;app=ComfyUI;version={version}"
    assert comps["noise_device"] == "name=noise_device;device=cpu"
    # The PNG carries SaveImage's prompt text chunk (dragging it into ComfyUI loads the graph).
    text = Image.open(io.BytesIO(png)).text
    assert json.loads(text["prompt"])["3"]["class_type"] == "KSampler"


def test_regenerate_with_ksampler_and_another_seed(comfy):
    save(comfy, "ks", seed=11)
    nodes = graphs.reload_ksampler(
        file="ks_00001_.raiiaf [output]", ckpt=comfy.ckpt, prefix="ks_re"
    )
    api = graphs.to_api(nodes)
    api["3"]["inputs"]["seed"] = 987654  # not the stored seed: the noise must come from the file
    comfy.wait(comfy.queue(api), timeout=300)
    original = output(comfy, "ks_00001_.png").read_bytes()
    again = output(comfy, "ks_re_00001_.png").read_bytes()
    assert np.array_equal(pixels(original), pixels(again))
    # And without the replay patch, seed 987654 gives another image.
    api["3"]["inputs"]["model"] = ["4", 0]
    api["9"]["inputs"]["filename_prefix"] = "ks_plain"
    comfy.wait(comfy.queue(api), timeout=300)
    plain = output(comfy, "ks_plain_00001_.png").read_bytes()
    assert not np.array_equal(pixels(original), pixels(plain))


def test_regenerate_ancestral_with_the_stored_seed(comfy):
    save(comfy, "anc", seed=5, sampler="euler_ancestral")
    nodes = graphs.reload_ksampler(
        file="anc_00001_.raiiaf [output]", ckpt=comfy.ckpt, prefix="anc_re"
    )
    again = regenerate(comfy, "anc_re", nodes)
    original = output(comfy, "anc_00001_.png").read_bytes()
    assert np.array_equal(pixels(original), pixels(again))


def test_regenerate_with_sampler_custom_advanced(comfy):
    nodes = graphs.save_custom_advanced(
        ckpt=comfy.ckpt, seed=77, steps=STEPS, width=SIZE, height=SIZE, prefix="sca"
    )
    run(comfy, nodes)
    art = raiiaf_rs.read(output(comfy, "sca_00001_.raiiaf"))
    assert art.metadata["generation_settings"]["seed"] == 77
    nodes = graphs.reload_custom_advanced(
        file="sca_00001_.raiiaf [output]", ckpt=comfy.ckpt, steps=STEPS, prefix="sca_re"
    )
    again = regenerate(comfy, "sca_re", nodes)
    assert np.array_equal(pixels(output(comfy, "sca_00001_.png").read_bytes()), pixels(again))


def test_batch_of_two_each_regenerated_alone(comfy, comfy_sample):
    """Each file holds its own image's slice of the batch noise, bit for bit, and
    regenerating an image alone reproduces it. Exactly, where the model is
    batch-invariant; on CPU, torch's kernels sum a batch of 2 in another order
    than a batch of 1 (plain ComfyUI shows the same 1/255 differences between
    the first image of a batch and the same seed alone), so allow that much."""
    save(comfy, "batch", seed=3, batch=2)
    batch_noise = comfy_sample.prepare_noise(torch.zeros(2, 4, SIZE // 8, SIZE // 8), 3)
    for index in (1, 2):
        art = raiiaf_rs.read(output(comfy, f"batch_0000{index}_.raiiaf"))
        want = batch_noise[index - 1 : index].numpy()
        assert art.latents["initial_noise"].tobytes() == want.tobytes()
        assert art.metadata["batch_index"] == index - 1
        nodes = graphs.reload_ksampler(
            file=f"batch_0000{index}_.raiiaf [output]", ckpt=comfy.ckpt, prefix=f"batch_re{index}"
        )
        again = pixels(regenerate(comfy, f"batch_re{index}", nodes))
        original = pixels(output(comfy, f"batch_0000{index}_.png").read_bytes())
        diff = np.abs(original.astype(int) - again.astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 0.01, f"image {index}: {diff.max()}"
        # Regenerating alone is itself exact: a second run gives the same pixels.
        nodes = graphs.reload_ksampler(
            file=f"batch_0000{index}_.raiiaf [output]", ckpt=comfy.ckpt, prefix=f"batch_rr{index}"
        )
        assert np.array_equal(pixels(regenerate(comfy, f"batch_rr{index}", nodes)), again)


def test_bad_input_gives_errors_and_the_server_survives(comfy):
    save(comfy, "bad", seed=1)
    # Shape mismatch: the stored 64x64 noise fed to a 128x128 latent.
    nodes = graphs.reload_custom_advanced(
        file="bad_00001_.raiiaf [output]", ckpt=comfy.ckpt, steps=STEPS, prefix="bad_re"
    )
    api = graphs.to_api(nodes)
    api["5"] = {
        "class_type": "EmptyLatentImage",
        "inputs": {"width": 128, "height": 128, "batch_size": 1},
    }
    api["15"]["inputs"]["latent_image"] = ["5", 0]
    with pytest.raises(Exception, match=r"stored noise has shape \[1, 4, 8, 8\]"):
        comfy.wait(comfy.queue(api), timeout=300)

    # A corrupt file in the input directory.
    inputs = Path(comfy.base_dir) / "input"
    inputs.mkdir(exist_ok=True)
    data = bytearray(output(comfy, "bad_00001_.raiiaf").read_bytes())
    data[100] ^= 0xFF
    (inputs / "corrupt.raiiaf").write_bytes(bytes(data))
    (inputs / "junk.raiiaf").write_bytes(b"not a raiiaf file at all")
    for name, message in (
        ("corrupt.raiiaf", "altered or damaged"),
        ("junk.raiiaf", "not a readable"),
    ):
        api = graphs.to_api(graphs.reload_custom_advanced(file=name, ckpt=comfy.ckpt, steps=STEPS))
        with pytest.raises(Exception, match=message):
            comfy.wait(comfy.queue(api), timeout=300)

    # Paths outside the input/output directories are refused at validation.
    secret = Path(comfy.base_dir) / "secret.raiiaf"
    secret.write_bytes(output(comfy, "bad_00001_.raiiaf").read_bytes())
    (inputs / "link.raiiaf").symlink_to(secret)
    for name in ("../secret.raiiaf", str(secret), "..%2Fsecret.raiiaf", "link.raiiaf"):
        api = graphs.to_api(graphs.reload_custom_advanced(file=name, ckpt=comfy.ckpt, steps=STEPS))
        with pytest.raises(Exception, match=r"input or output director|outside|not a file"):
            comfy.queue(api)
    assert comfy.alive()
    assert "RaiiafLoad" in comfy.object_info()


def test_template_browser_lists_the_example_workflows(comfy):
    templates = comfy.get_json("/workflow_templates")
    assert sorted(templates["raiiaf-rs"]) == sorted(graphs.WORKFLOWS)


def test_global_capture_can_be_switched_off(tmp_path_factory):
    """RAIIAF_CAPTURE=0: no global hook; the save node still writes the PNG and a
    .raiiaf without noise, saying which pass is missing and why; the explicit capture
    node brings it back."""
    from .harness import ComfyServer

    with ComfyServer(tmp_path_factory.mktemp("nohook"), env={"RAIIAF_CAPTURE": "0"}) as server:
        nodes = graphs.save_ksampler(
            ckpt=server.ckpt, steps=2, width=SIZE, height=SIZE, prefix="off"
        )
        server.run(graphs.to_api(nodes), timeout=300)
        art = raiiaf_rs.read(Path(server.base_dir) / "output" / "off_00001_.raiiaf")
        assert art.latents == {}
        warning = art.metadata["warning"]
        assert "initial_noise (node 3, KSampler) is missing" in warning, warning
        assert "RAIIAF_CAPTURE=0" in warning
        api = graphs.to_api(
            graphs.save_ksampler(ckpt=server.ckpt, steps=2, width=SIZE, height=SIZE, prefix="on")
        )
        api["20"] = {"class_type": "RaiiafCaptureNoise", "inputs": {"model": ["4", 0]}}
        api["3"]["inputs"]["model"] = ["20", 0]
        server.run(api, timeout=300)
        art = raiiaf_rs.read(Path(server.base_dir) / "output" / "on_00001_.raiiaf")
        assert art.latents["initial_noise"].shape == (1, 4, SIZE // 8, SIZE // 8)
        assert "capturing the initial noise" not in server.log_text()


def test_metadata_has_the_shared_keys_with_loras_and_size(comfy):
    """The save node writes the host layer's keys: LoRAs of the LoRA loaders in the
    graph (both kinds), the image's size and file, the host."""
    folder = Path(comfy.base_dir) / "models" / "loras"
    folder.mkdir(parents=True, exist_ok=True)
    # A LoRA with no weights: loads (patching nothing), hashes like any file.
    header = b'{"__metadata__":{"what":"empty test lora"}}'
    header += b" " * (-len(header) % 8)
    lora = folder / "tiny-lora.safetensors"
    lora.write_bytes(len(header).to_bytes(8, "little") + header)
    prompt = graphs.to_api(
        graphs.save_ksampler(ckpt=comfy.ckpt, steps=STEPS, width=SIZE, height=SIZE, prefix="lo")
    )
    prompt["10"] = {
        "class_type": "LoraLoader",
        "inputs": {
            "model": ["4", 0],
            "clip": ["4", 1],
            "lora_name": lora.name,
            "strength_model": 0.5,
            "strength_clip": 0.25,
        },
    }
    prompt["11"] = {
        "class_type": "LoraLoaderModelOnly",
        "inputs": {"model": ["10", 0], "lora_name": lora.name, "strength_model": 0.75},
    }
    prompt["3"]["inputs"]["model"] = ["11", 0]
    for nid in ("6", "7"):
        prompt[nid]["inputs"]["clip"] = ["10", 1]
    comfy.wait(comfy.queue(prompt), timeout=300)
    png = output(comfy, "lo_00001_.png").read_bytes()
    meta = raiiaf_rs.read(output(comfy, "lo_00001_.raiiaf")).metadata
    sha = raiiaf_rs.fingerprint(lora).sha256
    assert meta["loras"] == [
        {"name": lora.name, "sha256": sha, "strength_model": 0.5, "strength_clip": 0.25},
        {"name": lora.name, "sha256": sha, "strength_model": 0.75, "strength_clip": None},
    ]
    assert (meta["width"], meta["height"]) == (SIZE, SIZE)
    digest = hashlib.sha256(png).hexdigest()
    assert meta["image_file"] == {"name": "lo_00001_.png", "sha256": digest}
    assert meta["host"] == {"app": "ComfyUI", "version": comfyui_version()}
    assert (meta["batch_index"], meta["batch_size"], meta["denoise"]) == (0, 1, 1.0)
    assert len(meta["batch_id"]) == 32
    roles = {m["role"]: m for m in meta["models"]}
    assert set(roles) == {"checkpoint", "lora"}
    assert roles["checkpoint"]["name"] == comfy.ckpt == meta["model_name"]
    assert roles["lora"]["sha256"] == sha and roles["lora"]["short_hash"] == sha[:10]
    # The catalog row of this file says what the file says (checked by code independent of
    # the Rust row builder), with the host layer's keys in their columns.
    sidecar = output(comfy, "lo_00001_.raiiaf")
    row = rows_by_path(pa.table(raiiaf_rs.catalog(sidecar)))[str(sidecar.absolute())]
    assert_row_matches(row, sidecar)
    assert (row["host_app"], row["model_name"], row["width"]) == ("ComfyUI", comfy.ckpt, SIZE)
    assert [lo["strength_model"] for lo in row["loras"]] == [0.5, 0.75]
    assert row["model_sha256"] == roles["checkpoint"]["sha256"]


def test_a_sidecar_that_cannot_be_written_leaves_the_png_saved(comfy):
    """A failed .raiiaf never breaks the save: the PNG is written as SaveImage would,
    the node succeeds and says why the sidecar is missing (without server paths). Here
    the UI workflow holds a NaN, which JSON metadata cannot (the PNG's text chunk can)."""
    api = graphs.to_api(
        graphs.save_ksampler(ckpt=comfy.ckpt, steps=2, width=SIZE, height=SIZE, prefix="nan")
    )
    workflow = {"nodes": [], "extra": {"ds": {"scale": float("nan")}}}
    entry = comfy.wait(comfy.queue(api, {"extra_pnginfo": {"workflow": workflow}}), timeout=300)
    assert output(comfy, "nan_00001_.png").is_file()
    assert not output(comfy, "nan_00001_.raiiaf").exists()
    ui = entry["outputs"]["9"]
    assert ui["raiiaf"] == []
    (warning,) = ui["raiiaf_warning"]
    assert warning.startswith("nan_00001_.png was saved without its .raiiaf: ")
    assert "JSON" in warning and str(comfy.base_dir) not in warning
    # The next save is not held up by it.
    save(comfy, "nan", seed=3)
    assert output(comfy, "nan_00002_.raiiaf").is_file()
