"""Pixel and file checks shared by the real-webui tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import raiiaf_rs

from .harness import Result, pixels

#: An image of a batch rendered alone differs from the batch's rendering by the model's batch
#: arithmetic (README, "the model's batch variance"): at most 1/255, in a few values.
BATCH_MAX_DIFF = 1
BATCH_MAX_FRACTION = 0.005


def same(a: np.ndarray, b: np.ndarray, what: str) -> None:
    assert a.shape == b.shape, f"{what}: shapes {a.shape} != {b.shape}"
    diff = np.abs(a - b)
    assert not diff.any(), (
        f"{what}: not pixel-identical: max {diff.max()}/255 on "
        f"{np.count_nonzero(diff) / diff.size:.2%} of the values"
    )


def within_batch_variance(a: np.ndarray, b: np.ndarray, what: str) -> None:
    diff = np.abs(a - b)
    fraction = np.count_nonzero(diff) / diff.size
    assert diff.max() <= BATCH_MAX_DIFF and fraction <= BATCH_MAX_FRACTION, (
        f"{what}: beyond the batch variance: max {diff.max()}/255 on {fraction:.3%} of the values"
    )


def sidecars_of(res: Result) -> list[Path]:
    """Each saved image's sidecar (same name, .raiiaf), checked to exist and verify."""
    pngs = res.pngs
    assert pngs, f"nothing was saved: {res.saved}"
    out = []
    for png in pngs:
        side = png.with_suffix(".raiiaf")
        assert side.is_file(), f"no sidecar beside {png.name}: {[p.name for p in res.saved]}"
        raiiaf_rs.read(side, verify=True)
        out.append(side)
    assert len(res.sidecars) == len(pngs), res.saved
    return out


def saved_equals_returned(res: Result) -> None:
    """The saved PNGs are the images the API returned (the reference every replay is
    compared with)."""
    assert len(res.pngs) == len(res.images), (res.pngs, len(res.images))
    for png, img in zip(res.pngs, res.images):
        same(pixels(png), img, f"saved {png.name} vs the API's image")


def noise_of(side: Path, name: str = "initial_noise") -> np.ndarray:
    art = raiiaf_rs.read(side, verify=True)
    assert name in art.latents, f"{side.name} has no {name}: {list(art.latents)}"
    return np.asarray(art.latents[name])
