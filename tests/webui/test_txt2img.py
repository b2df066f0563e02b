"""txt2img capture and replay in the real webuis: every sampler family, stored seeds on and
off, variation seeds, the noise settings through override_settings, hires fix. Each replay
runs with another seed than the file's and is compared pixel for pixel with the saved image."""

from __future__ import annotations

import pytest

from .checks import noise_of, same, saved_equals_returned, sidecars_of
from .harness import pixels

#: Sampler -> extra payload. DDIM with eta > 0 draws noise at every step, like the
#: ancestral and SDE samplers.
SAMPLERS = {
    "Euler": {},
    "Euler a": {},
    "DPM++ 2S a": {},
    "DPM++ SDE": {},
    "DPM++ 2M SDE": {},
    "DDIM": {"override_settings": {"eta_ddim": 0.7}},
}


def capture(webui, **payload):
    res = webui.txt2img(raiiaf={}, **payload)
    saved_equals_returned(res)
    return res, sidecars_of(res)


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_replay_with_the_stored_seeds(webui, sampler):
    orig, (side,) = capture(webui, seed=11, sampler_name=sampler, **SAMPLERS[sampler])
    assert noise_of(side).size == 4 * 8 * 8
    rep = webui.txt2img(raiiaf={"files": [str(side)]}, seed=99, sampler_name=sampler)
    same(rep.images[0], pixels(orig.pngs[0]), f"{sampler} replay")
    # The replay wrote its own file, beside its own image.
    sidecars_of(rep)


@pytest.mark.parametrize("sampler", ["Euler", "DDIM"])
def test_replay_with_the_stored_seeds_off(webui, sampler):
    """Failure A: deterministic samplers replay the stored noise with the user's own seed;
    the webui fills s_churn & co. only after before_process, so nothing may differ there."""
    orig, (side,) = capture(webui, seed=12, sampler_name=sampler)
    rep = webui.txt2img(
        raiiaf={"files": [str(side)], "restore": False}, seed=98, sampler_name=sampler
    )
    same(rep.images[0], pixels(orig.pngs[0]), f"{sampler} replay, stored seeds off")


def test_variation_seed(webui):
    orig, (side,) = capture(webui, seed=21, subseed=5, subseed_strength=0.4, sampler_name="Euler a")
    rep = webui.txt2img(raiiaf={"files": [str(side)]}, seed=3, sampler_name="Euler a")
    same(rep.images[0], pixels(orig.pngs[0]), "variation-seed replay")


#: override_settings that change the noise, each replayed without it (the file restores it).
NOISE_SETTINGS = {
    "ENSD": {"eta_noise_seed_delta": 31337},
    "randn_source CPU": {"randn_source": "CPU"},
    "randn_source NV": {"randn_source": "NV"},
    "SGM multiplier": {"sgm_noise_multiplier": True},
}


@pytest.mark.parametrize("name", list(NOISE_SETTINGS))
def test_noise_settings_restored(webui, name):
    settings = NOISE_SETTINGS[name]
    orig, (side,) = capture(webui, seed=31, sampler_name="Euler a", override_settings=settings)
    rep = webui.txt2img(raiiaf={"files": [str(side)]}, seed=4, sampler_name="Euler a")
    same(rep.images[0], pixels(orig.pngs[0]), f"replay of a file made with {settings}")


@pytest.mark.parametrize(
    "hires",
    [
        {"hr_upscaler": "Latent", "hr_scale": 2},
        {"hr_upscaler": "Lanczos", "hr_scale": 2},
        # Another aspect than the first pass: the webui crops (truncate_x/y).
        {"hr_upscaler": "Latent", "hr_resize_x": 128, "hr_resize_y": 96},
    ],
    ids=["latent", "lanczos", "latent-truncated"],
)
def test_hires_fix(webui, hires):
    payload = dict(
        enable_hr=True, hr_second_pass_steps=2, denoising_strength=0.6, sampler_name="Euler a"
    )
    payload.update(hires)
    orig, (side,) = capture(webui, seed=41, **payload)
    noise_of(side, "hires_noise")
    rep = webui.txt2img(raiiaf={"files": [str(side)]}, seed=7, **payload)
    same(rep.images[0], pixels(orig.pngs[0]), f"hires replay {hires}")


def test_save_images_false_writes_nothing_and_keeps_the_pixels(webui):
    on = webui.txt2img(raiiaf={}, seed=51, sampler_name="Euler a")
    off = webui.txt2img(raiiaf={}, seed=51, sampler_name="Euler a", save_images=False)
    assert off.saved == [], off.saved
    same(off.images[0], on.images[0], "save_images=false vs true")
    plain = webui.txt2img(seed=51, sampler_name="Euler a")
    same(plain.images[0], on.images[0], "the extension on vs off")


def test_disabled_writes_no_sidecar(webui):
    res = webui.txt2img(raiiaf={"enabled": False}, seed=52)
    assert len(res.pngs) == 1 and res.sidecars == [], res.saved
