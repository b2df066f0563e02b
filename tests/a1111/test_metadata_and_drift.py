"""The extension through the shared host layer: the normalised metadata (size of the
saved image, LoRAs from the prompt and the infotext, models, host) and the replay's
warning when a file comes from an environment that can change pixels."""

from __future__ import annotations

import hashlib

import pyarrow as pa
import pytest
import raiiaf_rs
from catalog_check import assert_row_matches, rows_by_path
from raiiaf_rs import host

from .harness import pixels

BASE = {"steps": 5, "width": 64, "height": 64, "cfg_scale": 5.0, "sampler_name": "Euler"}


@pytest.mark.parametrize("mode", ["a1111-1.10", "forge"])
def test_normalised_metadata_of_a_hires_image_with_loras(make_webui, mode):
    webui = make_webui(mode)
    res = webui.txt2img(
        seed=21,
        prompt="a boat <lora:style:0.75> <lora:detail:0.5:1.25>",
        negative_prompt="fog",
        enable_hr=True,
        hr_resize_x=128,
        hr_resize_y=96,
        denoising_strength=0.5,
        hr_second_pass_steps=3,
        **BASE,
    )
    image = res.images[0]
    meta = raiiaf_rs.read(res.sidecar(image)).metadata
    # The saved image's size (hires, cropped), not the first pass's.
    assert (meta["width"], meta["height"]) == (128, 96)
    assert meta["loras"] == [
        {"name": "style", "sha256": None, "strength_model": 0.75, "strength_clip": 0.75},
        {"name": "detail", "sha256": None, "strength_model": 1.25, "strength_clip": 0.5},
    ]
    assert meta["models"][0]["role"] == "checkpoint"
    assert meta["models"][0]["name"] == meta["model_name"] == "tiny-sd"
    assert meta["models"][0]["sha256"] == meta["a1111"]["model"]["checkpoint"]["sha256"]
    webui_host = meta["a1111"]["webui"]
    assert meta["host"] == {"app": webui_host["app"], "version": webui_host["version"]}
    assert meta["host"]["app"] in ("AUTOMATIC1111", "Forge") and meta["host"]["version"]
    assert (meta["batch_index"], meta["batch_size"], meta["denoise"]) == (0, 1, 1.0)
    assert "batch_id" not in meta
    assert meta["negative_prompt"] == "fog"
    assert meta["image_file"] == {
        "name": image.name,
        "sha256": hashlib.sha256(image.read_bytes()).hexdigest(),
    }
    for key in host.NORMALISED_KEYS:
        assert key in meta or key == "batch_id", key
    # The catalog row says what the file says (catalog_check, independent of the Rust code).
    sidecar = res.sidecar(image)
    row = rows_by_path(pa.table(raiiaf_rs.catalog(sidecar)))[str(sidecar.absolute())]
    assert_row_matches(row, sidecar)
    assert (row["width"], row["height"], row["seed"], row["negative_prompt"]) == (
        128,
        96,
        21,
        "fog",
    )
    assert row["host_app"] == meta["host"]["app"] and row["model_name"] == "tiny-sd"


def test_lora_hashes_come_from_the_infotext():
    from lib_raiiaf import infotext

    params = infotext.parse(
        'a cat <lora:a b:0.5>\nSteps: 5, Lora hashes: "a b: 0123abcd, other: 99", Seed: 1'
    )["params"]
    assert infotext.loras("a cat <lora:a b:0.5> <lora:c:unet=0.2>", params) == [
        {
            "name": "a b",
            "sha256": None,
            "strength_model": 0.5,
            "strength_clip": 0.5,
            "short_hash": "0123abcd",
        },
        {"name": "c", "sha256": None, "strength_model": 0.2, "strength_clip": 1.0},
    ]
    assert infotext.loras("no tags", params) == []


def test_replay_from_another_environment_warns_and_still_replays(webui):
    first = webui.txt2img(seed=30, prompt="a house", outdir="a", **BASE)
    art = raiiaf_rs.read(first.sidecar(first.images[0]))
    # The same file as if made with another attention backend and more RAM.
    changed = {"attention": "name=attention;backend=xformers", "ram": "name=ram;total_gb=1.5"}
    env = raiiaf_rs.environment_document(
        (c["component_id"], changed.get(c["component_id"], c["cononical_str"]))
        for c in art.environment["components"]
    )
    other = webui.root / "a" / "other.raiiaf"
    raiiaf_rs.write(other, art.latents, art.image, art.metadata, environment=env)
    again = webui.txt2img(
        seed=1, prompt="a house", outdir="b", raiiaf={"replay_files": str(other)}, **BASE
    )
    assert (pixels(again.images[0]) == pixels(first.images[0])).all()
    (note,) = [w for w in again.p.raiiaf.warnings if "another environment" in w]
    assert "[CAN CHANGE PIXELS] attention: name=attention;backend=xformers" in note
    assert "ram" not in note  # harmless differences are not warned about
    assert note in again.processed.comments
    # The file as it was: no warning.
    plain = webui.txt2img(
        seed=1,
        prompt="a house",
        outdir="c",
        raiiaf={"replay_files": str(first.sidecar(first.images[0]))},
        **BASE,
    )
    assert not [w for w in plain.p.raiiaf.warnings if "environment" in w]
