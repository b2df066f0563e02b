"""Per-step noise of ancestral and SDE samplers for images replayed out of their batch.

ComfyUI's k-diffusion samplers build their per-step noise from the whole batch ``x``
and the seed: ``default_noise_sampler`` draws ``randn(x.size())`` from one generator,
``BrownianTreeNoiseSampler`` grows one Brownian tree of ``x``'s shape. Image 2 of a
batch of 3 therefore gets other per-step noise than the same image sampled alone.
To regenerate it alone, the noise sampler is built for the original batch shape and
hands out the image's rows only. :func:`original_batch` says so for one sampling run;
outside it (and for anything unexpected) both constructors behave as ComfyUI's.

Both names are looked up in ``comfy.k_diffusion.sampling``'s globals at each call, by
every built-in sampler, so replacing them there reaches them all; the replacement for
the class is a subclass, so other code's ``isinstance`` checks still hold.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import torch

# (original batch size, the rows this run samples, in its batch order)
_spec: contextvars.ContextVar[tuple[int, tuple[int, ...]] | None] = contextvars.ContextVar(
    "raiiaf_original_batch", default=None
)
_installed = False


@contextlib.contextmanager
def original_batch(batch_size: int, rows: tuple[int, ...]) -> Iterator[None]:
    """Within: noise samplers of a run over ``len(rows)`` images draw for
    ``batch_size`` images and keep ``rows``. A full batch in order needs nothing."""
    if tuple(rows) == tuple(range(batch_size)):
        yield
        return
    token = _spec.set((int(batch_size), tuple(int(r) for r in rows)))
    try:
        yield
    finally:
        _spec.reset(token)


def _wanted(x: torch.Tensor, seed) -> tuple[int, list[int]] | None:
    spec = _spec.get()
    if spec is None or seed is None or isinstance(seed, (list, tuple)):
        return None
    batch, rows = spec
    if x.dim() == 0 or x.shape[0] != len(rows):
        return None
    return batch, list(rows)


def install() -> None:
    global _installed
    if _installed:
        return
    import comfy.k_diffusion.sampling as ks

    original_default = ks.default_noise_sampler
    original_tree = ks.BrownianTreeNoiseSampler

    def default_noise_sampler(x, seed=None):
        wanted = _wanted(x, seed)
        if wanted is None:
            return original_default(x, seed=seed)
        batch, rows = wanted
        full = torch.empty((batch, *x.shape[1:]), dtype=x.dtype, layout=x.layout, device=x.device)
        sample = original_default(full, seed=seed)
        return lambda sigma, sigma_next: sample(sigma, sigma_next)[rows]

    class BrownianTreeNoiseSampler(original_tree):
        def __init__(self, x, *args, **kwargs):
            seed = kwargs.get("seed", args[2] if len(args) > 2 else None)
            wanted = _wanted(x, seed)
            self._raiiaf_rows = None
            if wanted is not None:
                batch, self._raiiaf_rows = wanted
                x = torch.zeros((batch, *x.shape[1:]), dtype=x.dtype, device=x.device)
            super().__init__(x, *args, **kwargs)

        def __call__(self, sigma, sigma_next):
            out = super().__call__(sigma, sigma_next)
            return out if self._raiiaf_rows is None else out[self._raiiaf_rows]

    BrownianTreeNoiseSampler.__name__ = original_tree.__name__
    BrownianTreeNoiseSampler.__qualname__ = original_tree.__qualname__
    default_noise_sampler.__wrapped__ = original_default  # type: ignore[attr-defined]
    ks.default_noise_sampler = default_noise_sampler
    ks.BrownianTreeNoiseSampler = BrownianTreeNoiseSampler
    _installed = True
