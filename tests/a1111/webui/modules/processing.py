"""``process_images`` with the webui's call order (shared/docs/a1111.md §1), the txt2img
(with the hires-fix second pass) and img2img (with mask and noise multiplier)
processing classes, and ``create_infotext``.

``scripts.MODE`` selects A1111 1.10 (default), Forge (``process_before_every_sampling``
twice in the hires pass and ``p.modified_noise``) or A1111 1.9 (no such hook)."""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from modules import images, launch_utils, rng, scripts, sd_samplers_kdiffusion, shared

opt_C = 4
opt_f = 8


def get_fixed_seed(seed: int | None) -> int:
    if seed is None or seed == "" or seed == -1:
        return int(random.randrange(4294967294))
    return int(seed)


def program_version() -> str | None:
    return launch_utils.git_tag()


def _quote(value: Any) -> str:
    text = str(value)
    return (
        json.dumps(text, ensure_ascii=False)
        if ("," in text or ":" in text or '"' in text)
        else text
    )


class StableDiffusionProcessing:
    def __init__(self, **kwargs: Any):
        self.prompt = ""
        self.negative_prompt = ""
        self.seed = -1
        self.subseed = -1
        self.subseed_strength = 0.0
        self.seed_resize_from_h = -1
        self.seed_resize_from_w = -1
        self.sampler_name = "Euler"
        self.scheduler = "Automatic"
        self.batch_size = 1
        self.n_iter = 1
        self.steps = 8
        self.cfg_scale = 5.0
        self.width = 64
        self.height = 64
        self.denoising_strength = None
        self.eta = None
        self.s_churn = None
        self.s_tmin = None
        self.s_tmax = None
        self.s_noise = None
        self.outpath_samples = "outputs"
        self.outpath_grids = "outputs-grids"
        self.do_not_save_samples = False
        self.do_not_save_grid = False
        self.extra_generation_params: dict[str, Any] = {}
        self.override_settings: dict[str, Any] = {}
        self.override_settings_restore_afterwards = True
        self.scripts = None
        self.script_args: list = []
        self.sd_model = shared.sd_model
        self.iteration = 0
        self.batch_index = 0
        self.is_hr_pass = False
        self.rng = None
        self.comments: dict[str, int] = {}
        self.sd_model_name = None
        self.sd_model_hash = None
        self.sd_vae_name = None
        self.sd_vae_hash = None
        if scripts.MODE == "forge":
            self.modified_noise = None
        for key, value in kwargs.items():
            setattr(self, key, value)
        if scripts.MODE == "a1111-1.9":  # 1.6-1.9 filled them in __post_init__
            self.fill_fields_from_opts()

    def fill_fields_from_opts(self) -> None:
        """As A1111 1.10 (and Forge/reForge): the sampler values come from the settings
        unless given, filled in ``process_images_inner`` (after ``before_process`` and the
        override settings; 1.6-1.9 did it in ``__post_init__``). s_tmax 0 means no limit."""
        o = shared.opts
        self.s_churn = o.s_churn if self.s_churn is None else self.s_churn
        self.s_tmin = o.s_tmin if self.s_tmin is None else self.s_tmin
        self.s_tmax = (o.s_tmax if self.s_tmax is None else self.s_tmax) or float("inf")
        self.s_noise = o.s_noise if self.s_noise is None else self.s_noise

    def close(self) -> None:
        """Called by the webui (``closing(p)``) after ``process_images``, even on an error."""
        self.sampler = None

    def comment(self, text: str) -> None:
        self.comments[text] = 1

    def setup_scripts(self) -> None:
        if self.scripts is not None:
            self.scripts.setup_scrips(self)

    def init(self, all_prompts, all_seeds, all_subseeds) -> None:
        pass

    def setup_conds(self) -> None:
        model = shared.sd_model
        self.c = [model.cond(t) for t in self.prompts]
        self.uc = [model.cond(t) for t in self.negative_prompts]

    def save_samples(self) -> bool:
        return bool(
            shared.opts.samples_save
            and not self.do_not_save_samples
            and (shared.opts.save_incomplete_images or not shared.state.interrupted)
        )

    def _new_rng(self, shape) -> rng.ImageRNG:
        return rng.ImageRNG(
            shape,
            self.seeds,
            subseeds=self.subseeds,
            subseed_strength=self.subseed_strength,
            seed_resize_from_h=self.seed_resize_from_h,
            seed_resize_from_w=self.seed_resize_from_w,
        )

    def _before_sampling(self, x, noise, c, uc):
        """The ``process_before_every_sampling`` call, and Forge's ``modified_noise``."""
        if scripts.MODE != "a1111-1.9":
            self.scripts.process_before_every_sampling(self, x=x, noise=noise, c=c, uc=uc)
        if scripts.MODE == "forge" and self.modified_noise is not None:
            noise = self.modified_noise
            self.modified_noise = None
        return noise


