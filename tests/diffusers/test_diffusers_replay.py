"""Capture -> replay is pixel-identical for SD and SDXL, txt2img and img2img, Euler, Euler a
and DPM++ SDE, one image of a batch alone and the whole batch; the capture itself changes
no pixel of the pipeline's own result."""

from __future__ import annotations

import warnings

import pytest
from raiiaf_rs import diffusers as rd
from tiny_pipes import PIPES, SCHEDULERS, call_args, gens, pipeline, same


@pytest.mark.parametrize("scheduler", list(SCHEDULERS))
@pytest.mark.parametrize("mode", ["txt2img", "img2img"])
@pytest.mark.parametrize("kind", list(PIPES))
def test_capture_replay_is_pixel_identical(models, tmp_path, kind, mode, scheduler):
    pipe = pipeline(models, kind, mode, scheduler)
    args = call_args(mode, num_images_per_prompt=2)
    run = rd.generate(pipe, tmp_path / "out.png", generator=gens(1, 2), **args)
    assert [s.image for s in run.saved] == [str(tmp_path / f"out-{i}.png") for i in (0, 1)]
    assert not same(run.images[0], run.images[1])

    # The capture is the pipeline's own call: a plain call makes the same pixels (DPM++
    # SDE: with the per-image seeds the capture set, its generators' seeds).
    if scheduler == "dpmpp_sde":
        pipe.scheduler.noise_sampler_seed = [1, 2]
    try:
        plain = pipe(generator=gens(1, 2), **args).images
    finally:
        if scheduler == "dpmpp_sde":
            pipe.scheduler.noise_sampler_seed = None
    assert all(same(a, b) for a, b in zip(run.images, plain))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for saved in run.saved:
            again = rd.replay(saved.sidecar, pipe)
            assert again.differences == []
            assert same(again.images[0], run.images[saved.batch_index])
        batch = rd.replay_batch([s.sidecar for s in reversed(run.saved)], pipe)
    assert all(same(a, b) for a, b in zip(batch.images, run.images))
    assert batch.differences == []
    # nothing differs: no warning of ours
    assert [str(w.message) for w in caught if "raiiaf" in str(w.message)] == []
