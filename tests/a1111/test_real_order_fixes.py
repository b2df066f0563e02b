"""Defects the imitation hid until it followed A1111 1.10's order (issue 20): the sigma
values filled after ``before_process``, overrides through ``opts.set`` on a webui with
no ``config.json``, img2img's starting latent drawn by the VAE encoder, stops after the
noise was drawn, the generation's own settings, sidecars and the replay file paths."""

from __future__ import annotations

import os

import numpy as np
import pytest
import raiiaf_rs
import torch
from PIL import Image

from .harness import files_in, pixels

BASE = {"prompt": "a quay at night", "steps": 6, "width": 64, "height": 64, "cfg_scale": 5.0}
STOP = "Stop with a message"
PROCEED = "Proceed without replay"


def same(a, b) -> bool:
    return bool(np.array_equal(pixels(a), pixels(b)))


def _init_image() -> Image.Image:
    rng = np.random.default_rng(3)
    return Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), "RGB")


@pytest.mark.parametrize("sampler", ["Euler", "DDIM", "Euler a"])
def test_replay_without_stored_seeds_has_no_false_sigma_differences(webui, sampler):
    """Defect 1 / A: s_churn... are None at before_process in 1.10."""
    first = webui.txt2img(seed=40, sampler_name=sampler, outdir="a", **BASE)
    src = str(first.sidecar(first.images[0]))
    again = webui.txt2img(
        seed=40,
        sampler_name=sampler,
        outdir="b",
        raiiaf={"replay_files": src, "restore_seeds": False},
        **BASE,
    )
    assert same(first.images[0], again.images[0])
    meta = raiiaf_rs.read(again.sidecar(again.images[0])).metadata
    assert meta["replayed_from"]["settings_restored"] == {}


def test_a_sigma_setting_that_really_differs_is_still_reported(webui):
    webui.shared.opts.s_churn = 0.5
    first = webui.txt2img(seed=41, sampler_name="Euler", outdir="a", **BASE)
    del webui.shared.opts.data["s_churn"]
    src = str(first.sidecar(first.images[0]))
    from lib_raiiaf.replay import ReplayError

    with pytest.raises(ReplayError, match="s_churn"):
        webui.txt2img(
            seed=41,
            sampler_name="Euler",
            outdir="b",
            raiiaf={"replay_files": src, "restore_seeds": False},
            **BASE,
        )
    again = webui.txt2img(
        seed=1, sampler_name="Euler", outdir="c", raiiaf={"replay_files": src}, **BASE
    )
    assert same(first.images[0], again.images[0])


def _ensd_file(webui):
    data = webui.shared.opts.data
    data["eta_noise_seed_delta"] = 31337
    data["randn_source"] = "CPU"
    first = webui.txt2img(seed=42, sampler_name="Euler a", outdir="orig", **BASE)
    del data["eta_noise_seed_delta"], data["randn_source"]  # back to a fresh install
    return first, str(first.sidecar(first.images[0]))


@pytest.mark.parametrize("restore_afterwards", [True, False])
def test_replayed_settings_do_not_leak_into_later_generations(webui, restore_afterwards):
    """B: without config.json the webui only puts back keys already in opts.data."""
    plain = webui.txt2img(seed=42, sampler_name="Euler a", outdir="plain", **BASE)
    first, src = _ensd_file(webui)
    assert not same(first.images[0], plain.images[0])
    again = webui.txt2img(
        seed=1,
        sampler_name="Euler a",
        outdir="again",
        raiiaf={"replay_files": src},
        override_settings_restore_afterwards=restore_afterwards,
        **BASE,
    )
    assert same(first.images[0], again.images[0])
    data = webui.shared.opts.data
    assert "eta_noise_seed_delta" not in data and "randn_source" not in data
    later = webui.txt2img(seed=42, sampler_name="Euler a", outdir="later", **BASE)
    assert same(plain.images[0], later.images[0])


def test_a_callers_own_kept_override_stays(webui):
    _first, src = _ensd_file(webui)
    webui.txt2img(
        seed=1,
        sampler_name="Euler a",
        outdir="again",
        raiiaf={"replay_files": src},
        override_settings={"eta_noise_seed_delta": 7},
        override_settings_restore_afterwards=False,
        **BASE,
    )
    assert webui.shared.opts.data["eta_noise_seed_delta"] == 7
    assert "randn_source" not in webui.shared.opts.data


def test_settings_are_put_back_when_the_replay_stops_with_an_error(webui):
    _first, src = _ensd_file(webui)
    from lib_raiiaf.replay import ReplayError

    with pytest.raises(ReplayError, match="file"):  # 1 file for 2 images
        webui.txt2img(
            seed=1,
            sampler_name="Euler a",
            batch_size=2,
            outdir="x",
            raiiaf={"replay_files": src},
            **BASE,
        )
    data = webui.shared.opts.data
    assert "eta_noise_seed_delta" not in data and "randn_source" not in data


