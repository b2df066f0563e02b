"""Capture and replay through the harness webui with real k-diffusion samplers."""

from __future__ import annotations

import numpy as np
import pytest
import raiiaf_rs
from PIL import Image

from .harness import files_in, pixels, read_bytes

BASE = {
    "prompt": "a lighthouse, dusk",
    "negative_prompt": "blurry",
    "steps": 6,
    "width": 64,
    "height": 64,
    "cfg_scale": 5.0,
}


def same(a, b) -> bool:
    return bool(np.array_equal(pixels(a), pixels(b)))


def test_txt2img_writes_one_file_per_image_with_the_exact_noise(webui):
    from modules import rng

    res = webui.txt2img(seed=1000, batch_size=2, n_iter=2, sampler_name="Euler", **BASE)
    assert len(res.images) == 4
    grids = files_in(res.outdir / "grids", ".png")
    assert len(grids) == 1
    assert files_in(res.outdir / "grids", ".raiiaf") == []
    for k, image in enumerate(res.images):
        assert image.name.startswith(f"{k:05}-{1000 + k}-a lighthouse")
        art = raiiaf_rs.read(res.sidecar(image))
        noise = art.latents["initial_noise"]
        assert noise.shape == (1, 4, 8, 8)
        # Bit for bit the noise the webui drew for that image's seed.
        expected = rng.ImageRNG((4, 8, 8), [1000 + k]).next().numpy()
        assert noise.tobytes() == expected.tobytes()
        assert art.image == read_bytes(image)
        meta = art.metadata
        assert meta["generation_settings"]["seed"] == 1000 + k
        assert meta["a1111"]["image_index"] == k
        assert meta["a1111"]["iteration"] == k // 2
        assert meta["a1111"]["batch_index"] == k % 2
        assert meta["prompt"] == BASE["prompt"]
        assert meta["negative_prompt"] == "blurry"
    assert webui.errors.reported == []


def test_infotext_is_recorded_as_structured_fields(webui):
    webui.shared.opts.eta_noise_seed_delta = 31337
    res = webui.txt2img(seed=5, sampler_name="DPM++ 2M", scheduler="Karras", **BASE)
    meta = raiiaf_rs.read(res.sidecar(res.images[0])).metadata
    with Image.open(res.images[0]) as im:
        assert meta["infotext"] == im.text["parameters"]
    fields = meta["infotext_fields"]
    assert fields["Steps"] == 6
    assert fields["Sampler"] == "DPM++ 2M"
    assert fields["Schedule type"] == "Karras"
    assert fields["CFG scale"] == 5.0
    assert fields["Seed"] == 5
    assert fields["Size"] == "64x64"
    assert fields["Model hash"] == "0123456789"
    assert fields["Model"] == "tiny-sd"
    assert fields["ENSD"] == 31337
    assert fields["Version"] == "v1.10.1"
    a = meta["a1111"]
    assert a["opts"]["eta_noise_seed_delta"] == 31337
    assert a["opts"]["randn_source"] == "GPU"
    assert a["model"]["checkpoint"] == {
        "name": "tiny-sd",
        "short_hash": "0123456789",
        "sha256": "0123456789" + "ab" * 27,
    }
    assert a["webui"]["version"] == "v1.10.1"


def test_environment_records_the_webui(webui):
    res = webui.txt2img(seed=5, sampler_name="Euler", **BASE)
    env = raiiaf_rs.read(res.sidecar(res.images[0])).environment
    text = str(env)
    assert "AUTOMATIC1111" in text and "v1.10.1" in text
    assert "82a973c04367123ae98bd9abdf80d9eda9b910e2" in text


def test_no_command_line_secrets_or_paths_are_recorded(make_webui):
    webui = make_webui(
        cmd_opts={
            "gradio_auth": "alice:hunter2-secret",
            "api_auth": "bob:s3cr3t-token",
            "ckpt_dir": "/home/alice/private-models",
            "data_dir": "/home/alice/webui-data",
            "xformers": True,
            "no_half_vae": True,
        }
    )
    res = webui.txt2img(seed=5, sampler_name="Euler", **BASE)
    data = read_bytes(res.sidecar(res.images[0]))
    for secret in (b"hunter2", b"s3cr3t", b"/home/alice", b"private-models", b"secret-models"):
        assert secret not in data
    meta = raiiaf_rs.read(res.sidecar(res.images[0])).metadata
    assert meta["a1111"]["cmd_flags"] == {"xformers": True, "no_half_vae": True}


