"""Capture: :func:`generate` runs a pipeline call and writes a ``.raiiaf`` beside each image
(the initial noise, each image's RNG state or DPM++ SDE seed, the settings; see the
package doc for why each is needed)."""

from __future__ import annotations

import base64
import inspect
import io
import os
import random
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from raiiaf_rs import host
from raiiaf_rs.diffusers._common import (
    APP,
    INPUT_LATENT,
    NOISE,
    PathLike,
    Run,
    Saved,
    _attr,
    _bind,
    _environment,
    _is_img2img,
    _item,
    _json_safe,
    _maybe_seed,
    _model_source,
    _plain,
    _scheduler_config,
    model_entries,
)
from raiiaf_rs.passes import Pass, to_json

#: Call arguments the capture handles itself (never stored as settings).
_OWN = frozenset(
    {
        "generator",
        "latents",
        "image",
        "callback_on_step_end",
        "callback_on_step_end_tensor_inputs",
        "output_type",
        "return_dict",
        "num_images_per_prompt",
    }
)


def _state_b64(gen: Any) -> str:
    return base64.b64encode(gen.get_state().numpy().tobytes()).decode("ascii")


def _batch_size(call: Mapping[str, Any]) -> int:
    prompt = call.get("prompt")
    if isinstance(prompt, list):
        base = len(prompt)
    elif prompt is None and call.get("prompt_embeds") is not None:
        base = int(call["prompt_embeds"].shape[0])
    else:
        base = 1
    return base * int(call.get("num_images_per_prompt") or 1)


class _Recorder:
    """The tensors and RNG states of one call, filled by the wrapped pipeline methods."""

    def __init__(self, generators: list[Any]) -> None:
        self.generators = generators
        self.noise: Any = None
        self.input_latent: Any = None
        self.states: list[str] = []
        self.timesteps: list[float] = []

    def drew(self, noise: Any, input_latent: Any = None) -> None:
        self.noise = None if noise is None else noise.detach().clone()
        self.input_latent = None if input_latent is None else input_latent.detach().clone()
        self.states = [_state_b64(g) for g in self.generators]


