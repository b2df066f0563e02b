"""The webui's timestep ("CompVis") samplers, here DDIM: the model is called with a
timestep instead of a sigma and predicts the noise; ``x`` is used as drawn (no sigma
scaling); with eta > 0 each step adds ``sigma_t * randn_like(x)``, drawn through
``k_diffusion.sampling.torch`` (``TorchHijack``: the run's ``p.rng``). eta comes from
``p.eta`` or else ``opts.eta_ddim``. Timesteps: every ``1000 // steps``-th of the 1000
training steps, plus one, clipped to 999."""

from __future__ import annotations

import torch

from modules import sd_samplers_common, sd_samplers_kdiffusion, shared

k_sampling = sd_samplers_kdiffusion.k_sampling

SAMPLERS = {"DDIM": "ddim"}


def ddim(model, x, timesteps, extra_args=None, eta=0.0):
    """DDIM over ``timesteps`` (ascending), from the last one down."""
    acp = model.alphas_cumprod
    alphas = acp[timesteps]
    prev_steps = torch.nn.functional.pad(timesteps[:-1], pad=(1, 0))
    alphas_prev = acp[prev_steps].to(torch.float64)
    sqrt_one_minus = torch.sqrt(1 - alphas)
    a64 = alphas.to(torch.float64)
    sigmas = eta * torch.sqrt((1 - alphas_prev) / (1 - a64) * (1 - a64 / alphas_prev))
    extra_args = extra_args or {}
    ones = x.new_ones((x.shape[0],))
    ones4 = x.new_ones((x.shape[0], 1, 1, 1))
    for i in range(len(timesteps) - 1):
        k = len(timesteps) - 1 - i
        eps = model(x, timesteps[k].item() * ones, **extra_args)
        a_t = alphas[k].item() * ones4
        a_prev = alphas_prev[k].item() * ones4
        sigma_t = sigmas[k].item() * ones4
        pred_x0 = (x - sqrt_one_minus[k].item() * ones4 * eps) / a_t.sqrt()
        direction = (1.0 - a_prev - sigma_t**2).sqrt() * eps
        noise = sigma_t * k_sampling.torch.randn_like(x)
        x = a_prev.sqrt() * pred_x0 + direction + noise
    return x


class CFGTimestepsDenoiser:
    """Noise prediction with CFG at a timestep, from the tiny model's sigma-space net."""

    def __init__(self, model):
        self.model = model
        self.alphas_cumprod = model.alphas_cumprod

    def __call__(self, x, t, cond=None, uncond=None, cond_scale=1.0):
        sd_samplers_common.check_interrupted()
        out = []
        for i in range(x.shape[0]):
            a = self.alphas_cumprod[int(t[i].item())]
            sigma = ((1 - a) / a).sqrt().reshape(1)
            xi = x[i : i + 1] / a.sqrt()
            c = self.model.eps(xi, sigma, cond[i])
            u = self.model.eps(xi, sigma, uncond[i])
            out.append(u + (c - u) * cond_scale)
        return torch.cat(out)


class CompVisSampler:
    def __init__(self, name: str, sd_model):
        self.name = name
        self.func = globals()[SAMPLERS[name]]
        self.model = sd_model
        self.model_wrap_cfg = CFGTimestepsDenoiser(sd_model)
        self.options = {"uses_ensd": True}
        self.p = None

    def initialize(self, p) -> dict:
        self.p = p
        k_sampling.torch = sd_samplers_common.TorchHijack(p)
        eta = getattr(p, "eta", None)
        return {"eta": shared.opts.eta_ddim if eta is None else eta}

    def get_timesteps(self, p, steps: int) -> torch.Tensor:
        if shared.opts.always_discard_next_to_last_sigma:
            steps += 1
        return torch.clip(torch.arange(0, 1000, 1000 // steps) + 1, 0, 999)

    def _launch(self, fn):
        try:
            return fn()
        except sd_samplers_common.InterruptedException:
            return self.last_latent

    def _extra(self, p, c, uc):
        return {"cond": c, "uncond": uc, "cond_scale": p.cfg_scale}

    def sample(self, p, x, conditioning, unconditional_conditioning, steps=None, **_):
        steps = steps or p.steps
        timesteps = self.get_timesteps(p, steps)
        kwargs = self.initialize(p)
        self.last_latent = x
        extra = self._extra(p, conditioning, unconditional_conditioning)
        return self._launch(
            lambda: self.func(self.model_wrap_cfg, x, timesteps, extra_args=extra, **kwargs)
        )

    def sample_img2img(
        self, p, x, noise, conditioning, unconditional_conditioning, steps=None, **_
    ):
        steps, t_enc = sd_samplers_common.setup_img2img_steps(p, steps)
        timesteps = self.get_timesteps(p, steps)
        kwargs = self.initialize(p)
        a = self.model.alphas_cumprod[timesteps[t_enc]]
        xi = x * a.sqrt() + noise * (1 - a).sqrt()
        self.last_latent = xi
        extra = self._extra(p, conditioning, unconditional_conditioning)
        sched = timesteps[:t_enc]
        return self._launch(
            lambda: self.func(self.model_wrap_cfg, xi, sched, extra_args=extra, **kwargs)
        )
