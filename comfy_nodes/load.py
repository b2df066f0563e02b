"""Loading a ``.raiiaf`` and feeding its noise back into sampling:

- "Load .raiiaf" reads a file from ComfyUI's input or output directory and
  outputs a NOISE for SamplerCustomAdvanced, the stored settings, an empty
  LATENT of the stored shape, the embedded image and a readable summary;
- "Replay .raiiaf noise" patches a MODEL so the standard KSampler samples
  from the stored noise and seed instead of its own.
"""

from __future__ import annotations

import io as _io
import os
import threading
from dataclasses import dataclass
from typing import Any

import comfy.samplers
import numpy as np
import raiiaf_rs
import torch
from comfy_api.latest import io

from . import host, paths

RaiiafType = io.Custom("RAIIAF")
REPLAY_KEY = "raiiaf.replay"


@dataclass
class Stored:
    """A loaded file: its noises in sampler-call order, seeds, settings."""

    name: str
    noises: list[torch.Tensor]
    seeds: list[int | None]
    metadata: dict[str, Any]


def shape_error(stored: tuple, wanted: tuple, what: str) -> ValueError:
    def size(shape: tuple) -> str:
        if len(shape) < 4:
            return ""
        h, w = shape[-2], shape[-1]
        return f" (about {w * 8}x{h * 8} pixels for an 8x VAE)"

    return ValueError(
        f"the stored noise has shape {list(stored)}{size(stored)} but {what} has shape "
        f"{list(wanted)}{size(wanted)}; set the latent's width, height and batch size to match "
        "the file (use the loader's LATENT output) or load another file"
    )


class StoredNoise:
    """A NOISE (duck-typed like ComfyUI's Noise_RandomNoise): returns the
    stored tensor; ``seed`` is the stored seed, which ancestral and SDE
    samplers use for their per-step noise."""

    def __init__(self, noise: torch.Tensor, seed: int | None):
        self.noise = noise
        self.seed = 0 if seed is None else seed

    def generate_noise(self, input_latent: dict) -> torch.Tensor:
        samples = input_latent["samples"]
        if tuple(samples.shape) != tuple(self.noise.shape):
            raise shape_error(tuple(self.noise.shape), tuple(samples.shape), "the latent")
        return self.noise.clone().to(dtype=samples.dtype)


def _summary(art: raiiaf_rs.Artifact, name: str) -> str:
    meta = art.metadata
    gen = meta.get("generation_settings", {})
    lines = [f"{name}: format {art.version}"]
    for key, arr in art.latents.items():
        lines.append(f"  {key}: {art.dtypes[key]} {list(arr.shape)}")
    if meta.get("prompt"):
        lines.append(f"  prompt: {meta['prompt']}")
    if meta.get("negative_prompt"):
        lines.append(f"  negative: {meta['negative_prompt']}")
    if gen:
        lines.append("  " + ", ".join(f"{k}={v}" for k, v in gen.items()))
    real = host.drift(art)
    if not art.environment:
        lines.append("environment: not recorded")
    elif not real:
        lines.append("environment: matches this machine")
    for d in real:
        flag = "CAN CHANGE PIXELS" if d.affects_pixels else "harmless"
        lines.append(f"environment drift [{flag}] {d.component}: {d.stored} -> {d.current}")
    return "\n".join(lines)


def _image(png: bytes | None) -> torch.Tensor:
    if not png:
        return torch.zeros((1, 64, 64, 3), dtype=torch.float32)
    from PIL import Image

    img = Image.open(_io.BytesIO(png)).convert("RGB")
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0)[None]


def read_stored(file: str) -> tuple[raiiaf_rs.Artifact, Stored]:
    path = paths.resolve(file)
    try:
        art = raiiaf_rs.read(path, as_torch=True)
    except raiiaf_rs.HashMismatchError as e:
        raise ValueError(f"{file}: the file was altered or damaged ({e})") from None
    except raiiaf_rs.RaiiafError as e:
        raise ValueError(f"{file}: not a readable .raiiaf file ({e})") from None
    captures = art.metadata.get("captures") or []
    names = [c["name"] for c in captures if c.get("name") in art.latents]
    if not names and "initial_noise" in art.latents:
        names = ["initial_noise"]
    if not names:
        raise ValueError(
            f"{file}: the file holds no noise to replay (latents: {list(art.latents)})"
        )
    seeds_by_name = {c["name"]: c.get("seed") for c in captures}
    default_seed = art.metadata.get("generation_settings", {}).get("seed")
    stored = Stored(
        name=file,
        noises=[
            art.latents[n].float() if art.dtypes[n] != "float32" else art.latents[n] for n in names
        ],
        seeds=[seeds_by_name.get(n, default_seed) for n in names],
        metadata=art.metadata,
    )
    return art, stored


