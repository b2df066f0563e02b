"""Hires truncation and the Hires fix button, Forge's ``modified_noise`` chain under
``inference_mode``, and exact single-image replay of a batch for the samplers that draw
noise at every step."""

from __future__ import annotations

import numpy as np
import pytest
import raiiaf_rs
import torch
from PIL import Image

from .harness import pixels

BASE = {"prompt": "a lighthouse", "steps": 6, "width": 64, "height": 64, "cfg_scale": 5.0}


def same(a, b) -> bool:
    return bool(np.array_equal(pixels(a), pixels(b)))


def _src(res, k=0) -> str:
    return str(res.sidecar(res.images[k]))


@pytest.mark.parametrize("mode", ["a1111-1.10", "forge"])
def test_truncated_hires_file_replays_exactly(make_webui, mode):
    webui = make_webui(mode)
    # Both resize width and height, at another aspect ratio than the first pass: the
    # upscaled 128x128 latent is cropped to 128x96 (truncate_y = 4 latent rows).
    kw = dict(
        BASE,
        enable_hr=True,
        hr_resize_x=128,
        hr_resize_y=96,
        denoising_strength=0.5,
        hr_second_pass_steps=3,
        sampler_name="Euler",
    )
    first = webui.txt2img(seed=70, outdir="a", **kw)
    assert first.p.truncate_y == 4 and first.p.truncate_x == 0
    art = raiiaf_rs.read(first.sidecar(first.images[0]))
    assert art.latents["hires_noise"].shape == (1, 4, 12, 16)
    assert art.metadata["a1111"]["hires"]["truncate_y"] == 4
    again = webui.txt2img(
        seed=3,
        outdir="b",
        raiiaf={"replay_files": _src(first), "restore_seeds": False},
        **kw,
    )
    assert same(first.images[0], again.images[0])
    meta = raiiaf_rs.read(again.sidecar(again.images[0])).metadata
    assert meta["replayed_from"]["passes"] == ["first", "hires"]
    assert webui.errors.reported == []


def test_other_hires_settings_are_restored_or_listed(webui):
    kw = dict(BASE, enable_hr=True, hr_scale=2.0, denoising_strength=0.5, sampler_name="Euler")
    first = webui.txt2img(seed=71, outdir="a", **kw)
    other = dict(kw, hr_scale=1.5)  # another hires size
    # With the stored settings: the file's hires scale is used, both passes replayed.
    res = webui.txt2img(seed=3, outdir="b", raiiaf={"replay_files": _src(first)}, **other)
    assert np.array_equal(pixels(first.images[0]), pixels(res.images[0]))
    meta = raiiaf_rs.read(res.sidecar(res.images[0])).metadata
    assert meta["replayed_from"]["passes"] == ["first", "hires"]
    assert meta["replayed_from"]["settings_restored"]["Hires hr_scale"] == {"was": 1.5, "now": 2.0}
    # Without them: the difference is listed, and "proceed" replays nothing.
    res = webui.txt2img(
        seed=3,
        outdir="c",
        raiiaf={
            "replay_files": _src(first),
            "restore_seeds": False,
            "on_mismatch": "Proceed without replay",
        },
        **other,
    )
    assert "Hires hr_scale: file 2.0, this webui 1.5" in res.processed.comments
    assert "generating WITHOUT replay" in res.processed.comments
    assert "replayed_from" not in raiiaf_rs.read(res.sidecar(res.images[0])).metadata


def _gallery_image() -> Image.Image:
    rng = np.random.default_rng(5)
    return Image.fromarray(rng.integers(30, 220, (64, 64, 3), dtype=np.uint8), "RGB")


@pytest.mark.parametrize("mode", ["a1111-1.10", "forge"])
def test_hires_fix_button_writes_a_file_that_replays(make_webui, mode):
    webui = make_webui(mode)
    kw = dict(
        BASE,
        enable_hr=True,
        hr_scale=2.0,
        denoising_strength=0.6,
        sampler_name="Euler",
        firstpass_image=_gallery_image(),
    )
    first = webui.txt2img(seed=90, outdir="a", **kw)
    sidecar = first.sidecar(first.images[0])
    assert sidecar.exists()
    art = raiiaf_rs.read(sidecar)
    assert "initial_noise" not in art.latents
    assert art.latents["hires_noise"].shape == (1, 4, 16, 16)
    assert "Hires fix button" in art.metadata["a1111"]["first_pass"]
    assert len(art.metadata["a1111"]["hires"]["firstpass_image_sha256"]) == 64
    again = webui.txt2img(
        seed=4,
        outdir="b",
        raiiaf={"replay_files": str(sidecar), "restore_seeds": False},
        **kw,
    )
    assert same(first.images[0], again.images[0])
    # In a run with a first pass, the file says what it is.
    from lib_raiiaf.replay import ReplayError

    normal = {k: v for k, v in kw.items() if k != "firstpass_image"}
    with pytest.raises(ReplayError, match="Hires fix' button"):
        webui.txt2img(seed=4, outdir="c", raiiaf={"replay_files": str(sidecar)}, **normal)


