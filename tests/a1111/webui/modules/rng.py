"""Noise generation as in the webui since v1.6: ``ImageRNG`` holds one generator per
image seed, ``first()`` draws each image's initial noise (variation seed, seed resize,
then re-seeding by ENSD), later ``next()`` calls draw the per-step ancestral noise.

``opts.randn_source``: "GPU" (a torch generator on ``devices.device``), "CPU" (a CPU
generator, the noise moved to the device), "NV" (``rng_philox``, numpy; a global Philox
generator stands for torch's global one). In Forge mode ``forge_try_reproduce``
("ComfyUI"/"DrawThings") forces CPU, and a draw with a generator first sets the global
seed to ``(seed + 100000) % 65536`` instead of the seed.

Variation seeds and "resize seed from" draw from the *global* generator (seeded by the
subseed / seed), not the image's own generator; the variation mix normalises along
dimension 1 and, for nearly parallel tensors, mixes linearly with the weights the webui
uses (``val`` on the image noise, ``1 - val`` on the variation noise).
"""

from __future__ import annotations

import torch

from modules import devices, rng_philox, scripts, shared

_nv_global = rng_philox.Generator(0)


def get_noise_source_type() -> str:
    if scripts.MODE == "forge" and getattr(shared.opts, "forge_try_reproduce", None) in (
        "ComfyUI",
        "DrawThings",
    ):
        return "CPU"
    return shared.opts.randn_source


def _device() -> torch.device:
    return devices.cpu if get_noise_source_type() == "CPU" else devices.device


def create_generator(seed: int):
    if get_noise_source_type() == "NV":
        return rng_philox.Generator(seed)
    return torch.Generator(_device()).manual_seed(int(seed))


def manual_seed(seed: int) -> None:
    global _nv_global
    if get_noise_source_type() == "NV":
        _nv_global = rng_philox.Generator(seed)
    else:
        torch.manual_seed(int(seed))


def randn(seed: int, shape, generator=None) -> torch.Tensor:
    if scripts.MODE == "forge" and generator is not None:
        manual_seed((int(seed) + 100000) % 65536)
    else:
        manual_seed(seed)
    return randn_without_seed(shape, generator=generator)


def randn_without_seed(shape, generator=None) -> torch.Tensor:
    if get_noise_source_type() == "NV":
        source = generator if generator is not None else _nv_global
        return torch.asarray(source.randn(tuple(shape)), device=devices.device)
    return torch.randn(tuple(shape), device=_device(), generator=generator).to(devices.device)


def slerp(val: float, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of two noise tensors, as the webui does it."""
    a = low / torch.norm(low, dim=1, keepdim=True)
    b = high / torch.norm(high, dim=1, keepdim=True)
    cos = (a * b).sum(1)
    if cos.mean() > 0.9995:
        return low * val + high * (1 - val)
    angle = torch.acos(cos)
    s = torch.sin(angle)
    w_low = (torch.sin((1.0 - val) * angle) / s).unsqueeze(1)
    w_high = (torch.sin(val * angle) / s).unsqueeze(1)
    return w_low * low + w_high * high


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
        resized = self.seed_resize_from_h > 0 and self.seed_resize_from_w > 0
        small = (
            (c, int(self.seed_resize_from_h) // 8, int(self.seed_resize_from_w) // 8)
            if resized
            else self.shape
        )
        xs = []
        for i, (seed, gen) in enumerate(zip(self.seeds, self.generators)):
            variation = None
            if self.subseeds is not None and self.subseed_strength != 0:
                sub_seed = self.subseeds[i] if i < len(self.subseeds) else 0
                variation = randn(sub_seed, small)
            noise = randn(seed, small) if small != self.shape else randn(seed, small, gen)
            if variation is not None:
                noise = slerp(self.subseed_strength, noise, variation)
            if small != self.shape:
                # The old-size noise pasted, centred, into a fresh draw at the new size.
                full = randn(seed, self.shape, gen)
                off_x, off_y = (w - small[2]) // 2, (h - small[1]) // 2
                cw = small[2] if off_x >= 0 else small[2] + 2 * off_x
                ch = small[1] if off_y >= 0 else small[1] + 2 * off_y
                dst_x, dst_y = max(off_x, 0), max(off_y, 0)
                src_x, src_y = max(-off_x, 0), max(-off_y, 0)
                full[:, dst_y : dst_y + ch, dst_x : dst_x + cw] = noise[
                    :, src_y : src_y + ch, src_x : src_x + cw
                ]
                noise = full
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