class StableDiffusionProcessingTxt2Img(StableDiffusionProcessing):
    def __init__(self, **kwargs: Any):
        self.enable_hr = False
        self.hr_scale = 2.0
        self.hr_upscaler = "Latent (nearest)"
        self.hr_second_pass_steps = 0
        self.hr_resize_x = 0
        self.hr_resize_y = 0
        self.hr_sampler_name = None
        self.hr_scheduler = None
        self.hr_upscale_to_x = 0
        self.hr_upscale_to_y = 0
        self.truncate_x = 0
        self.truncate_y = 0
        self.firstpass_image = None
        self.latent_scale_mode = None
        super().__init__(**kwargs)

    def calculate_target_resolution(self) -> None:
        """The hires size: scaled, or the resize target keeping the first pass's aspect
        ratio; with both width and height given at another ratio, the upscaled latent is
        larger than the target and ``truncate_x/y`` latent columns/rows get cropped."""
        self.truncate_x = self.truncate_y = 0
        if not self.hr_resize_x and not self.hr_resize_y:
            self.hr_upscale_to_x = int(self.width * self.hr_scale)
            self.hr_upscale_to_y = int(self.height * self.hr_scale)
        elif not self.hr_resize_y:
            self.hr_upscale_to_x = self.hr_resize_x
            self.hr_upscale_to_y = self.hr_resize_x * self.height // self.width
        elif not self.hr_resize_x:
            self.hr_upscale_to_x = self.hr_resize_y * self.width // self.height
            self.hr_upscale_to_y = self.hr_resize_y
        else:
            if self.width / self.height < self.hr_resize_x / self.hr_resize_y:
                self.hr_upscale_to_x = self.hr_resize_x
                self.hr_upscale_to_y = self.hr_resize_x * self.height // self.width
            else:
                self.hr_upscale_to_x = self.hr_resize_y * self.width // self.height
                self.hr_upscale_to_y = self.hr_resize_y
            self.truncate_x = (self.hr_upscale_to_x - self.hr_resize_x) // opt_f
            self.truncate_y = (self.hr_upscale_to_y - self.hr_resize_y) // opt_f

    def init(self, all_prompts, all_seeds, all_subseeds) -> None:
        if self.enable_hr:
            latent = str(self.hr_upscaler or "Latent").startswith("Latent")
            self.latent_scale_mode = {"mode": "nearest"} if latent else None
            self.calculate_target_resolution()
            self.extra_generation_params["Hires upscale"] = self.hr_scale
            self.extra_generation_params["Hires upscaler"] = self.hr_upscaler
            if self.hr_second_pass_steps:
                self.extra_generation_params["Hires steps"] = self.hr_second_pass_steps

    def sample(
        self, conditioning, unconditional_conditioning, seeds, subseeds, subseed_strength, prompts
    ):
        self.sampler = sd_samplers_kdiffusion.create_sampler(self.sampler_name, shared.sd_model)
        if self.firstpass_image is not None and self.enable_hr:
            # The "Hires fix" button on a gallery image: no first pass (no noise drawn,
            # no hook); the image's latent goes straight to the hires pass.
            arr = np.asarray(self.firstpass_image.convert("RGB"), dtype=np.float32)
            image = torch.from_numpy(arr / 127.5 - 1.0).permute(2, 0, 1)[None]
            samples = shared.sd_model.encode_sample(image)
            return self.sample_hr_pass(samples, seeds, subseeds, subseed_strength, prompts)
        x = self.rng.next()
        x = self._before_sampling(x, x, conditioning, unconditional_conditioning)
        samples = self.sampler.sample(self, x, conditioning, unconditional_conditioning)
        if not self.enable_hr:
            return samples
        return self.sample_hr_pass(samples, seeds, subseeds, subseed_strength, prompts)

    def sample_hr_pass(self, samples, seeds, subseeds, subseed_strength, prompts):
        if shared.state.interrupted:
            return samples
        self.is_hr_pass = True
        if shared.opts.save_images_before_highres_fix and self.save_samples():
            decoded = decode_to_images(samples)
            for i, img in enumerate(decoded):
                images.save_image(
                    img,
                    self.outpath_samples,
                    "",
                    seeds[i],
                    prompts[i],
                    shared.opts.samples_format,
                    p=self,
                    suffix="-before-highres-fix",
                )
        target = (self.hr_upscale_to_y // opt_f, self.hr_upscale_to_x // opt_f)
        if self.latent_scale_mode is not None or self.firstpass_image is not None:
            samples = F.interpolate(samples, size=target, mode="nearest")
        else:
            # A non-latent upscaler: decode, upscale the image, encode again (the encoder
            # samples its latent from torch's global generator).
            decoded = shared.sd_model.decode_first_stage(samples)
            size = (self.hr_upscale_to_y, self.hr_upscale_to_x)
            samples = shared.sd_model.encode_sample(F.interpolate(decoded, size=size))
        ty, tx = self.truncate_y, self.truncate_x
        samples = samples[
            :,
            :,
            ty // 2 : samples.shape[2] - (ty + 1) // 2,
            tx // 2 : samples.shape[3] - (tx + 1) // 2,
        ]
        name = self.hr_sampler_name or self.sampler_name
        self.sampler = sd_samplers_kdiffusion.create_sampler(name, shared.sd_model)
        self.rng = self._new_rng(samples.shape[1:])
        noise = self.rng.next()
        self.scripts.before_hr(self)
        noise = self._before_sampling(samples, noise, self.c, self.uc)
        if scripts.MODE == "forge":
            # Forge calls the hook again after resetting its model objects.
            noise = self._before_sampling(samples, noise, self.c, self.uc)
        steps = self.hr_second_pass_steps or self.steps
        samples = self.sampler.sample_img2img(self, samples, noise, self.c, self.uc, steps=steps)
        self.is_hr_pass = False
        return samples


class StableDiffusionProcessingImg2Img(StableDiffusionProcessing):
    def __init__(self, **kwargs: Any):
        self.init_images: list = []
        self.resize_mode = 0
        self.denoising_strength = 0.75
        self.image_cfg_scale = None
        self.initial_noise_multiplier = shared.opts.initial_noise_multiplier
        self.mask = None
        self.image_mask = None
        self.mask_blur = 4
        self.inpainting_fill = 1
        self.inpaint_full_res = False
        self.inpaint_full_res_padding = 32
        self.inpainting_mask_invert = 0
        self.mask_for_overlay = None
        self.init_latent = None
        self.latent_mask = None
        self.nmask = None
        super().__init__(**kwargs)

    def init(self, all_prompts, all_seeds, all_subseeds) -> None:
        model = shared.sd_model
        image = self.init_images[0].convert("RGB").resize((self.width, self.height))
        arr = torch.from_numpy(np.asarray(image, dtype=np.float32) / 127.5 - 1.0)
        batch = arr.permute(2, 0, 1)[None].repeat(self.batch_size, 1, 1, 1)
        self.init_latent = model.encode_sample(batch)
        if self.image_mask is not None:
            mask = self.image_mask.convert("L").resize((self.width, self.height))
            if self.inpainting_mask_invert:
                mask = Image.eval(mask, lambda v: 255 - v)
            self.mask_for_overlay = mask
            small = mask.resize((self.width // opt_f, self.height // opt_f), Image.BILINEAR)
            latmask = torch.from_numpy(np.asarray(small, dtype=np.float32) / 255.0)
            latmask = latmask.round()[None, None]
            self.mask = 1.0 - latmask
            self.nmask = latmask
            if self.inpainting_fill == 2:
                # "latent noise": the masked area starts from noise drawn for the first
                # batch's seeds (every batch reuses them), with its own ImageRNG.
                fill = create_random_tensors(
                    self.init_latent.shape[1:], all_seeds[0 : self.init_latent.shape[0]]
                )
                self.init_latent = self.init_latent * self.mask + fill * self.nmask
            elif self.inpainting_fill == 3:
                self.init_latent = self.init_latent * self.mask

    def sample(
        self, conditioning, unconditional_conditioning, seeds, subseeds, subseed_strength, prompts
    ):
        self.sampler = sd_samplers_kdiffusion.create_sampler(self.sampler_name, shared.sd_model)
        x = self.rng.next()
        if self.initial_noise_multiplier != 1.0:
            self.extra_generation_params["Noise multiplier"] = self.initial_noise_multiplier
            x *= self.initial_noise_multiplier
        x = self._before_sampling(self.init_latent, x, conditioning, unconditional_conditioning)
        samples = self.sampler.sample_img2img(
            self, self.init_latent, x, conditioning, unconditional_conditioning
        )
        if self.mask is not None:
            samples = samples * self.nmask + self.init_latent * self.mask
        return samples


class Processed:
    def __init__(
        self, p, images_list, seed=-1, info="", infotexts=None, comments="", index_of_first_image=0
    ):
        self.images = images_list
        self.seed = seed
        self.info = info
        self.infotexts = infotexts or [info]
        self.comments = comments
        self.index_of_first_image = index_of_first_image
        self.all_seeds = list(p.all_seeds)
        self.all_prompts = list(p.all_prompts)


def create_infotext(
    p,
    all_prompts,
    all_seeds,
    all_subseeds,
    comments=None,
    iteration=0,
    position_in_batch=0,
    use_main_prompt=False,
    index=None,
    all_negative_prompts=None,
):
    if index is None:
        index = position_in_batch + iteration * p.batch_size
    negatives = all_negative_prompts or getattr(p, "all_negative_prompts", None) or [""]
    params: dict[str, Any] = {
        "Steps": p.steps,
        "Sampler": p.sampler_name,
        "Schedule type": p.scheduler,
        "CFG scale": p.cfg_scale,
        "Seed": all_seeds[index],
        "Size": f"{p.width}x{p.height}",
        "Model hash": getattr(p, "sd_model_hash", None),
        "Model": getattr(p, "sd_model_name", None),
        "Variation seed": all_subseeds[index] if p.subseed_strength else None,
        "Variation seed strength": p.subseed_strength or None,
        "Denoising strength": p.denoising_strength,
        "ENSD": shared.opts.eta_noise_seed_delta or None,
        "RNG": shared.opts.randn_source if shared.opts.randn_source != "GPU" else None,
    }
    for key, value in p.extra_generation_params.items():
        if callable(value):
            value = value(p=p, index=index)
        elif isinstance(value, list):
            value = value[index] if index < len(value) else None
        params[key] = value
    params["Version"] = program_version()
    line = ", ".join(f"{k}: {_quote(v)}" for k, v in params.items() if v is not None)
    negative = negatives[index] if index < len(negatives) else negatives[-1]
    neg = f"\nNegative prompt: {negative}" if negative else ""
    return f"{all_prompts[index]}{neg}\n{line}"


def create_random_tensors(shape, seeds, subseeds=None, subseed_strength=0.0, p=None):
    """The first draw of a fresh ``ImageRNG`` for these seeds."""
    return rng.ImageRNG(shape, seeds, subseeds=subseeds, subseed_strength=subseed_strength).next()


def decode_to_images(samples) -> list[Image.Image]:
    x = shared.sd_model.decode_first_stage(samples)
    x = torch.clamp((x + 1.0) / 2.0, min=0.0, max=1.0)
    out = []
    for xi in x:
        arr = (255.0 * xi.permute(1, 2, 0).cpu().numpy()).astype(np.uint8)
        out.append(Image.fromarray(arr, "RGB"))
    return out


def process_images(p) -> Processed:
    """``before_process``, then ``p.override_settings`` applied to ``opts`` for the run
    and put back afterwards, as the webui does."""
    p.setup_scripts()
    p.scripts.before_process(p)
    # As 1.10: only keys already in opts.data are put back afterwards (a fresh install
    # without config.json has none there), and overrides go through opts.set.
    data = shared.opts.data
    saved = {k: data[k] for k in p.override_settings if k in data}
    try:
        for key, value in p.override_settings.items():
            shared.opts.set(key, value, is_api=True, run_callbacks=False)
        return process_images_inner(p)
    finally:
        if p.override_settings_restore_afterwards:
            for key, value in saved.items():
                setattr(shared.opts, key, value)


def process_images_inner(p) -> Processed:
    model = shared.sd_model
    p.sd_model_name = model.sd_checkpoint_info.name_for_extra
    p.sd_model_hash = model.sd_model_hash
    p.fill_fields_from_opts()
    total = p.batch_size * p.n_iter
    p.all_prompts = [p.prompt] * total
    p.all_negative_prompts = [p.negative_prompt] * total
    seed = get_fixed_seed(p.seed)
    subseed = get_fixed_seed(p.subseed)
    p.all_seeds = [seed + (x if p.subseed_strength == 0 else 0) for x in range(total)]
    p.all_subseeds = [subseed + x for x in range(total)]

    p.scripts.process(p)

    infotexts: list[str] = []
    output_images: list = []

    def infotext(i):
        return create_infotext(
            p, p.all_prompts, p.all_seeds, p.all_subseeds, index=p.iteration * p.batch_size + i
        )

    # Forge runs the whole loop under inference_mode (tensors made there are inference
    # tensors), A1111 under no_grad.
    grad_off = torch.inference_mode() if scripts.MODE == "forge" else torch.no_grad()
    with grad_off:
        p.init(p.all_prompts, p.all_seeds, p.all_subseeds)
        for n in range(p.n_iter):
            p.iteration = n
            if shared.state.interrupted:
                break
            sl = slice(n * p.batch_size, (n + 1) * p.batch_size)
            p.prompts = p.all_prompts[sl]
            p.negative_prompts = p.all_negative_prompts[sl]
            p.seeds = p.all_seeds[sl]
            p.subseeds = p.all_subseeds[sl]
            channels = getattr(model, "latent_channels", opt_C)
            p.rng = p._new_rng((channels, p.height // opt_f, p.width // opt_f))
            kw = {"batch_number": n, "prompts": p.prompts, "seeds": p.seeds, "subseeds": p.subseeds}
            p.scripts.before_process_batch(p, **kw)
            p.scripts.after_extra_networks_activate(p, extra_network_data={}, **kw)
            p.scripts.process_batch(p, **kw)
            p.setup_conds()
            samples = p.sample(
                conditioning=p.c,
                unconditional_conditioning=p.uc,
                seeds=p.seeds,
                subseeds=p.subseeds,
                subseed_strength=p.subseed_strength,
                prompts=p.prompts,
            )
            ps = scripts.PostSampleArgs(samples)
            p.scripts.post_sample(p, ps)
            samples = ps.samples
            x = shared.sd_model.decode_first_stage(samples)
            x = torch.clamp((x + 1.0) / 2.0, min=0.0, max=1.0)
            p.scripts.postprocess_batch(p, x, batch_number=n)
            ppl = scripts.PostprocessBatchListArgs(list(x))
            p.scripts.postprocess_batch_list(p, ppl, batch_number=n)
            for i, x_sample in enumerate(ppl.images):
                p.batch_index = i
                arr = (255.0 * x_sample.permute(1, 2, 0).cpu().numpy()).astype(np.uint8)
                image = Image.fromarray(arr, "RGB")
                index = i + p.iteration * p.batch_size if scripts.MODE == "forge" else None
                pp = scripts.PostprocessImageArgs(image, index)
                p.scripts.postprocess_image(p, pp)
                image = pp.image
                mask = getattr(p, "mask_for_overlay", None)
                if mask is not None and p.save_samples():
                    if shared.opts.save_mask:
                        images.save_image(
                            mask,
                            p.outpath_samples,
                            "",
                            p.seeds[i],
                            p.prompts[i],
                            shared.opts.samples_format,
                            p=p,
                            suffix="-mask",
                        )
                    if shared.opts.save_mask_composite:
                        comp = Image.composite(image, Image.new("RGB", image.size), mask)
                        images.save_image(
                            comp,
                            p.outpath_samples,
                            "",
                            p.seeds[i],
                            p.prompts[i],
                            shared.opts.samples_format,
                            p=p,
                            suffix="-mask-composite",
                        )
                pp = scripts.PostprocessImageArgs(image, index)
                p.scripts.postprocess_image_after_composite(p, pp)
                image = pp.image
                text = infotext(i)
                infotexts.append(text)
                if p.save_samples():
                    images.save_image(
                        image,
                        p.outpath_samples,
                        "",
                        p.seeds[i],
                        p.prompts[i],
                        shared.opts.samples_format,
                        info=text,
                        p=p,
                    )
                output_images.append(image)

    index_of_first_image = 0
    if len(output_images) > 1 and shared.opts.grid_save and not p.do_not_save_grid:
        grid = images.image_grid(output_images, p.batch_size)
        images.save_image(
            grid,
            p.outpath_grids,
            "grid",
            p.all_seeds[0],
            p.all_prompts[0],
            shared.opts.grid_format,
            info=infotexts[0],
            short_filename=True,
            p=p,
            grid=True,
        )
    comments = "\n".join(p.comments)
    res = Processed(
        p,
        output_images,
        p.all_seeds[0],
        infotexts[0] if infotexts else "",
        infotexts=infotexts,
        comments=comments,
        index_of_first_image=index_of_first_image,
    )
    p.scripts.postprocess(p, res)
    return res