@pytest.mark.parametrize("mask", [False, True])
def test_img2img_replay_restores_the_encoders_random_starting_latent(webui, mask):
    """C: the VAE encoder samples from torch's global generator."""
    kw = dict(BASE, init_images=[_init_image()], denoising_strength=0.6, sampler_name="Euler")
    if mask:
        m = Image.new("L", (64, 64), 0)
        m.paste(255, (16, 16, 48, 48))
        kw["image_mask"] = m
    torch.manual_seed(1)
    first = webui.img2img(seed=7, outdir="a", **kw)
    art = raiiaf_rs.read(first.sidecar(first.images[0]))
    assert art.latents["init_latent"].shape == (1, 4, 8, 8)
    torch.manual_seed(2)
    plain = webui.img2img(seed=7, outdir="b", **kw)
    assert not same(first.images[0], plain.images[0])  # the draw matters
    torch.manual_seed(3)
    src = str(first.sidecar(first.images[0]))
    again = webui.img2img(seed=7, outdir="c", raiiaf={"replay_files": src}, **kw)
    assert same(first.images[0], again.images[0])


def test_hires_after_a_non_latent_upscaler_replays_one_image_of_a_batch(webui):
    kw = dict(
        BASE,
        enable_hr=True,
        hr_scale=2.0,
        hr_upscaler="Lanczos",
        denoising_strength=0.5,
        sampler_name="Euler",
    )
    torch.manual_seed(1)
    first = webui.txt2img(seed=8, batch_size=2, outdir="a", **kw)
    art = raiiaf_rs.read(first.sidecar(first.images[1]))
    assert art.latents["hires_start_latent"].shape == (1, 4, 16, 16)
    torch.manual_seed(5)
    src = str(first.sidecar(first.images[1]))
    again = webui.txt2img(seed=1, outdir="b", raiiaf={"replay_files": src}, **kw)
    assert same(first.images[1], again.images[0])


def test_a_stop_after_the_draw_raises_its_reason_instead_of_interrupting(webui):
    """4: the Hires fix button with a damaged file: no interrupted image without a reason."""
    from lib_raiiaf.replay import ReplayError

    gallery = Image.new("RGB", (64, 64), (90, 120, 60))
    kw = dict(
        BASE,
        enable_hr=True,
        hr_scale=2.0,
        denoising_strength=0.6,
        sampler_name="Euler",
        firstpass_image=gallery,
    )
    bad = webui.root / "bad.raiiaf"
    bad.write_bytes(b"not a raiiaf file")
    with pytest.raises(ReplayError, match="not a readable"):
        webui.txt2img(seed=3, outdir="a", raiiaf={"replay_files": str(bad)}, **kw)
    assert not webui.shared.state.interrupted
    assert files_in(webui.root / "a", ".png") == []


def test_generation_settings_are_restored_or_listed(webui):
    """2: prompt, steps, CFG, sampler... restored with stored settings on, listed off."""
    first = webui.txt2img(seed=9, sampler_name="Euler", outdir="a", **BASE)
    src = str(first.sidecar(first.images[0]))
    other = dict(BASE, prompt="a field of wheat", steps=5, cfg_scale=7.0)
    again = webui.txt2img(
        seed=1, sampler_name="Heun", outdir="b", raiiaf={"replay_files": src}, **other
    )
    assert same(first.images[0], again.images[0])
    restored = raiiaf_rs.read(again.sidecar(again.images[0])).metadata["replayed_from"]
    assert {"prompt", "steps", "CFG scale", "sampler"} <= set(restored["settings_restored"])
    from lib_raiiaf.replay import ReplayError

    with pytest.raises(ReplayError) as e:
        webui.txt2img(
            seed=9,
            sampler_name="Euler",
            outdir="c",
            raiiaf={"replay_files": src, "restore_seeds": False},
            **other,
        )
    assert "prompt: file 'a quay at night'" in str(e.value) and "steps" in str(e.value)
    res = webui.txt2img(
        seed=9,
        sampler_name="Euler",
        outdir="d",
        raiiaf={"replay_files": src, "restore_seeds": False, "on_mismatch": PROCEED},
        **other,
    )
    meta = raiiaf_rs.read(res.sidecar(res.images[0])).metadata
    assert "replayed_from" not in meta  # nothing was replayed
    assert any("prompt" in w for w in meta["warnings"])


def test_another_checkpoint_is_listed_and_stops(webui):
    first = webui.txt2img(seed=9, sampler_name="Euler", outdir="a", **BASE)
    src = str(first.sidecar(first.images[0]))
    webui.shared.sd_model.sd_model_hash = "fedcba9876"
    from lib_raiiaf.replay import ReplayError

    with pytest.raises(ReplayError, match="checkpoint hash: file '0123456789'"):
        webui.txt2img(
            seed=9, sampler_name="Euler", outdir="b", raiiaf={"replay_files": src}, **BASE
        )


def test_pixel_settings_are_recorded(webui):
    webui.shared.opts.emphasis = "No norm"
    webui.shared.opts.token_merging_ratio = 0.3
    res = webui.txt2img(seed=9, sampler_name="Euler", outdir="a", **BASE)
    opts = raiiaf_rs.read(res.sidecar(res.images[0])).metadata["a1111"]["opts"]
    assert opts["emphasis"] == "No norm" and opts["token_merging_ratio"] == 0.3


