"""Stand-ins the extension puts in place of the webui's ``p.rng`` and ``p.sampler``: the
first draw with the stored noise written into it, and the stops that must raise where
the webui does not catch them (a hook's exception would only be logged)."""

from __future__ import annotations

from typing import Any

import torch

from . import replay
from .run_state import Run, global_index, is_img2img


class StoppedRng:
    """Stands in for ``p.rng`` when the run must stop: the webui draws the noise with
    ``p.rng.next()`` outside any script try/except, so the error ends the generation
    and the UI shows its message (a hook's exception would only be logged)."""

    def __init__(self, inner: Any, message: str):
        self._inner = inner
        self._message = message

    def next(self):
        raise replay.ReplayError(self._message)

    first = next

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class StoppedSampler:
    """Stands in for ``p.sampler`` when the run must stop after its noise was drawn
    (a hook's exception would only be logged): the webui calls the sampler outside any
    script try/except, so the error ends the generation and its message reaches the UI
    and the API response (an interrupt would leave an image without a reason, and make
    the webui fail later, e.g. in ``test_for_nans`` after a non-latent hires upscale)."""

    def __init__(self, inner: Any, message: str):
        self._inner = inner
        self._message = message

    def sample(self, *args: Any, **kwargs: Any):
        raise replay.ReplayError(self._message)

    sample_img2img = sample

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def stop_sampler(p: Any, run: Run) -> None:
    """Make the next sampling call raise ``run.stop``."""
    sampler = getattr(p, "sampler", None)
    if run.stop is not None and sampler is not None and not isinstance(sampler, StoppedSampler):
        p.sampler = StoppedSampler(sampler, run.stop)


class DrawRng:
    """Wraps ``p.rng`` for the first pass (the txt2img/img2img draw). Its first draw is
    the webui's own (so every image's generator advances exactly as in the original run)
    with the stored noise then written into it in place, *before* any hook sees it: a
    script that derives its own noise from it (Forge's ``p.modified_noise``, e.g. the
    inpaint preprocessor's ``noise + latent / sigma_max``) then derives it from the
    stored noise, as in the original run. Later draws (ancestral and DDIM per-step
    noise through ``TorchHijack``) pass through. Without ``process_before_every_sampling``
    (A1111 1.6-1.9) the first draw is also where the noise is captured: ``capture`` is
    then the capture hook, called as ``capture(p, run, "first", noise)``."""

    def __init__(self, inner: Any, p: Any, run: Run, capture: Any = None):
        self._inner = inner
        self._p = p
        self._run = run
        self._capture = capture
        self._drawn = False

    def next(self):
        x = self._inner.next()
        if not self._drawn:
            self._drawn = True
            replace_at_draw(self._p, self._run, x)
            if self._capture is not None:
                # img2img multiplies the draw by the noise multiplier next, in place; the
                # file holds the noise after it (as with the sampling hook).
                m = 1.0
                if is_img2img(self._p):
                    m = float(getattr(self._p, "initial_noise_multiplier", 1.0) or 1.0)
                self._capture(self._p, self._run, "first", x * m if m != 1.0 else x)
        return x

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def replace_at_draw(p: Any, run: Run, x: Any) -> None:
    """The stored first-pass noise into the freshly drawn tensor. img2img multiplies it by
    the noise multiplier next (in place), so there the value written is one whose product
    with the multiplier is the stored value, found per element (the hook then writes the
    exact stored values in any case); where no float does that, ``run.draw_inexact`` says
    so, for a script that reads the noise between the draw and the hook."""
    plan = run.plan
    if plan is None or run.stop is not None or "first" in plan.skip:
        return
    if tuple(x.shape[1:]) != _first_shape(plan, p) or x.shape[0] != _batch(p):
        return  # the hook reports it
    multiplier = 1.0
    if is_img2img(p):
        multiplier = float(getattr(p, "initial_noise_multiplier", 1.0) or 1.0)
    for i in range(int(x.shape[0])):
        arr = plan.source(global_index(p, i)).noise("first")
        if arr is None:
            continue
        stored = torch.from_numpy(arr.copy()).to(device=x.device, dtype=x.dtype)
        if multiplier != 1.0:
            stored = _pre_multiplier(stored, multiplier, run)
        x[i].copy_(stored)


def _pre_multiplier(stored: Any, m: float, run: Run) -> Any:
    """y with ``y * m == stored`` element-wise (the webui's in-place ``x *= m``), trying
    the quotient and its float neighbours."""
    y = stored / m
    for direction in (float("inf"), float("-inf")):
        wrong = (y * m) != stored
        if not bool(wrong.any()):
            return y
        step = torch.nextafter(y, torch.full_like(y, direction))
        y = torch.where(wrong & ((step * m) == stored), step, y)
    if bool(((y * m) != stored).any()):
        run.draw_inexact = True
    return y


def _first_shape(plan: replay.Plan, p: Any) -> tuple[int, ...]:
    arr = plan.source(global_index(p, 0)).noise("first")
    return tuple(arr.shape) if arr is not None else ()


def _batch(p: Any) -> int:
    return len(getattr(p, "seeds", None) or []) or int(getattr(p, "batch_size", 1))
