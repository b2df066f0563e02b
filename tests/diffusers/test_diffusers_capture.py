"""What the diffusers host records, why each part is needed, and how replay reports what
differs or cannot be rerun."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import raiiaf_rs
import torch
from raiiaf_rs import diffusers as rd
from raiiaf_rs.passes import passes_of
from tiny_pipes import call_args, gens, pipeline, same


def _read(path):
    art = raiiaf_rs.read(path, as_torch=True)
    shapes = {k: tuple(v.shape) for k, v in art.latents.items()}
    return art, passes_of(art.metadata, shapes, dict(art.dtypes))[0]


def test_latents_alone_do_not_reproduce_euler_a(models, tmp_path):
    """Euler a draws at every step: the stored noise with the generator's state from
    before the draw (or a fresh one) gives another image; the stored state gives it."""
    pipe = pipeline(models, "sd", "txt2img", "euler_a")
    args = call_args("txt2img")
    run = rd.generate(pipe, tmp_path / "a.png", generator=gens(5), **args)
    art, p = _read(run.saved[0].sidecar)
    assert p.rng["kind"] == "torch_generator_states" and p.rng["at"] == "after_initial_noise"
    noise = art.latents["initial_noise"]
    for gen in (gens(5), gens(6)):  # state at call start; another state
        other = pipe(latents=noise, generator=gen, **args).images[0]
        diff = np.abs(np.asarray(other, float) - np.asarray(run.images[0], float))
        assert (diff > 0).mean() > 0.5, "latents alone reproduced Euler a"
    assert same(rd.replay(run.saved[0].sidecar, pipe).images[0], run.images[0])


def test_dpmpp_sde_needs_the_forced_seed(models, tmp_path):
    """DPM++ SDE ignores the generators: without a seed its Brownian tree comes from the
    global RNG, so two plain calls differ; the capture records one seed per image."""
    pipe = pipeline(models, "sd", "txt2img", "dpmpp_sde")
    args = call_args("txt2img")
    a, b = (pipe(generator=gens(3), **args).images[0] for _ in range(2))
    assert not same(a, b)
    run = rd.generate(pipe, tmp_path / "s.png", generator=gens(3), **args)
    _, p = _read(run.saved[0].sidecar)
    assert p.rng == {"kind": "noise_sampler_seed", "seeds": [3], "batched": True}
    assert pipe.scheduler.noise_sampler_seed is None  # the pipeline's own setting is back
    assert same(rd.replay(run.saved[0].sidecar, pipe).images[0], run.images[0])


def test_metadata_passes_models_and_environment(models, tmp_path):
    pipe = pipeline(models, "sdxl", "img2img", "euler_a")
    run = rd.generate(
        pipe, tmp_path / "x.png", generator=gens(1, 2), tags=["exp1"],
        **call_args("img2img", num_images_per_prompt=2, guidance_scale=4.0),
    )  # fmt: skip
    art, p = _read(run.saved[1].sidecar)
    meta = art.metadata
    assert p.role == "img2img" and p.noise == "initial_noise"
    assert p.input_latent == "initial_noise_input_latent" and p.adds_noise and p.exact
    assert p.seed == 2 and p.noise_shape == (1, 4, 32, 32) and p.noise_dtype == "float32"
    assert p.settings == {"sampler": "EulerAncestralDiscreteScheduler", "steps": 4, "cfg": 4.0,
                          "denoise": 0.7}  # fmt: skip
    assert len(p.timesteps) == 2  # 4 steps at strength 0.7
    assert p.source == {"host": "diffusers", "pipeline": "StableDiffusionXLImg2ImgPipeline",
                        "scheduler": "EulerAncestralDiscreteScheduler"}  # fmt: skip
    assert art.latents["initial_noise_input_latent"].shape == (1, 4, 32, 32)
    assert meta["batch_index"] == 1 and meta["batch_size"] == 2 and meta["tags"][-1] == "exp1"
    assert meta["image_file"]["name"] == "x-1.png"
    assert meta["model_name"] == "sdxl" and meta["prompt"] == "a cat"
    unet = os.path.join(models["sdxl"], "unet", "diffusion_pytorch_model.safetensors")
    entry = next(m for m in meta["models"] if m["role"] == "unet")
    assert entry["sha256"] == raiiaf_rs.fingerprint(unet).sha256
    assert {m["role"] for m in meta["models"]} >= {"unet", "vae", "text_encoder", "text_encoder_2"}
    import diffusers

    assert meta["host"] == {"app": "diffusers", "version": diffusers.__version__}
    assert "diffusers" in str(art.environment)


def test_shared_generator_and_one_tree_say_not_alone(models, tmp_path):
    """One generator for a batch (or one int SDE seed) draws for the whole batch: the file
    says so, replay of one image warns, the whole batch still reruns bit for bit."""
    pipe = pipeline(models, "sd", "txt2img", "euler_a")
    args = call_args("txt2img", num_images_per_prompt=2)
    run = rd.generate(pipe, tmp_path / "g.png", generator=torch.Generator().manual_seed(4), **args)
    _, p = _read(run.saved[1].sidecar)
    assert not p.exact and "whole batch" in p.why_not_exact[0] and p.rng["shared"]
    batch = rd.replay_batch([s.sidecar for s in run.saved], pipe)
    assert all(same(a, b) for a, b in zip(batch.images, run.images))
    with pytest.warns(UserWarning, match="whole batch"):
        rd.replay(run.saved[1].sidecar, pipe)

    sde = pipeline(models, "sd", "txt2img", "dpmpp_sde")
    sde.scheduler.noise_sampler_seed = 11
    run = rd.generate(sde, tmp_path / "t.png", generator=gens(1, 2), **args)
    _, p = _read(run.saved[0].sidecar)
    assert p.rng == {"kind": "noise_sampler_seed", "seeds": [11], "batched": False}
    assert not p.exact and "Brownian tree" in p.why_not_exact[0]
    sde.scheduler.noise_sampler_seed = None
    batch = rd.replay_batch([s.sidecar for s in run.saved], sde)
    assert all(same(a, b) for a, b in zip(batch.images, run.images))


def test_no_generator_gets_one_per_image(models, tmp_path):
    pipe = pipeline(models, "sd", "txt2img", "euler_a")
    run = rd.generate(pipe, tmp_path / "n.png", **call_args("txt2img", num_images_per_prompt=2))
    seeds = [_read(s.sidecar)[1].seed for s in run.saved]
    assert seeds[0] != seeds[1]
    assert same(rd.replay(run.saved[1].sidecar, pipe).images[0], run.images[1])


def test_alone_runs_at_batch_size_one_and_says_so(models, tmp_path):
    pipe = pipeline(models, "sd", "txt2img", "euler")
    run = rd.generate(pipe, tmp_path / "b.png", generator=gens(1, 2),
                      **call_args("txt2img", num_images_per_prompt=2))  # fmt: skip
    with pytest.warns(UserWarning, match="batch size 1"):
        again = rd.replay(run.saved[1].sidecar, pipe, alone=True)
    assert [d.kind for d in again.differences] == ["batch"]
    diff = np.abs(np.asarray(again.images[0], int) - np.asarray(run.images[1], int))
    assert diff.max() <= 1


def test_differences_are_reported_first(models, tmp_path):
    pipe = pipeline(models, "sd", "txt2img", "euler_a")
    run = rd.generate(pipe, tmp_path / "d.png", generator=gens(9), **call_args("txt2img"))
    side = run.saved[0].sidecar
    other = pipeline(models, "sd", "txt2img", "euler")  # the same pipeline, now with Euler
    own = other.scheduler
    with pytest.warns(UserWarning, match="the file's scheduler is used"):
        again = rd.replay(side, other)
    assert [(d.kind, d.affects_pixels) for d in again.differences] == [("scheduler", False)]
    assert same(again.images[0], run.images[0])  # the file's Euler a ran
    with pytest.warns(UserWarning):
        mine = rd.replay(side, other, scheduler="pipe")
    assert mine.differences[0].kind == "scheduler" and mine.differences[0].affects_pixels
    assert not same(mine.images[0], run.images[0])
    assert other.scheduler is own  # the pipeline's own scheduler is back

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = [d for d in rd.differences(side, other, model=models["sdxl"]) if d.kind == "model"]
    assert found and all(d.affects_pixels for d in found)
    assert any(d.stored and d.current and d.stored != d.current for d in found)


def test_bad_replays_are_refused_clearly(models, tmp_path):
    txt = pipeline(models, "sd", "txt2img", "euler")
    run = rd.generate(txt, tmp_path / "e.png", generator=gens(1, 2),
                      **call_args("txt2img", num_images_per_prompt=2))  # fmt: skip
    img = pipeline(models, "sd", "img2img", "euler")
    with pytest.raises(ValueError, match="txt2img pipeline"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rd.replay(run.saved[0].sidecar, img)
    with pytest.raises(ValueError, match=r"images \[1\] of 2"):
        rd.replay_batch([run.saved[1].sidecar], txt)
    with pytest.raises(FileExistsError):
        rd.generate(txt, tmp_path / "e.png", generator=gens(1, 2),
                    **call_args("txt2img", num_images_per_prompt=2))  # fmt: skip
    plain = tmp_path / "plain.raiiaf"
    raiiaf_rs.write(plain, {"initial_noise": np.zeros((1, 4, 8, 8), np.float32)}, None, {})
    with pytest.raises(ValueError, match=r"not written by raiiaf_rs\.diffusers"):
        rd.replay(plain, txt)
    with pytest.raises(ValueError, match="2 generators for a batch of 1"):
        rd.generate(txt, tmp_path / "f.png", generator=gens(1, 2), **call_args("txt2img"))


def test_unsupported_pipelines_are_refused(models, tmp_path):
    import diffusers

    inpaint = diffusers.StableDiffusionInpaintPipeline.from_pipe(
        pipeline(models, "sd", "txt2img", "euler")
    )
    with pytest.raises(ValueError, match="StableDiffusionInpaintPipeline is not supported"):
        rd.generate(inpaint, tmp_path / "i.png", prompt="a cat", generator=gens(1))
    assert not (tmp_path / "i.png").exists()


def test_model_entries_file_folder_and_repo_id(models, tmp_path):
    pipe = pipeline(models, "sd", "txt2img", "euler")
    unet = os.path.join(models["sd"], "unet", "diffusion_pytorch_model.safetensors")
    (one,) = rd.model_entries(pipe, unet)  # a single-file checkpoint
    assert one["role"] == "checkpoint" and one["sha256"] == raiiaf_rs.fingerprint(unet).sha256
    (repo,) = rd.model_entries(pipe, "nobody/not-cached-here")  # never downloads
    assert repo["sha256"] is None and repo["repo_id"] == "nobody/not-cached-here"
    roles = [m["role"] for m in rd.model_entries(pipe)]  # pipe.name_or_path: the folder
    assert roles == sorted(roles) and "unet" in roles and "vae" in roles
