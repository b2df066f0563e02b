"""A tiny deterministic stand-in for a checkpoint: a fixed random conv net as the
eps-predicting U-Net (k-diffusion's denoiser convention, ``denoised = x - sigma *
eps``), a prompt embedding from a hash, and a linear 4->3 "VAE" with 8x nearest
upsampling. Every image of a batch is computed on its own, so an image does not
depend on its batch."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import torch
import torch.nn.functional as F

SIGMA_MIN = 0.0292
SIGMA_MAX = 14.6146


def _weights(seed: int, *shape: int, scale: float) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g) * scale


class TinySD:
    latent_channels = 4

    def __init__(self) -> None:
        self.w1 = _weights(1, 16, 4, 3, 3, scale=0.25)
        self.b1 = _weights(2, 16, scale=0.1)
        self.w2 = _weights(3, 4, 16, 3, 3, scale=0.08)
        self.embed = _weights(4, 16, 32, scale=0.5)
        self.rgb = _weights(5, 3, 4, scale=0.6)
        self.rgb_bias = _weights(6, 3, scale=0.1)
        self.rgb_pinv = torch.linalg.pinv(self.rgb)
        self.sd_checkpoint_info = SimpleNamespace(
            name="tiny-sd.safetensors",
            name_for_extra="tiny-sd",
            title="tiny-sd.safetensors [0123456789]",
            filename="/home/alice/secret-models/tiny-sd.safetensors",
            sha256="0123456789" + "ab" * 27,
            shorthash="0123456789",
        )
        self.sd_model_hash = "0123456789"
        # SD's training schedule (scaled linear betas, 1000 steps): sqrt((1 - a) / a)
        # runs from SIGMA_MIN to SIGMA_MAX, the sigma-space sampler's range.
        betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
        self.alphas_cumprod = torch.cumprod(1.0 - betas, dim=0).to(torch.float32)
        self.sd_model_checkpoint = self.sd_checkpoint_info.filename

    def cond(self, prompt: str) -> torch.Tensor:
        digest = hashlib.sha256(prompt.encode()).digest()
        bits = torch.tensor(
            [(digest[i // 8] >> (i % 8)) & 1 for i in range(32)], dtype=torch.float32
        )
        return self.embed @ (bits * 2 - 1) / 32**0.5

    def eps(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """One image: x (1, 4, h, w), sigma (1,), cond (16,)."""
        c_in = 1.0 / torch.sqrt(sigma**2 + 1.0)
        h = F.conv2d(x * c_in[:, None, None, None], self.w1, self.b1 + cond, padding=1)
        return F.conv2d(torch.tanh(h), self.w2, padding=1) + x * c_in[:, None, None, None] * 0.5

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return x - sigma[:, None, None, None] * self.eps(x, sigma, cond)

    def decode_first_stage(self, z: torch.Tensor) -> torch.Tensor:
        out = []
        for zi in z:
            rgb = torch.einsum("ck,khw->chw", self.rgb, zi) + self.rgb_bias[:, None, None]
            rgb = torch.tanh(rgb)
            out.append(rgb.repeat_interleave(8, dim=1).repeat_interleave(8, dim=2))
        return torch.stack(out)

    def encode_first_stage(self, image: torch.Tensor) -> torch.Tensor:
        """image (B, 3, H, W) in [-1, 1] -> latent (B, 4, H/8, W/8)."""
        pooled = F.avg_pool2d(image, 8).clamp(-0.999, 0.999)
        pre = torch.atanh(pooled) - self.rgb_bias[None, :, None, None]
        return torch.einsum("kc,bchw->bkhw", self.rgb_pinv, pre)

    def encode_sample(self, image: torch.Tensor) -> torch.Tensor:
        """As the webui's ``get_first_stage_encoding(encode_first_stage(...))``: a sample of
        the encoder's latent distribution, drawn from torch's *global* generator."""
        mean = self.encode_first_stage(image)
        return mean + 0.05 * torch.randn(mean.shape)


def load_model() -> TinySD:
    return TinySD()
