"""What the k-diffusion samplers share: ``TorchHijack`` (their ``torch.randn_like``
draws from ``p.rng``), img2img step set-up, the interrupt exception."""

from __future__ import annotations

import torch

from modules import shared


class InterruptedException(BaseException):
    pass


class TorchHijack:
    """Replaces ``k_diffusion.sampling.torch``: ``randn_like`` returns the next draw of
    the run's ``ImageRNG`` (per-image generators; whatever ``x`` is), everything else is
    torch. ``p.rng`` is read once, when the sampler starts."""

    def __init__(self, p):
        self.rng = p.rng

    def __getattr__(self, item):
        if item == "randn_like":
            return self.randn_like
        if hasattr(torch, item):
            return getattr(torch, item)
        raise AttributeError(item)

    def randn_like(self, x):
        return self.rng.next()


def setup_img2img_steps(p, steps=None):
    steps = steps or p.steps
    t_enc = int(min(p.denoising_strength, 0.999) * steps)
    return steps, t_enc


def check_interrupted():
    if shared.state.interrupted:
        raise InterruptedException()