def _inpaint_latent() -> torch.Tensor:
    g = torch.Generator().manual_seed(11)
    return torch.randn((1, 4, 8, 8), generator=g) * 3.0


@pytest.mark.parametrize(
    ("tab", "multiplier"), [("txt2img", 1.0), ("img2img", 1.0), ("img2img", 0.9)]
)
def test_forge_modified_noise_of_a_builtin_extension_is_composed(make_webui, tab, multiplier):
    webui = make_webui("forge")
    from modules import scripts

    titles = [s.title() for s in webui.tabs[tab].alwayson_scripts]
    assert titles == ["forge inpaint preprocessor (harness)", "raiiaf"]  # built-in first
    seen = {}

    def spy(p, *args, **kwargs):
        seen["inference"] = torch.is_inference(kwargs["noise"])

    script = webui.script(tab)
    script.process_before_every_sampling, original = (
        lambda p, *a, **k: (spy(p, *a, **k), original(p, *a, **k)),
        script.process_before_every_sampling,
    )
    kw = dict(BASE, sampler_name="Euler", harness_inpaint_latent=_inpaint_latent())
    if tab == "img2img":
        rng = np.random.default_rng(3)
        image = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), "RGB")
        kw.update(init_images=[image], denoising_strength=0.7)
        kw.update(initial_noise_multiplier=multiplier)
    run = webui.img2img if tab == "img2img" else webui.txt2img
    first = run(seed=50, outdir="a", **kw)
    assert seen["inference"] is True  # Forge's loop runs under inference_mode
    art = raiiaf_rs.read(first.sidecar(first.images[0]))
    assert art.metadata["a1111"]["noise_modified_by_other_script"] == ["first"]
    plain = run(seed=51, outdir="p", **kw)
    assert not same(first.images[0], plain.images[0])
    again = run(
        seed=51,
        outdir="b",
        raiiaf={"replay_files": _src(first), "restore_seeds": False},
        **kw,
    )
    assert same(first.images[0], again.images[0])
    meta = raiiaf_rs.read(again.sidecar(again.images[0])).metadata
    assert "warnings" not in meta  # bit for bit, nothing to warn about
    assert webui.errors.reported == []
    del scripts


BATCH_SAMPLERS = ["Euler a", "DPM++ 2S a", "DPM++ SDE", "DDIM"]


@pytest.mark.parametrize("sampler", BATCH_SAMPLERS)
def test_any_image_of_a_batch_alone_is_exact(webui, sampler):
    if sampler == "DDIM":
        webui.shared.opts.eta_ddim = 0.7  # stochastic DDIM
    kw = dict(BASE, sampler_name=sampler)
    first = webui.txt2img(seed=800, batch_size=3, outdir="batch", **kw)
    assert len(first.images) == 3
    webui.shared.opts.eta_ddim = 0.0  # restored from the files
    for k, image in enumerate(first.images):
        alone = webui.txt2img(
            seed=0, outdir=f"one{k}", raiiaf={"replay_files": _src(first, k)}, **kw
        )
        assert same(image, alone.images[0]), (sampler, k)
    # Without the stored seeds the per-step noise is another: not the same image.
    other = webui.txt2img(
        seed=0,
        outdir="other",
        raiiaf={
            "replay_files": _src(first, 1),
            "restore_seeds": False,
            "on_mismatch": "Proceed without replay",
        },
        **kw,
    )
    assert not same(first.images[1], other.images[0])


