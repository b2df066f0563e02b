"""img2img capture and replay in the real webuis (failure C: the starting latent is itself a
random draw from torch's global generator, so a replay with the stored noise alone is not
the same image once anything else has run in between)."""

from __future__ import annotations

import numpy as np
import pytest

from .checks import same, saved_equals_returned, sidecars_of
from .harness import pixels


def init_image() -> np.ndarray:
    y, x = np.mgrid[0:64, 0:64]
    return np.stack([x * 4, y * 4, (x + y) * 2], axis=-1).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("sampler", ["Euler", "Euler a"])
def test_img2img_replay_after_other_generations(webui, sampler):
    orig = webui.img2img(init_image(), raiiaf={}, seed=71, sampler_name=sampler)
    saved_equals_returned(orig)
    (side,) = sidecars_of(orig)
    # What a user does in between: other generations (they move torch's global generator).
    webui.txt2img(seed=72, sampler_name="Euler a", batch_size=2)
    rep = webui.img2img(init_image(), raiiaf={"files": [str(side)]}, seed=5, sampler_name=sampler)
    same(rep.images[0], pixels(orig.pngs[0]), f"img2img {sampler} replay")


def test_img2img_batch_replayed_whole(webui):
    run = dict(sampler_name="Euler a", batch_size=2)
    orig = webui.img2img(init_image(), raiiaf={}, seed=73, **run)
    sides = sidecars_of(orig)
    webui.txt2img(seed=74, sampler_name="Euler")
    rep = webui.img2img(init_image(), raiiaf={"files": [str(s) for s in sides]}, seed=6, **run)
    for i, png in enumerate(orig.pngs):
        same(rep.images[i], pixels(png), f"img2img batch image {i}")


def test_inpaint_replay(webui):
    mask = np.zeros((64, 64, 3), np.uint8)
    mask[16:48, 16:48] = 255
    payload = dict(sampler_name="Euler a", mask=b64_png(mask), inpainting_fill=1)
    orig = webui.img2img(init_image(), raiiaf={}, seed=75, **payload)
    (side,) = sidecars_of(orig)
    webui.txt2img(seed=76, sampler_name="Euler")
    rep = webui.img2img(init_image(), raiiaf={"files": [str(side)]}, seed=8, **payload)
    same(rep.images[0], pixels(orig.pngs[0]), "inpaint replay")


def b64_png(arr: np.ndarray) -> str:
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()