@contextmanager
def _capturing(pipe: Any, rec: _Recorder) -> Iterator[None]:
    """Wrap ``pipe.prepare_latents`` to record the initial noise (txt2img: drawn here with
    the pipeline's own ``randn_tensor`` and passed on as ``latents``; img2img: what it
    hands to ``scheduler.add_noise``) and the generators' states right after."""
    from diffusers.utils.torch_utils import randn_tensor

    orig = pipe.prepare_latents
    if _is_img2img(pipe):
        scheduler = pipe.scheduler
        add_noise = scheduler.add_noise

        def noising(original: Any, noise: Any, timesteps: Any) -> Any:
            rec.drew(noise, original)
            return add_noise(original, noise, timesteps)

        def prepare(*args: Any, **kwargs: Any) -> Any:
            with _attr(scheduler, "add_noise", noising):
                out = orig(*args, **kwargs)
            if rec.noise is None:  # SDXL denoising_start: no noise added
                rec.drew(None, out)
            return out
    else:

        def prepare(*args: Any, **kwargs: Any) -> Any:
            b = _bind(orig, args, kwargs)
            a = b.arguments
            if a.get("latents") is None:
                f = pipe.vae_scale_factor
                shape = (a["batch_size"], a["num_channels_latents"])
                shape += (int(a["height"]) // f, int(a["width"]) // f)
                a["latents"] = randn_tensor(
                    shape, generator=a["generator"], device=a["device"], dtype=a["dtype"]
                )
            rec.drew(a["latents"])
            return orig(*b.args, **b.kwargs)

    with _attr(pipe, "prepare_latents", prepare):
        yield


def _sde_seeds(pipe: Any) -> Any:
    """The scheduler's ``noise_sampler_seed`` when it has one (DPM++ SDE), else
    ``False``: the scheduler has no Brownian tree."""
    sched = pipe.scheduler
    return sched.noise_sampler_seed if hasattr(sched, "noise_sampler_seed") else False


def _draws_per_step(scheduler: Any) -> bool:
    return "generator" in inspect.signature(scheduler.step).parameters


def _timesteps_callback(rec: _Recorder, user: Any) -> Callable[..., Any]:
    def callback(pipe: Any, step: int, timestep: Any, kwargs: dict) -> dict:
        rec.timesteps.append(float(timestep))
        return user(pipe, step, timestep, kwargs) if user is not None else kwargs

    return callback


def _image_path(save_as: PathLike, i: int, n: int) -> str:
    path = os.fspath(save_as)
    if n == 1:
        return path
    stem, ext = os.path.splitext(path)
    return f"{stem}-{i}{ext}"


def _png(image: Any) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def generate(
    pipe: Any,
    save_as: PathLike,
    *args: Any,
    model: PathLike | None = None,
    embed_image: bool = True,
    tags: Sequence[str] = (),
    **kwargs: Any,
) -> Run:
    """Run ``pipe(*args, **kwargs)`` and save each image as PNG with its ``.raiiaf``
    beside it: ``save_as`` for one image, ``<stem>-<i><ext>`` for image ``i`` of a batch
    (an existing image is never replaced: FileExistsError). ``model``: the model's file,
    folder or repo id when ``pipe.name_or_path`` does not name it. The call is the
    pipeline's own, so the images are the ones a plain call with the same generators
    makes (DPM++ SDE: the seeds this call sets; see the module doc)."""
    import torch

    call = dict(_bind(pipe.__call__, args, kwargs).arguments)
    call.update(call.pop("kwargs", {}) or {})
    explicit = _bind_explicit(pipe, args, kwargs)
    n = _batch_size(call)
    gen = call.get("generator")
    shared = isinstance(gen, torch.Generator) and n > 1
    forced = gen is None
    if forced:
        rng = random.SystemRandom()
        gen = [torch.Generator().manual_seed(rng.randrange(2**63)) for _ in range(n)]
    gens = list(gen) if isinstance(gen, (list, tuple)) else [gen]
    if not shared and len(gens) != n:
        raise ValueError(f"{len(gens)} generators for a batch of {n} images: pass one per image")

    sde = _sde_seeds(pipe)
    sde_seeds: list[int] | None = None
    if sde is None:  # DPM++ SDE without a seed: one per image, from its generator
        sde_seeds = [
            (gens[0].initial_seed() + i if shared else gens[i].initial_seed()) for i in range(n)
        ]
        sde_seeds = [s & (2**63 - 1) for s in sde_seeds]
    elif sde is not False:
        sde_seeds = list(sde) if isinstance(sde, (list, tuple)) else [int(sde)]

    rec = _Recorder(gens)
    run = dict(explicit)
    run["generator"] = gen
    run["output_type"] = "pil"
    run["return_dict"] = True
    run["callback_on_step_end"] = _timesteps_callback(rec, explicit.get("callback_on_step_end"))
    with _capturing(pipe, rec), _maybe_seed(pipe, sde_seeds if sde is None else None):
        images = list(pipe(**run).images)
    if rec.noise is None and rec.input_latent is None:
        raise RuntimeError(f"{type(pipe).__name__} drew no initial latents through prepare_latents")

    env = _environment(pipe, str(gens[0].device))
    model_name, _ = _model_source(pipe, model)
    c = _Call(
        pipe, explicit, call, rec, shared, forced, sde, sde_seeds,
        model_entries(pipe, model), model_name, uuid.uuid4().hex, tags,
    )  # fmt: skip
    saved = []
    for i, image in enumerate(images):
        meta = _metadata(c, i, len(images), image)
        latents = {NOISE: rec.noise[i : i + 1]} if rec.noise is not None else {}
        if rec.input_latent is not None:
            latents[INPUT_LATENT] = rec.input_latent[i : i + 1]
        path = _image_path(save_as, i, len(images))
        data = _png(image)
        host.write_new_file(path, data)
        sidecar = host.write_sidecar(
            path, latents, metadata=meta, environment=env, image_bytes=data, embed_image=embed_image
        )
        saved.append(Saved(path, sidecar, i))
    return Run(images, saved)


def _bind_explicit(pipe: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The arguments the caller gave, by name."""
    bound = inspect.signature(pipe.__call__).bind(*args, **kwargs)
    out = dict(bound.arguments)
    out.update(out.pop("kwargs", {}) or {})
    return out


def _not_stored(explicit: Mapping[str, Any]) -> list[str]:
    return sorted(k for k, v in explicit.items() if k not in _OWN and not _json_safe(v))


@dataclass(frozen=True)
class _Call:
    """One :func:`generate` call, what each of its images' metadata is built from."""

    pipe: Any
    explicit: Mapping[str, Any]  # the arguments the caller gave
    call: Mapping[str, Any]  # the same with the pipeline's defaults
    rec: _Recorder
    shared: bool  # one generator drew for the whole batch
    forced: bool  # no generator given: generate() made one per image
    sde: Any  # the scheduler's noise_sampler_seed (False: not an SDE scheduler)
    sde_seeds: list[int] | None
    models: list[dict[str, Any]]
    model_name: str
    batch_id: str
    tags: Sequence[str]


def _metadata(c: _Call, i: int, n: int, image: Any) -> dict[str, Any]:
    """The metadata of image ``i`` of ``n``."""
    import diffusers

    pipe, explicit, call, rec, shared = c.pipe, c.explicit, c.call, c.rec, c.shared
    sde, sde_seeds, tags = c.sde, c.sde_seeds, c.tags
    not_stored = _not_stored(explicit)
    per_prompt = int(call.get("num_images_per_prompt") or 1)
    gens = rec.generators
    gen_i = gens[0] if shared else gens[i]
    img2img = rec.input_latent is not None
    steps = int(call.get("num_inference_steps") or 0)
    cfg = call.get("guidance_scale")
    denoise = float(call.get("strength", 1.0)) if img2img else 1.0
    why: list[str] = [f"argument {k!r} is not stored (not JSON)" for k in not_stored]
    rng: dict[str, Any] | None = None
    if sde_seeds is not None:
        batched = sde is None or isinstance(sde, (list, tuple))
        rng = {
            "kind": "noise_sampler_seed",
            "seeds": [sde_seeds[i]] if batched else sde_seeds,
            "batched": batched,
        }
        if not batched and n > 1:
            why.append(
                "DPM++ SDE drew one Brownian tree for the whole batch (noise_sampler_seed is "
                "one int): this image reruns bit for bit only with its whole batch (replay_batch)"
            )
    elif _draws_per_step(pipe.scheduler):
        rng = {
            "kind": "torch_generator_states",
            "at": "after_initial_noise",
            "device": str(gen_i.device),
            "states": [rec.states[0 if shared else i]],
            "shared": shared,
        }
        if shared:
            why.append(
                "one torch.Generator drew for the whole batch: with a scheduler that draws "
                "noise at every step this image reruns bit for bit only with its whole "
                "batch (replay_batch); pass one generator per image"
            )
    sched = type(pipe.scheduler).__name__
    settings = {"sampler": sched, "steps": steps, "cfg": cfg, "denoise": denoise}
    one = Pass(
        order=0,
        role="img2img" if img2img else "txt2img",
        noise=NOISE if rec.noise is not None else None,
        input_latent=INPUT_LATENT if img2img else None,
        adds_noise=rec.noise is not None,
        seed=int(gen_i.initial_seed()),
        noise_shape=tuple(rec.noise[i : i + 1].shape) if rec.noise is not None else None,
        noise_dtype=str(rec.noise.dtype).removeprefix("torch.") if rec.noise is not None else None,
        timesteps=tuple(rec.timesteps),
        settings={k: v for k, v in settings.items() if v is not None},
        source={"host": APP, "pipeline": type(pipe).__name__, "scheduler": sched},
        rng=rng,
        exact=not why,
        why_not_exact=tuple(why),
    )
    stored_call = {k: _plain(v) for k, v in explicit.items() if k not in _OWN and _json_safe(v)}
    return host.build_metadata(
        host.Host(APP, diffusers.__version__),
        prompt=_item(call.get("prompt"), i, per_prompt) or "",
        negative_prompt=_item(call.get("negative_prompt"), i, per_prompt) or "",
        model_name=c.model_name,
        tags=[APP, *tags],
        generation=host.Generation(
            seed=int(gen_i.initial_seed()), steps=steps, sampler=sched, cfg_scale=float(cfg or 0)
        ),
        denoise=denoise,
        width=image.width,
        height=image.height,
        batch_index=i,
        batch_size=n,
        batch_id=c.batch_id,
        models=c.models,
        extra={
            "passes": to_json([one]),
            APP: {
                "pipeline": type(pipe).__name__,
                "scheduler": sched,
                "scheduler_config": _scheduler_config(pipe.scheduler),
                "call": stored_call,
                "num_images_per_prompt": per_prompt,
                "generator": "shared" if shared else ("forced" if c.forced else "per_image"),
                "generator_is_list": isinstance(call.get("generator"), (list, tuple)) or c.forced,
                "diffusers_version": diffusers.__version__,
            },
        },
    )
