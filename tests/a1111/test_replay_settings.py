"""Replay restores every stored setting the pixels depend on (ENSD, the noise source,
the SGM noise multiplier, eta, sigma noise...) or, when told to keep this webui's, stops
or goes on without replay with a message listing each difference."""

from __future__ import annotations

import numpy as np
import pytest
import raiiaf_rs

from .harness import pixels

BASE = {"prompt": "a harbour", "steps": 6, "width": 64, "height": 64, "cfg_scale": 5.0}
STOP = "Stop with a message"
PROCEED = "Proceed without replay"


def same(a, b) -> bool:
    return bool(np.array_equal(pixels(a), pixels(b)))


def _original(webui, sampler, **opts):
    """An image made with these settings; the webui's settings then back as they were."""
    before = {key: getattr(webui.shared.opts, key) for key in opts}
    for key, value in opts.items():
        setattr(webui.shared.opts, key, value)
    res = webui.txt2img(seed=321, sampler_name=sampler, outdir="orig", **BASE)
    for key, value in before.items():
        setattr(webui.shared.opts, key, value)
    return res


# (setting, value in the original run, sampler whose pixels depend on it)
CASES = [
    ("eta_noise_seed_delta", 31337, "Euler a"),
    ("randn_source", "NV", "Euler a"),
    ("randn_source", "NV", "DPM++ 2S a"),
    ("sgm_noise_multiplier", True, "Euler"),
    ("eta_ancestral", 0.6, "Euler a"),
    ("s_noise", 0.9, "Euler a"),
    ("eta_ddim", 0.5, "DDIM"),
]


@pytest.mark.parametrize(("key", "value", "sampler"), CASES)
def test_stored_setting_is_restored_for_the_run(webui, key, value, sampler):
    first = _original(webui, sampler, **{key: value})
    default = getattr(webui.shared.opts, key)
    assert default != value
    src = str(first.sidecar(first.images[0]))
    # The setting matters: this webui's value (the file's noise and seeds) gives another image.
    plain = webui.txt2img(seed=321, sampler_name=sampler, outdir="plain", **BASE)
    assert not same(first.images[0], plain.images[0])
    again = webui.txt2img(
        seed=1, sampler_name=sampler, outdir="again", raiiaf={"replay_files": src}, **BASE
    )
    assert same(first.images[0], again.images[0])
    assert getattr(webui.shared.opts, key) == default  # put back after the run
    meta = raiiaf_rs.read(again.sidecar(again.images[0])).metadata
    restored = meta["replayed_from"]["settings_restored"]
    assert any(key in label for label in restored), restored
    assert "restored from the file" in again.processed.comments
    assert webui.errors.reported == []


@pytest.mark.parametrize(("key", "value", "sampler"), CASES[:4])
def test_kept_settings_are_listed_then_stop_or_proceed(webui, key, value, sampler):
    from lib_raiiaf.replay import ReplayError

    first = _original(webui, sampler, **{key: value})
    src = str(first.sidecar(first.images[0]))
    kw = dict(BASE, seed=321, sampler_name=sampler)
    with pytest.raises(ReplayError, match=rf"other settings.*\({key}\)|{key}"):
        webui.txt2img(
            outdir="stopped",
            raiiaf={"replay_files": src, "restore_seeds": False, "on_mismatch": STOP},
            **kw,
        )
    went = webui.txt2img(
        outdir="went",
        raiiaf={"replay_files": src, "restore_seeds": False, "on_mismatch": PROCEED},
        **kw,
    )
    assert "WITHOUT replay" in went.processed.comments and "this webui" in went.processed.comments
    plain = webui.txt2img(outdir="plain", **kw)
    assert same(went.images[0], plain.images[0])  # this webui's own noise and settings
    meta = raiiaf_rs.read(went.sidecar(went.images[0])).metadata
    assert "replayed_from" not in meta and meta["warnings"]


def test_every_difference_is_listed(webui):
    from lib_raiiaf.replay import ReplayError

    first = _original(webui, "Euler a", eta_noise_seed_delta=7, randn_source="CPU", s_noise=0.8)
    src = str(first.sidecar(first.images[0]))
    with pytest.raises(ReplayError) as info:
        webui.txt2img(
            seed=321,
            sampler_name="Euler a",
            outdir="x",
            raiiaf={"replay_files": src, "restore_seeds": False},
            **BASE,
        )
    text = str(info.value)
    for what in ("ENSD", "randn_source", "s_noise"):
        assert what in text, text


def test_files_made_with_different_settings_are_refused_together(webui):
    from lib_raiiaf.replay import ReplayError

    a = _original(webui, "Euler a", eta_noise_seed_delta=1)
    (webui.root / "orig").rename(webui.root / "orig-a")
    b = _original(webui, "Euler a", eta_noise_seed_delta=2)
    files = [str(webui.root / "orig-a" / a.images[0].name.replace(".png", ".raiiaf"))]
    files.append(str(b.sidecar(b.images[0])))
    with pytest.raises(ReplayError, match="different settings"):
        webui.txt2img(
            seed=1,
            sampler_name="Euler a",
            batch_size=2,
            outdir="y",
            raiiaf={"replay_files": files},
            **BASE,
        )


def test_nv_source_draws_philox_noise(webui):
    from modules import rng_philox

    first = _original(webui, "Euler", randn_source="NV")
    art = raiiaf_rs.read(first.sidecar(first.images[0]))
    expected = rng_philox.Generator(321).randn((4, 8, 8))
    assert art.latents["initial_noise"][0].tobytes() == expected.tobytes()
    assert art.metadata["a1111"]["opts"]["randn_source"] == "NV"
    assert 0.8 < float(np.std(expected)) < 1.2


def test_restored_settings_do_not_outlive_the_replay(webui):
    # API callers may keep their override settings after the run; the files' are not theirs.
    first = _original(webui, "Euler a", eta_noise_seed_delta=99)
    src = str(first.sidecar(first.images[0]))
    again = webui.txt2img(
        seed=1,
        sampler_name="Euler a",
        outdir="again",
        override_settings={"CLIP_stop_at_last_layers": 2, "eta_noise_seed_delta": 5},
        override_settings_restore_afterwards=False,
        raiiaf={"replay_files": src},
        **BASE,
    )
    assert same(first.images[0], again.images[0])  # the file's ENSD was used
    assert again.p.override_settings == {"CLIP_stop_at_last_layers": 1, "eta_noise_seed_delta": 99}
    # Afterwards the settings are what the caller's overrides made them.
    assert webui.shared.opts.eta_noise_seed_delta == 5
    assert webui.shared.opts.CLIP_stop_at_last_layers == 2


def test_nv_source_matches_cudas_generator():
    """torch.randn(4, generator=torch.Generator("cuda").manual_seed(0)) on an NVIDIA GPU
    is [-0.9247, -0.4253, -2.6438, 0.1452] (a widely published value): the NV source's
    Philox draw gives the same numbers on any device."""
    from modules import rng_philox

    got = rng_philox.Generator(0).randn((4,))
    assert np.allclose(got, [-0.9247, -0.4253, -2.6438, 0.1452], atol=1e-4), got
    # Consecutive draws move on (the offset), as a CUDA generator's do.
    gen = rng_philox.Generator(0)
    assert not np.array_equal(gen.randn((4,)), gen.randn((4,)))
