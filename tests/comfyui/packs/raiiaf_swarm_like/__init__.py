"""Test-only ComfyUI nodes shaped like a SwarmUI backend's graph, written for these tests
(no SwarmUI code): a sampler that makes its own noise, one generator per batch image
seeded with ``seed + i`` (so image i's noise is not ComfyUI's prepare_noise row i), and
hands it straight to a CFGGuider, as SwarmUI's SwarmKSampler does; and a saver that
subclasses core SaveImage and only changes its prefix, as many packs' savers do."""

import comfy.model_management
import comfy.sample
import comfy.samplers
import nodes
import torch


class TestSwarmLikeSampler:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL",),
                "positive": ("CONDITIONING",),
                "negative": ("CONDITIONING",),
                "latent_image": ("LATENT",),
                "seed": ("INT", {"default": 0, "min": 0, "max": 2**63}),
                "steps": ("INT", {"default": 3, "min": 1, "max": 100}),
                "cfg": ("FLOAT", {"default": 7.0}),
                "sampler_name": (comfy.samplers.KSampler.SAMPLERS,),
                "scheduler": (comfy.samplers.KSampler.SCHEDULERS,),
            }
        }

    RETURN_TYPES = ("LATENT",)
    FUNCTION = "run"
    CATEGORY = "testing"

    def run(
        self, model, positive, negative, latent_image, seed, steps, cfg, sampler_name, scheduler
    ):
        latent = comfy.sample.fix_empty_latent_channels(model, latent_image["samples"])
        rows = [
            torch.randn(
                latent[i : i + 1].shape,
                generator=torch.Generator().manual_seed(seed + i),
                dtype=latent.dtype,
            )
            for i in range(latent.shape[0])
        ]
        sampling = model.get_model_object("model_sampling")
        sigmas = comfy.samplers.calculate_sigmas(sampling, scheduler, steps).cpu()
        guider = comfy.samplers.CFGGuider(model)
        guider.set_conds(positive, negative)
        guider.set_cfg(cfg)
        sampler = comfy.samplers.sampler_object(sampler_name)
        samples = guider.sample(torch.cat(rows), latent, sampler, sigmas, seed=seed)
        out = dict(latent_image)
        out["samples"] = samples.to(comfy.model_management.intermediate_device())
        return (out,)


class TestSubclassSaver(nodes.SaveImage):
    """A pack's saver built on SaveImage: same method, its own prefix suffix."""

    def __init__(self):
        super().__init__()
        self.prefix_append = "_sub"


NODE_CLASS_MAPPINGS = {
    "TestSwarmLikeSampler": TestSwarmLikeSampler,
    "TestSubclassSaver": TestSubclassSaver,
}
