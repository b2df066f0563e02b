"""``KDiffusionSampler``: the webui's wrapper around k-diffusion's sampling functions
(the real ``k_diffusion.sampling`` from PyPI's k-diffusion), with a CFG denoiser over the
tiny model."""

from __future__ import annotations

import importlib.util
import inspect
import math
import sys
import types

import torch

from modules import script_callbacks, sd_models, sd_samplers_common, shared


def _k_sampling():
    """``k_diffusion.sampling`` without the package's ``__init__`` (which imports its
    training stack: clip, clean-fid, wandb...); sampling.py and utils.py are unchanged."""
    if "k_diffusion.sampling" in sys.modules:
        return sys.modules["k_diffusion.sampling"]
    if "k_diffusion" not in sys.modules:
        spec = importlib.util.find_spec("k_diffusion")
        if spec is None:
            raise ImportError("k-diffusion is not installed (tests/a1111/requirements-nodeps.txt)")
        pkg = types.ModuleType("k_diffusion")
        pkg.__path__ = list(spec.submodule_search_locations)
        pkg.__file__ = spec.origin
        sys.modules["k_diffusion"] = pkg
    import k_diffusion.sampling

    return k_diffusion.sampling


k_sampling = _k_sampling()

#: (label, k-diffusion function, options) as in the webui's sampler list.
samplers_k_diffusion = [
    ("Euler a", "sample_euler_ancestral", {"uses_ensd": True}),
    ("Euler", "sample_euler", {}),
    ("Heun", "sample_heun", {"second_order": True}),
    ("LMS", "sample_lms", {}),
    ("DPM2 a", "sample_dpm_2_ancestral", {"uses_ensd": True, "second_order": True}),
    ("DPM++ 2M", "sample_dpmpp_2m", {}),
    ("DPM++ 2S a", "sample_dpmpp_2s_ancestral", {"uses_ensd": True, "second_order": True}),
    ("DPM++ SDE", "sample_dpmpp_sde", {"second_order": True, "brownian_noise": True}),
    ("DPM++ 2M SDE", "sample_dpmpp_2m_sde", {"brownian_noise": True}),
]
SAMPLERS = {label: (fn, opts) for label, fn, opts in samplers_k_diffusion}


class CFGDenoiser:
    def __init__(self, model: sd_models.TinySD):
        self.model = model

    def __call__(self, x, sigma, cond=None, uncond=None, cond_scale=1.0):
        sd_samplers_common.check_interrupted()
        out = []
        for i in range(x.shape[0]):
            xi, si = x[i : i + 1], sigma[i : i + 1]
            c = self.model.denoise(xi, si, cond[i])
            u = self.model.denoise(xi, si, uncond[i])
            out.append(u + (c - u) * cond_scale)
        return torch.cat(out)


