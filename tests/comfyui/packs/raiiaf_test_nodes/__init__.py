"""Test-only ComfyUI nodes standing for other packs' nodes: one that samples
internally, twice, like a detailer with two cycles; one that expands into a KSampler
at run time (ids ``<its id>.0.0.<n>``), like loop and subgraph nodes; a seed list."""

import nodes
from comfy_execution.graph_utils import GraphBuilder

SAMPLER_INPUTS = {
    "model": ("MODEL",),
    "positive": ("CONDITIONING",),
    "negative": ("CONDITIONING",),
    "latent_image": ("LATENT",),
    "seed": ("INT", {"default": 0, "min": 0, "max": 2**63}),
    "steps": ("INT", {"default": 3, "min": 1, "max": 100}),
    "sampler_name": ("STRING", {"default": "euler_ancestral"}),
}


class TestInternalSampler:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": dict(SAMPLER_INPUTS)}

    RETURN_TYPES = ("LATENT",)
    FUNCTION = "run"
    CATEGORY = "testing"

    def run(self, model, positive, negative, latent_image, seed, steps, sampler_name):
        latent = latent_image
        for cycle in range(2):  # sample, then refine at half strength with the next seed
            (latent,) = nodes.common_ksampler(
                model,
                seed + cycle,
                steps,
                7.0,
                sampler_name,
                "normal",
                positive,
                negative,
                latent,
                denoise=1.0 if cycle == 0 else 0.5,
            )
        return (latent,)


class TestExpandingSampler:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": dict(SAMPLER_INPUTS),
            "hidden": {"unique_id": "UNIQUE_ID", "dynprompt": "DYNPROMPT"},
        }

    RETURN_TYPES = ("LATENT",)
    FUNCTION = "run"
    CATEGORY = "testing"

    def run(
        self,
        model,
        positive,
        negative,
        latent_image,
        seed,
        steps,
        sampler_name,
        unique_id,
        dynprompt,
    ):
        mine = dynprompt.get_node(unique_id)["inputs"]
        g = GraphBuilder()
        ks = g.node(
            "KSampler",
            model=mine["model"],
            positive=mine["positive"],
            negative=mine["negative"],
            latent_image=mine["latent_image"],
            seed=seed,
            steps=steps,
            cfg=7.0,
            sampler_name=sampler_name,
            scheduler="normal",
            denoise=1.0,
        )
        return {"result": (ks.out(0),), "expand": g.finalize()}


class TestSeedList:
    """A list of seeds: nodes fed by it run once per seed (a list-mapped run)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"first": ("INT", {"default": 0}), "count": ("INT", {"default": 3})}}

    RETURN_TYPES = ("INT",)
    OUTPUT_IS_LIST = (True,)
    FUNCTION = "run"
    CATEGORY = "testing"

    def run(self, first, count):
        return ([first + i for i in range(count)],)


NODE_CLASS_MAPPINGS = {
    "TestSeedList": TestSeedList,
    "TestInternalSampler": TestInternalSampler,
    "TestExpandingSampler": TestExpandingSampler,
}