def test_replay_deterministic_sampler_with_a_different_seed(webui):
    first = webui.txt2img(seed=111, sampler_name="Euler", outdir="a", **BASE)
    plain = webui.txt2img(seed=222, sampler_name="Euler", outdir="b", **BASE)
    assert not same(first.images[0], plain.images[0])
    again = webui.txt2img(
        seed=222,
        sampler_name="Euler",
        outdir="c",
        raiiaf={"replay_files": str(first.sidecar(first.images[0])), "restore_seeds": False},
        **BASE,
    )
    assert same(first.images[0], again.images[0])
    assert again.p.all_seeds == [222]  # the seed was not touched: the noise did it
    meta = raiiaf_rs.read(again.sidecar(again.images[0])).metadata
    assert meta["replayed_from"]["passes"] == ["first"]
    assert "RAIIAF replay" in meta["infotext_fields"]


@pytest.mark.parametrize("sampler", ["Euler a", "DPM++ 2S a"])
def test_replay_ancestral_sampler_with_the_stored_seed(webui, sampler):
    first = webui.txt2img(seed=333, sampler_name=sampler, outdir="a", **BASE)
    src = str(first.sidecar(first.images[0]))
    # The UI's seed differs; the stored seeds are restored (default).
    again = webui.txt2img(
        seed=9, sampler_name=sampler, outdir="b", raiiaf={"replay_files": src}, **BASE
    )
    assert same(first.images[0], again.images[0])
    assert again.p.all_seeds == [333]
    # Seeds kept as typed (stored seed typed in): identical too.
    typed = webui.txt2img(
        seed=333,
        sampler_name=sampler,
        outdir="c",
        raiiaf={"replay_files": src, "restore_seeds": False},
        **BASE,
    )
    assert same(first.images[0], typed.images[0])
    # Another seed without restoring: the per-step noise differs, so the image does.
    other = webui.txt2img(
        seed=9,
        sampler_name=sampler,
        outdir="d",
        raiiaf={"replay_files": src, "restore_seeds": False},
        **BASE,
    )
    assert not same(first.images[0], other.images[0])
    assert "will differ from the original" in other.processed.comments
    assert "will differ" not in typed.processed.comments  # the stored seed was typed in


def test_batch_2x2_each_image_from_its_own_file(webui):
    first = webui.txt2img(
        seed=40, sampler_name="Euler a", batch_size=2, n_iter=2, outdir="a", **BASE
    )
    assert len(first.images) == 4
    for k, image in enumerate(first.images):
        alone = webui.txt2img(
            seed=0,
            sampler_name="Euler a",
            outdir=f"one{k}",
            raiiaf={"replay_files": str(first.sidecar(image))},
            **BASE,
        )
        assert same(image, alone.images[0]), k
    # All four files at once, as a 2 x 2 run.
    files = [str(first.sidecar(i)) for i in first.images]
    whole = webui.txt2img(
        seed=0,
        sampler_name="Euler a",
        batch_size=2,
        n_iter=2,
        outdir="all",
        raiiaf={"replay_files": files},
        **BASE,
    )
    for a, b in zip(first.images, whole.images):
        assert same(a, b)


def _init_image() -> Image.Image:
    rng = np.random.default_rng(3)
    return Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), "RGB")


def _mask() -> Image.Image:
    arr = np.zeros((64, 64), dtype=np.uint8)
    arr[16:48, 8:40] = 255
    return Image.fromarray(arr, "L")