def test_no_images_saved_is_said(webui):
    """3: API save_images=false: no sidecar, and the response says why."""
    res = webui.txt2img(seed=9, sampler_name="Euler", outdir="a", do_not_save_samples=True, **BASE)
    assert files_in(res.outdir, ".raiiaf") == []
    assert "no .raiiaf was written" in res.processed.comments


def test_an_image_swapped_by_a_later_script_still_gets_its_sidecar(webui):
    runner = webui.tabs["txt2img"]
    inner = runner.postprocess_image_after_composite

    def swap(p, pp, *args, **kwargs):
        inner(p, pp, *args, **kwargs)
        pp.image = pp.image.copy()  # another extension's new image object

    runner.postprocess_image_after_composite = swap
    res = webui.txt2img(seed=9, sampler_name="Euler", batch_size=2, outdir="a", **BASE)
    assert len(res.images) == 2
    for k, image in enumerate(res.images):
        assert raiiaf_rs.read(res.sidecar(image)).metadata["a1111"]["image_index"] == k


def test_a1111_1_9_img2img_noise_is_stored_after_the_multiplier(make_webui):
    webui = make_webui("a1111-1.9")
    kw = dict(
        BASE,
        init_images=[_init_image()],
        denoising_strength=0.6,
        initial_noise_multiplier=0.5,
        sampler_name="Euler",
    )
    res = webui.img2img(seed=12, outdir="a", **kw)
    from modules import rng

    drawn = rng.ImageRNG((4, 8, 8), [12]).next() * 0.5
    art = raiiaf_rs.read(res.sidecar(res.images[0]))
    assert art.latents["initial_noise"].tobytes() == drawn.numpy().tobytes()


def test_paths_outside_the_output_folders_are_never_touched(webui, tmp_path, monkeypatch):
    """5: no existence probing: the same error whether the file exists, and no stat."""
    from lib_raiiaf import replay

    outside = tmp_path.parent / "elsewhere.raiiaf"
    outside.write_bytes(b"x")
    touched = []
    for name in ("isfile", "exists", "realpath"):
        real = getattr(os.path, name)
        monkeypatch.setattr(
            os.path, name, lambda p, *a, _r=real, **k: touched.append(p) or _r(p, *a, **k)
        )
    errors = []
    for path in (str(outside), str(tmp_path.parent / "missing.raiiaf")):
        with pytest.raises(replay.ReplayError) as e:
            replay.load_sources(path)
        errors.append(str(e.value).replace("elsewhere", "X").replace("missing", "X"))
    monkeypatch.undo()
    assert errors[0] == errors[1]
    assert not any("elsewhere" in str(t) or "missing" in str(t) for t in touched)


def test_apply_stored_settings_fills_the_prompts_and_hires_fields(webui):
    kw = dict(
        BASE,
        enable_hr=True,
        hr_scale=1.5,
        hr_second_pass_steps=3,
        denoising_strength=0.45,
        sampler_name="Euler",
        negative_prompt="fog",
    )
    res = webui.txt2img(seed=9, outdir="a", **kw)
    script = webui.script("txt2img")

    def walk(c):
        yield c
        for child in getattr(c, "children", []):
            yield from walk(child)

    button = next(
        c for c in walk(script.controls[0]) if getattr(c, "elem_id", "") == "txt2img_raiiaf_apply"
    )
    (event,) = button.events
    values = event["fn"](str(res.sidecar(res.images[0])))
    by_id = {o.elem_id: v for o, v in zip(event["outputs"], values)}
    assert by_id["txt2img_prompt"]["value"] == "a quay at night"
    assert by_id["txt2img_neg_prompt"]["value"] == "fog"
    assert by_id["txt2img_hr"]["value"] is True
    assert by_id["txt2img_hr_scale"]["value"] == 1.5
    assert by_id["txt2img_hires_steps"]["value"] == 3
    assert by_id["txt2img_denoising_strength"]["value"] == 0.45


def test_the_save_button_writes_a_sidecar_from_its_run(webui):
    """3 / 5: auto-save off, then the Save button (its p is a stand-in from the page)."""
    import io

    from modules import images

    webui.shared.opts.samples_save = False
    res = webui.txt2img(seed=21, sampler_name="Euler", batch_size=2, outdir="a", **BASE)
    assert res.images == [] and "Save button" in res.processed.comments
    page = type("MyObject", (), {})()
    page.infotexts = res.processed.infotexts
    page.index_of_first_image = 0
    buf = io.BytesIO()
    res.processed.images[1].save(buf, format="PNG")  # through the gallery
    gallery = Image.open(io.BytesIO(buf.getvalue()))
    out = webui.root / "saved"
    images.save_image(gallery, str(out), "", info=page.infotexts[1], p=page)
    (png,) = files_in(out, ".png")
    art = raiiaf_rs.read(png.with_suffix(".raiiaf"))
    from modules import rng

    assert (
        art.latents["initial_noise"].tobytes()
        == rng.ImageRNG((4, 8, 8), [22]).next().numpy().tobytes()
    )
    assert art.metadata["a1111"]["image_index"] == 1