class KDiffusionSampler:
    def __init__(self, name: str, sd_model: sd_models.TinySD):
        self.name = name
        self.funcname, self.options = SAMPLERS[name]
        self.func = getattr(k_sampling, self.funcname)
        self.model = sd_model
        self.model_wrap_cfg = CFGDenoiser(sd_model)
        self.p = None

    def initialize(self, p) -> dict:
        """``TorchHijack`` in place, then the sampler's keyword arguments: eta (``p.eta``,
        else ``opts.eta_ancestral``) and the sigma values from ``p`` where the function
        takes them."""
        self.p = p
        k_sampling.torch = sd_samplers_common.TorchHijack(p)
        kwargs = {}
        params = inspect.signature(self.func).parameters
        for name in ("s_churn", "s_tmin", "s_tmax", "s_noise"):
            if name in params and getattr(p, name, None) is not None:
                kwargs[name] = getattr(p, name)
        # As the webui's Sampler.initialize: a setting that is not the sampler's default
        # wins over p's value (and is written back to p).
        for name, default in SAMPLER_DEFAULTS.items():
            value = getattr(shared.opts, name)
            if name == "s_tmax":
                value = value or default
            if name in kwargs and value != default:
                kwargs[name] = value
                setattr(p, name, value)
        if "eta" in params:
            eta = getattr(p, "eta", None)
            kwargs["eta"] = shared.opts.eta_ancestral if eta is None else eta
        return kwargs

    def create_noise_sampler(self, x, sigmas, p):
        """The SDE samplers' Brownian tree, one per image seed of this batch (so an image
        does not depend on its batch), unless ``no_dpmpp_sde_batch_determinism``: then
        k-diffusion seeds one tree for the whole batch from the global generator."""
        if shared.opts.no_dpmpp_sde_batch_determinism:
            return None
        lo, hi = sigmas[sigmas > 0].min(), sigmas.max()
        seeds = p.all_seeds[p.iteration * p.batch_size : (p.iteration + 1) * p.batch_size]
        return k_sampling.BrownianTreeNoiseSampler(x, lo, hi, seed=seeds)

    def _noise_sampler_kwargs(self, x, sigmas, p) -> dict:
        if not self.options.get("brownian_noise"):
            return {}
        return {"noise_sampler": self.create_noise_sampler(x, sigmas, p)}

    def get_sigmas(self, p, steps: int) -> torch.Tensor:
        scheduler = getattr(p, "scheduler", None) or "Automatic"
        if self.p is not None and getattr(self.p, "is_hr_pass", False):
            scheduler = getattr(p, "hr_scheduler", None) or scheduler
        if scheduler == "Exponential":
            return k_sampling.get_sigmas_exponential(steps, SIGMA_MIN, SIGMA_MAX)
        if scheduler == "Uniform":
            return k_sampling.get_sigmas_polyexponential(steps, SIGMA_MIN, SIGMA_MAX, 1.0)
        return k_sampling.get_sigmas_karras(steps, SIGMA_MIN, SIGMA_MAX)

    def _extra_args(self, p, c, uc):
        return {"cond": c, "uncond": uc, "cond_scale": p.cfg_scale}

    def _launch(self, fn):
        try:
            return fn()
        except sd_samplers_common.InterruptedException:
            return self.last_latent

    def sample(
        self, p, x, conditioning, unconditional_conditioning, steps=None, image_conditioning=None
    ):
        steps = steps or p.steps
        kwargs = self.initialize(p)
        sigmas = self.get_sigmas(p, steps)
        if shared.opts.sgm_noise_multiplier:
            x = x * math.sqrt(1.0 + float(sigmas[0]) ** 2.0)
        else:
            x = x * sigmas[0]
        self.last_latent = x
        kwargs.update(self._noise_sampler_kwargs(x, sigmas, p))
        extra = self._extra_args(p, conditioning, unconditional_conditioning)
        return self._launch(
            lambda: self.func(
                self.model_wrap_cfg, x, sigmas, extra_args=extra, disable=True, **kwargs
            )
        )

    def sample_img2img(
        self,
        p,
        x,
        noise,
        conditioning,
        unconditional_conditioning,
        steps=None,
        image_conditioning=None,
    ):
        steps, t_enc = sd_samplers_common.setup_img2img_steps(p, steps)
        kwargs = self.initialize(p)
        sigmas = self.get_sigmas(p, steps)
        sigma_sched = sigmas[steps - t_enc - 1 :]
        xi = x + noise * sigma_sched[0]
        extra_noise = float(shared.opts.img2img_extra_noise or 0)
        if extra_noise > 0:
            p.extra_generation_params["Extra noise"] = extra_noise
            params = script_callbacks.ExtraNoiseParams(noise, x, xi)
            script_callbacks.extra_noise_callback(params)
            noise = params.noise
            xi = xi + noise * extra_noise
        self.last_latent = xi
        kwargs.update(self._noise_sampler_kwargs(xi, sigma_sched, p))
        extra = self._extra_args(p, conditioning, unconditional_conditioning)
        return self._launch(
            lambda: self.func(
                self.model_wrap_cfg, xi, sigma_sched, extra_args=extra, disable=True, **kwargs
            )
        )


SAMPLER_DEFAULTS = {"s_churn": 0.0, "s_tmin": 0.0, "s_tmax": float("inf"), "s_noise": 1.0}
SIGMA_MIN = sd_models.SIGMA_MIN
SIGMA_MAX = sd_models.SIGMA_MAX


def create_sampler(name: str, model):
    from modules import sd_samplers_timesteps

    if name in sd_samplers_timesteps.SAMPLERS:
        return sd_samplers_timesteps.CompVisSampler(name, model)
    if name not in SAMPLERS:
        raise ValueError(f"bad sampler name: {name}")
    return KDiffusionSampler(name, model)