def test_img2img_noise_after_multiplier_input_and_mask_recorded(webui):
    webui.shared.opts.save_mask = True
    kw = dict(
        BASE,
        init_images=[_init_image()],
        image_mask=_mask(),
        denoising_strength=0.6,
        initial_noise_multiplier=0.9,
        sampler_name="Euler",
    )
    first = webui.img2img(seed=77, outdir="a", **kw)
    assert len(first.images) == 1
    masks = [p for p in first.saved if p.stem.endswith("-mask")]
    assert len(masks) == 1 and not masks[0].with_suffix(".raiiaf").exists()
    art = raiiaf_rs.read(first.sidecar(first.images[0]))
    from modules import rng

    drawn = rng.ImageRNG((4, 8, 8), [77]).next() * 0.9
    assert art.latents["initial_noise"].tobytes() == drawn.numpy().tobytes()
    img = art.metadata["a1111"]["img2img"]
    assert img["initial_noise_multiplier"] == 0.9
    assert len(img["init_images_sha256"][0]) == 64 and len(img["mask_sha256"]) == 64
    assert art.metadata["a1111"]["mode"] == "img2img"

    again = webui.img2img(
        seed=5,
        outdir="b",
        raiiaf={"replay_files": str(first.sidecar(first.images[0])), "restore_seeds": False},
        **kw,
    )
    assert same(first.images[0], again.images[0])
    plain = webui.img2img(seed=5, outdir="c", **kw)
    assert not same(first.images[0], plain.images[0])


@pytest.mark.parametrize("mode", ["a1111-1.10", "forge"])
def test_hires_fix_both_passes_captured_and_replayed(make_webui, mode):
    webui = make_webui(mode)
    webui.shared.opts.save_images_before_highres_fix = True
    kw = dict(
        BASE,
        enable_hr=True,
        hr_scale=2.0,
        denoising_strength=0.55,
        hr_second_pass_steps=4,
        sampler_name="Euler",
    )
    first = webui.txt2img(seed=500, outdir="a", **kw)
    before = [p for p in first.saved if "-before-highres-fix" in p.stem]
    assert len(before) == 1 and not before[0].with_suffix(".raiiaf").exists()
    art = raiiaf_rs.read(first.sidecar(first.images[0]))
    assert art.latents["initial_noise"].shape == (1, 4, 8, 8)
    assert art.latents["hires_noise"].shape == (1, 4, 16, 16)
    assert art.metadata["a1111"]["hires"]["hr_upscale_to_x"] == 128
    # Deterministic sampler, other seed, seeds not restored: both passes from the file.
    again = webui.txt2img(
        seed=1,
        outdir="b",
        raiiaf={"replay_files": str(first.sidecar(first.images[0])), "restore_seeds": False},
        **kw,
    )
    assert same(first.images[0], again.images[0])
    meta = raiiaf_rs.read(again.sidecar(again.images[0])).metadata
    assert meta["replayed_from"]["passes"] == ["first", "hires"]


def test_a1111_1_9_without_the_sampling_hook_wraps_p_rng(make_webui):
    webui = make_webui("a1111-1.9")
    assert not hasattr(webui.scripts.Script, "process_before_every_sampling")
    first = webui.txt2img(seed=60, sampler_name="Euler", batch_size=2, outdir="a", **BASE)
    art = raiiaf_rs.read(first.sidecar(first.images[1]))
    from modules import rng

    assert (
        art.latents["initial_noise"].tobytes()
        == rng.ImageRNG((4, 8, 8), [61]).next().numpy().tobytes()
    )
    again = webui.txt2img(
        seed=2,
        sampler_name="Euler",
        outdir="b",
        raiiaf={"replay_files": str(first.sidecar(first.images[0])), "restore_seeds": False},
        **BASE,
    )
    ref = webui.txt2img(seed=60, sampler_name="Euler", outdir="c", **BASE)
    assert same(ref.images[0], again.images[0])


def test_disabled_writes_nothing(webui):
    res = webui.txt2img(seed=5, sampler_name="Euler", raiiaf={"enabled": False}, **BASE)
    assert files_in(res.outdir, ".raiiaf") == []


def test_final_latent_stored_on_request_and_image_embedding_optional(webui):
    res = webui.txt2img(
        seed=5, sampler_name="Euler", raiiaf={"store_latent": True, "embed_image": False}, **BASE
    )
    art = raiiaf_rs.read(res.sidecar(res.images[0]))
    assert art.latents["final_latent"].shape == (1, 4, 8, 8)
    assert art.image is None
    assert len(art.metadata["image_file"]["sha256"]) == 64