def test_sde_without_batch_determinism_refuses_a_single_image(webui):
    from lib_raiiaf.replay import ReplayError

    webui.shared.opts.no_dpmpp_sde_batch_determinism = True
    kw = dict(BASE, sampler_name="DPM++ SDE")
    first = webui.txt2img(seed=900, batch_size=2, outdir="batch", **kw)
    with pytest.raises(ReplayError, match="depends on the whole batch"):
        webui.txt2img(seed=0, outdir="one", raiiaf={"replay_files": _src(first, 1)}, **kw)
    whole = webui.txt2img(
        seed=0,
        batch_size=2,
        outdir="whole",
        raiiaf={"replay_files": [_src(first, 0), _src(first, 1)]},
        **kw,
    )
    for a, b in zip(first.images, whole.images):
        assert same(a, b)


def test_variation_seed_batch_image_alone_is_exact(webui):
    # With a variation seed every image shares the seed and has its own subseed.
    kw = dict(BASE, sampler_name="Euler a", subseed_strength=0.35)
    first = webui.txt2img(seed=600, subseed=7000, batch_size=2, outdir="batch", **kw)
    assert first.p.all_seeds == [600, 600] and first.p.all_subseeds == [7000, 7001]
    art = raiiaf_rs.read(first.sidecar(first.images[1]))
    assert art.metadata["a1111"]["subseed"] == 7001
    alone = webui.txt2img(
        seed=1,
        subseed=1,
        outdir="one",
        raiiaf={"replay_files": _src(first, 1)},
        **{**kw, "subseed_strength": 0.0},
    )
    assert alone.p.subseed_strength == 0.35
    assert same(first.images[1], alone.images[0])


def _as_if_made_on(path, device_type: str, target):
    """The same file as if written on a machine drawing GPU noise on ``device_type``."""
    art = raiiaf_rs.read(path)
    meta = dict(art.metadata)
    meta["a1111"] = {**meta["a1111"], "rng_device_type": device_type}
    raiiaf_rs.write(target, dict(art.latents), image=art.image, metadata=meta)
    return str(target)


def test_gpu_noise_from_another_device_is_reported_when_it_matters(webui):
    from lib_raiiaf.replay import ReplayError

    first = webui.txt2img(seed=610, sampler_name="Euler a", outdir="a", **BASE)
    art = raiiaf_rs.read(first.sidecar(first.images[0]))
    assert art.metadata["a1111"]["rng_device_type"] == "cpu"
    cuda = _as_if_made_on(first.sidecar(first.images[0]), "cuda", webui.root / "a" / "c.raiiaf")
    with pytest.raises(ReplayError, match=r"drawn on 'cuda'.*draws noise at every step"):
        webui.txt2img(
            seed=1, sampler_name="Euler a", outdir="b", raiiaf={"replay_files": cuda}, **BASE
        )
    # A deterministic sampler needs only the stored noise: replayed.
    det = webui.txt2img(seed=611, sampler_name="Euler", outdir="c", **BASE)
    cuda_det = _as_if_made_on(det.sidecar(det.images[0]), "cuda", webui.root / "c" / "d.raiiaf")
    again = webui.txt2img(
        seed=1, sampler_name="Euler", outdir="d", raiiaf={"replay_files": cuda_det}, **BASE
    )
    assert same(det.images[0], again.images[0])


def test_inpaint_latent_noise_fill_of_a_later_batch_is_refused_alone(webui):
    from lib_raiiaf.replay import ReplayError

    rng = np.random.default_rng(3)
    image = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), "RGB")
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[16:48, 8:40] = 255
    kw = dict(
        BASE,
        sampler_name="Euler a",
        init_images=[image],
        image_mask=Image.fromarray(mask, "L"),
        inpainting_fill=2,
        denoising_strength=0.8,
    )
    first = webui.img2img(seed=300, batch_size=2, n_iter=2, outdir="run", **kw)
    assert len(first.images) == 4
    # An image of the first batch: its fill came from its own seed, so alone it is exact.
    alone = webui.img2img(seed=0, outdir="one", raiiaf={"replay_files": _src(first, 1)}, **kw)
    assert same(first.images[1], alone.images[0])
    # One of the second batch: its fill came from the first batch's seed at its position.
    with pytest.raises(ReplayError, match="latent noise' fill from batch 2"):
        webui.img2img(seed=0, outdir="two", raiiaf={"replay_files": _src(first, 3)}, **kw)
    # The whole run from its files: exact.
    whole = webui.img2img(
        seed=0,
        batch_size=2,
        n_iter=2,
        outdir="whole",
        raiiaf={"replay_files": [_src(first, k) for k in range(4)]},
        **kw,
    )
    for a, b in zip(first.images, whole.images):
        assert same(a, b)
