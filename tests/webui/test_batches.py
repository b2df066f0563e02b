"""Batches in the real webuis: batch_size 2 x n_iter 2 regenerated whole from its four
files, and one image of it alone."""

from __future__ import annotations

import pytest

from .checks import same, saved_equals_returned, sidecars_of, within_batch_variance
from .harness import ApiError, pixels


@pytest.mark.parametrize("sampler", ["Euler a", "DPM++ SDE"])
def test_whole_batch_and_one_image_alone(webui, sampler):
    run = dict(sampler_name=sampler, batch_size=2, n_iter=2)
    orig = webui.txt2img(raiiaf={}, seed=61, **run)
    saved_equals_returned(orig)
    sides = sidecars_of(orig)
    assert len(sides) == 4
    whole = webui.txt2img(raiiaf={"files": [str(s) for s in sides]}, seed=8, **run)
    for i, png in enumerate(orig.pngs):
        same(whole.images[i], pixels(png), f"{sampler} whole batch, image {i}")
    # Image 3 (second batch, second image) alone: exactly the webui's own rendering of that
    # image alone, and within the batch variance of the batch's rendering.
    seed3 = orig.info["all_seeds"][3]
    own = webui.txt2img(seed=seed3, sampler_name=sampler)
    alone = webui.txt2img(raiiaf={"files": [str(sides[3])]}, seed=9, sampler_name=sampler)
    same(alone.images[0], own.images[0], f"{sampler} image 3 alone vs the webui's own")
    within_batch_variance(alone.images[0], pixels(orig.pngs[3]), f"{sampler} image 3 alone")


def test_sde_without_batch_determinism_refuses_one_image_alone(webui):
    """With no_dpmpp_sde_batch_determinism the webui draws one Brownian tree for the whole
    batch: an image of it cannot be regenerated alone, and the replay says so."""
    settings = {"no_dpmpp_sde_batch_determinism": True}
    run = dict(sampler_name="DPM++ SDE", batch_size=2, override_settings=settings)
    orig = webui.txt2img(raiiaf={}, seed=62, **run)
    sides = sidecars_of(orig)
    whole = webui.txt2img(raiiaf={"files": [str(s) for s in sides]}, seed=3, **run)
    for i, png in enumerate(orig.pngs):
        same(whole.images[i], pixels(png), f"whole SDE batch without determinism, image {i}")
    with pytest.raises(ApiError) as e:
        webui.txt2img(raiiaf={"files": [str(sides[1])]}, seed=3, sampler_name="DPM++ SDE")
    assert "batch" in e.value.body, e.value.body
