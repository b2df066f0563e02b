"""Noise generation as in the webui since v1.6: ``ImageRNG`` holds one generator per
image seed, ``first()`` draws each image's initial noise (variation seed, seed resize,
then re-seeding by ENSD), later ``next()`` calls draw the per-step ancestral noise."""

from __future__ import annotations

import torch

from modules import devices, shared


def get_noise_source_type() -> str:
    return shared.opts.randn_source


def create_generator(seed: int) -> torch.Generator:
    if get_noise_source_type() == "NV":
        raise NotImplementedError("the harness has no Philox (NV) generator")
    return torch.Generator(devices.cpu).manual_seed(int(seed))


def manual_seed(seed: int) -> None:
    torch.manual_seed(int(seed))


def randn(seed: int, shape, generator: torch.Generator | None = None) -> torch.Tensor:
    manual_seed(seed)
    return torch.randn(tuple(shape), device=devices.cpu, generator=generator).to(devices.device)


def randn_without_seed(shape, generator: torch.Generator | None = None) -> torch.Tensor:
    return torch.randn(tuple(shape), device=devices.cpu, generator=generator).to(devices.device)


def slerp(val: float, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between two noise tensors."""
    a = low / torch.linalg.vector_norm(low)
    b = high / torch.linalg.vector_norm(high)
    cos = torch.clamp((a * b).sum(), -1.0, 1.0)
    if cos > 0.9995:
        return low * (1.0 - val) + high * val
    omega = torch.acos(cos)
    s = torch.sin(omega)
    return (torch.sin((1.0 - val) * omega) / s) * low + (torch.sin(val * omega) / s) * high


class ImageRNG:
    def __init__(
        self,
        shape,
        seeds,
        subseeds=None,
        subseed_strength=0.0,
        seed_resize_from_h=0,
        seed_resize_from_w=0,
    ):
        self.shape = tuple(int(x) for x in shape)
        self.seeds = list(seeds)
        self.subseeds = list(subseeds) if subseeds is not None else None
        self.subseed_strength = subseed_strength
        self.seed_resize_from_h = seed_resize_from_h
        self.seed_resize_from_w = seed_resize_from_w
        self.generators = [create_generator(s) for s in self.seeds]
        self.is_first = True

    def first(self) -> torch.Tensor:
        c, h, w = self.shape
        rh = self.seed_resize_from_h // 8 if self.seed_resize_from_h > 0 else h
        rw = self.seed_resize_from_w // 8 if self.seed_resize_from_w > 0 else w
        noise_shape = (c, rh, rw)
        xs = []
        for i, (seed, gen) in enumerate(zip(self.seeds, self.generators)):
            sub = None
            if self.subseeds is not None and self.subseed_strength != 0:
                sub_seed = self.subseeds[i] if i < len(self.subseeds) else 0
                sub = randn(sub_seed, noise_shape)
            noise = randn(seed, noise_shape, generator=gen)
            if sub is not None:
                noise = slerp(self.subseed_strength, noise, sub)
            if noise_shape != self.shape:
                fresh = randn(seed, self.shape, generator=gen)
                dy, dx = (h - rh) // 2, (w - rw) // 2
                ty, tx = max(-dy, 0), max(-dx, 0)
                oy, ox = max(dy, 0), max(dx, 0)
                hh, ww = min(h, rh), min(w, rw)
                fresh[:, oy : oy + hh, ox : ox + ww] = noise[:, ty : ty + hh, tx : tx + ww]
                noise = fresh
            xs.append(noise)
        delta = int(shared.opts.eta_noise_seed_delta or 0)
        if delta:
            self.generators = [create_generator(s + delta) for s in self.seeds]
        return torch.stack(xs).to(shared.device)

    def next(self) -> torch.Tensor:
        if self.is_first:
            self.is_first = False
            return self.first()
        xs = [randn_without_seed(self.shape, generator=g) for g in self.generators]
        return torch.stack(xs).to(shared.device)