class LoadRaiiaf(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="RaiiafLoad",
            display_name="Load .raiiaf",
            category="sampling/raiiaf",
            description=(
                "Loads a .raiiaf file and outputs its stored noise, settings and image, "
                "to generate the same image again."
            ),
            inputs=[io.Combo.Input("file", options=paths.list_files())],
            # display_name: without it ComfyUI names each output after its type (and the
            # combo outputs after their whole option list).
            outputs=[
                RaiiafType.Output("raiiaf", display_name="raiiaf"),
                io.Noise.Output("noise", display_name="noise"),
                io.Latent.Output("latent", display_name="latent"),
                io.Image.Output("image", display_name="image"),
                io.Int.Output("seed", display_name="seed"),
                io.Int.Output("steps", display_name="steps"),
                io.Float.Output("cfg", display_name="cfg"),
                io.Combo.Output(
                    "sampler_name",
                    display_name="sampler_name",
                    options=comfy.samplers.KSampler.SAMPLERS,
                ),
                io.Combo.Output(
                    "scheduler",
                    display_name="scheduler",
                    options=comfy.samplers.KSampler.SCHEDULERS,
                ),
                io.String.Output("positive", display_name="positive"),
                io.String.Output("negative", display_name="negative"),
                io.String.Output("summary", display_name="summary"),
            ],
        )

    @classmethod
    def validate_inputs(cls, file):
        try:
            paths.resolve(file)
        except ValueError as e:
            return str(e)
        return True

    @classmethod
    def fingerprint_inputs(cls, file):
        try:
            p = paths.resolve(file)
            st = os.stat(p)
            return f"{p}:{st.st_size}:{st.st_mtime_ns}"
        except (ValueError, OSError):
            return float("nan")

    @classmethod
    def execute(cls, file):
        art, stored = read_stored(file)
        noise = stored.noises[0]
        gen = art.metadata.get("generation_settings", {})
        seed = stored.seeds[0] if stored.seeds[0] is not None else int(gen.get("seed", 0))
        sampler = gen.get("sampler", "euler")
        scheduler = gen.get("scheduler", "normal")
        if sampler not in comfy.samplers.KSampler.SAMPLERS:
            sampler = "euler"
        if scheduler not in comfy.samplers.KSampler.SCHEDULERS:
            scheduler = "normal"
        return io.NodeOutput(
            stored,
            StoredNoise(noise, seed),
            {"samples": torch.zeros_like(noise)},
            _image(art.image),
            int(seed),
            int(gen.get("steps", 20)),
            float(gen.get("cfg_scale", 7.0)),
            sampler,
            scheduler,
            str(art.metadata.get("prompt", "")),
            str(art.metadata.get("negative_prompt", "")),
            _summary(art, file),
        )


def replay_wrapper(stored: Stored):
    """OUTER_SAMPLE wrapper: the k-th sampler call of a prompt gets the k-th
    stored noise and seed (the first gets ``initial_noise``)."""
    lock = threading.Lock()
    calls: dict[str, int] = {}

    def wrapper(executor, noise, latent_image, sampler, sigmas, *args, **kwargs):

        with lock:
            prompt_id = host.current_prompt_id()
            k = calls.get(prompt_id, 0)
            calls.clear()  # only the current prompt's count matters
            calls[prompt_id] = k + 1
        if k < len(stored.noises):
            new = stored.noises[k]
            if tuple(new.shape) != tuple(noise.shape):
                raise shape_error(tuple(new.shape), tuple(noise.shape), "the sampler's latent")
            noise = new.to(device=noise.device, dtype=noise.dtype)
            seed = stored.seeds[k]
            if seed is not None:
                args = list(args)
                if len(args) > 3:
                    args[3] = seed
                else:
                    kwargs["seed"] = seed
        return executor(noise, latent_image, sampler, sigmas, *args, **kwargs)

    return wrapper


class ReplayRaiiafNoise(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="RaiiafReplayNoise",
            display_name="Replay .raiiaf noise",
            category="sampling/raiiaf",
            description=(
                "Makes samplers using this model (KSampler, KSamplerAdvanced, ...) start from the "
                "noise and seed stored in the .raiiaf file instead of their own seed's noise."
            ),
            inputs=[io.Model.Input("model"), RaiiafType.Input("raiiaf")],
            outputs=[io.Model.Output()],
        )

    @classmethod
    def execute(cls, model, raiiaf):
        import comfy.patcher_extension as pe

        m = model.clone()
        m.remove_wrappers_with_key(pe.WrappersMP.OUTER_SAMPLE, REPLAY_KEY)
        m.add_wrapper_with_key(pe.WrappersMP.OUTER_SAMPLE, REPLAY_KEY, replay_wrapper(raiiaf))
        return io.NodeOutput(m)
