"""Replay: :func:`replay` regenerates one image of a file (a batch's too, bit for bit),
:func:`replay_batch` a whole batch; :func:`differences` is what they report first.
:func:`replay` also runs a one-pass txt2img file of another host (ComfyUI, the webui)
from its stored noise, and says why that is not exact (:func:`_foreign`)."""

from __future__ import annotations

import base64
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import raiiaf_rs
from raiiaf_rs import host
from raiiaf_rs import replay as raiiaf_replay
from raiiaf_rs.diffusers._common import (
    APP,
    INPUT_LATENT,
    NOISE,
    Difference,
    PathLike,
    Replay,
    _attr,
    _bind,
    _environment,
    _is_img2img,
    _item,
    _maybe_seed,
    _scheduler_config,
    model_entries,
)
from raiiaf_rs.passes import Pass

#: SDXL arguments that must be tuples again after a JSON round trip.
_TUPLES = frozenset(
    {
        "original_size",
        "target_size",
        "crops_coords_top_left",
        "negative_original_size",
        "negative_target_size",
        "negative_crops_coords_top_left",
    }
)


_PROMPTS = ("prompt", "prompt_2", "negative_prompt", "negative_prompt_2")


def _generator(device: str, state_b64: str) -> Any:
    import torch

    gen = torch.Generator(device=device)
    raw = bytearray(base64.b64decode(state_b64))
    gen.set_state(torch.frombuffer(raw, dtype=torch.uint8).clone())
    return gen


@dataclass(frozen=True)
class _File:
    """One sidecar read back for replay."""

    name: str
    art: Any
    meta: Mapping[str, Any]
    own: Mapping[str, Any]
    step: Pass
    passes: Sequence[Pass] = ()

    @property
    def index(self) -> int:
        return int(self.meta.get("batch_index") or 0)


def _load(path: PathLike, foreign: bool = False) -> _File:
    """The file ``path``; ``foreign``: a file of another writer too (``own`` empty)."""
    name = os.path.basename(os.fspath(path))
    art = raiiaf_rs.read(path, as_torch=True)
    meta = art.metadata if isinstance(art.metadata, Mapping) else {}
    own = meta.get(APP)
    if not isinstance(own, Mapping) or "call" not in own:
        if not foreign:
            raise ValueError(
                f"{name}: not written by raiiaf_rs.diffusers.generate (no '{APP}' settings); "
                "replay() runs a one-pass txt2img file of another host, replay_batch() "
                "only files of generate()"
            )
        own = {}
    found = raiiaf_replay.passes(art)
    if not found:
        raise ValueError(f"{name}: the file holds no sampler pass")
    return _File(name, art, meta, own, found[0], found)


def _scheduler_for(f: _File) -> Any:
    import diffusers

    cls = getattr(diffusers, str(f.own.get("scheduler")), None)
    if cls is None:
        raise ValueError(
            f"{f.name}: the scheduler {f.own.get('scheduler')!r} is not in this diffusers "
            f"{diffusers.__version__}; pass scheduler='pipe' to replay with the pipeline's own"
        )
    return cls.from_config(dict(f.own.get("scheduler_config") or {}))


def differences(
    f: Any, pipe: Any, *, scheduler: str = "file", model: PathLike | None = None
) -> list[Difference]:
    """How a replay of the file ``f`` (a path or a read file) by ``pipe`` differs from the
    stored run, pixel-changing first: pipeline class, scheduler class and config (with
    ``scheduler="file"`` the file's scheduler runs, and the pipeline's differing one is
    noted but changes nothing), model weights (SHA-256 per file), environment.

    The one place a diffusers replay compares settings and environment (the shared replay
    layer's typed list has the same fields)."""
    f = f if isinstance(f, _File) else _load(f)
    out: list[Difference] = []
    here = type(pipe).__name__
    if f.own.get("pipeline") != here:
        out.append(Difference("pipeline", "pipeline", f.own.get("pipeline"), here))
    cur_cls = type(pipe.scheduler).__name__
    cur_cfg = _scheduler_config(pipe.scheduler)
    stored_cfg = dict(f.own.get("scheduler_config") or {})
    used = scheduler == "file"
    note = "; the file's scheduler is used for this replay" if used else ""
    if f.own.get("scheduler") != cur_cls:
        out.append(
            Difference(
                "scheduler", "scheduler", f.own.get("scheduler"), cur_cls, not used,
                reason=f"file {f.own.get('scheduler')}, pipeline {cur_cls}{note}",
            )
        )  # fmt: skip
    else:
        for k in sorted(set(stored_cfg) | set(cur_cfg)):
            if stored_cfg.get(k) != cur_cfg.get(k):
                out.append(
                    Difference(
                        f"scheduler.{k}", "scheduler", stored_cfg.get(k), cur_cfg.get(k), not used
                    )
                )
    stored_models = {
        (m.get("role"), m.get("name")): m.get("sha256") for m in f.meta.get("models") or []
    }
    now_models = {(m["role"], m["name"]): m["sha256"] for m in model_entries(pipe, model)}
    for key in sorted(set(stored_models) | set(now_models), key=str):
        a, b = stored_models.get(key), now_models.get(key)
        if a != b:
            label = f"model {key[0]}/{key[1]}"
            if a is None or b is None:
                why = "not recorded in the file" if a is None else "not found for this pipeline"
                out.append(Difference(label, "model", a, b, reason=f"{label}: SHA-256 {why}"))
            else:
                out.append(Difference(label, "model", a, b))
    env = _environment(pipe, str(f.step.rng.get("device", "cpu")) if f.step.rng else "cpu")
    for d in host.environment_drift(f.art, env):
        out.append(
            Difference(d.component, "environment", d.stored, d.current, bool(d.affects_pixels))
        )
    return sorted(out, key=lambda d: not d.affects_pixels)


def _generators(files: Sequence[_File]) -> Any:
    """The call's ``generator`` again: each image's state after the initial noise (one
    shared generator when one drew for the whole batch)."""
    import torch

    rng = files[0].step.rng or {}
    if rng.get("kind") == "torch_generator_states":
        if rng.get("shared"):
            return _generator(rng["device"], rng["states"][0])
        gens = [_generator(f.step.rng["device"], f.step.rng["states"][0]) for f in files]
    else:  # nothing drawn after the initial noise: any generator will do
        gens = [torch.Generator().manual_seed(int(f.step.seed or 0)) for f in files]
    return gens if files[0].own.get("generator_is_list", True) or len(gens) > 1 else gens[0]


def _sde(files: Sequence[_File]) -> Any:
    rng = files[0].step.rng or {}
    if rng.get("kind") != "noise_sampler_seed":
        return None
    if rng.get("batched"):
        return [int(f.step.rng["seeds"][0]) for f in files]
    return int(rng["seeds"][0])


@contextmanager
def _replaying(pipe: Any, files: Sequence[_File], call: dict[str, Any]) -> Iterator[None]:
    """Feed the stored latents back: txt2img through ``latents``; img2img through a
    ``prepare_latents`` that noises the stored encoded latents with the stored noise."""
    import torch

    noise = [f.art.latents.get(NOISE) for f in files]
    noise_t = torch.cat(noise) if all(x is not None for x in noise) else None
    inputs = [f.art.latents.get(INPUT_LATENT) for f in files]
    if not all(x is not None for x in inputs):
        if noise_t is None:
            raise ValueError(f"{files[0].name}: the file holds no initial noise")
        if _is_img2img(pipe):
            raise ValueError(
                f"{files[0].name}: a txt2img file needs a txt2img pipeline, not "
                f"{type(pipe).__name__} (e.g. StableDiffusionPipeline.from_pipe(pipe))"
            )
        call["latents"] = noise_t
        yield
        return
    if not _is_img2img(pipe):
        raise ValueError(
            f"{files[0].name}: an img2img file needs an img2img pipeline, not "
            f"{type(pipe).__name__} (e.g. StableDiffusionImg2ImgPipeline.from_pipe(pipe))"
        )
    init = torch.cat(inputs)
    call["image"] = init
    orig = pipe.prepare_latents

    def prepare(*args: Any, **kwargs: Any) -> Any:
        a = _bind(orig, args, kwargs).arguments
        start = init.to(a["device"])
        if noise_t is None or not a.get("add_noise", True):
            return start
        return pipe.scheduler.add_noise(start, noise_t.to(a["device"]), a["timestep"])

    with _attr(pipe, "prepare_latents", prepare):
        yield


def _run(
    pipe: Any, files: Sequence[_File], call: dict[str, Any], scheduler: str, diffs: list[Difference]
) -> Replay:
    if scheduler not in ("file", "pipe"):
        raise ValueError(f"scheduler must be 'file' or 'pipe', not {scheduler!r}")
    for d in diffs:
        warnings.warn(f"raiiaf replay: {d.text()}", UserWarning, stacklevel=3)
    for k in _TUPLES & set(call):
        call[k] = tuple(call[k])
    call["generator"] = _generators(files)
    call["output_type"] = "pil"
    sched = _scheduler_for(files[0]) if scheduler == "file" else pipe.scheduler
    seeds = _sde(files)
    with (
        _attr(pipe, "scheduler", sched),
        _replaying(pipe, files, call),
        _maybe_seed(pipe, seeds),
    ):
        images = list(pipe(**call).images)
    return Replay(images, diffs)


def _exactness(f: _File, alone: bool) -> list[Difference]:
    """What keeps one image of a batch from rerunning bit for bit by itself."""
    n = int(f.meta.get("batch_size") or 1)
    out = []
    if alone and n > 1:
        out.append(
            Difference(
                "batch_size", "batch", n, 1, affects_pixels=True,
                reason=f"image {f.index} of a batch of {n} rerun alone at batch size 1: floats "
                "can differ in the last bits, and a few 8-bit values by one (alone=False "
                "reruns it at the batch's size)",
            )
        )  # fmt: skip
    if n > 1:
        out += [Difference("exact", "batch", True, False, reason=w) for w in f.step.why_not_exact]
    return out


#: ComfyUI sampler names and the diffusers scheduler class of the same method.
_CLASSES = {v: k for k, v in raiiaf_replay.SAMPLERS_DIFFUSERS_TO_COMFYUI.items()}


def _foreign_scheduler(f: _File, pipe: Any, scheduler: str) -> tuple[Any, list[Difference]]:
    """The scheduler of the file's sampler, built from the pipeline's config; the
    pipeline's own (and a difference) when the sampler has no diffusers class."""
    import diffusers

    sampler = f.step.settings.get("sampler")
    cls = getattr(diffusers, _CLASSES.get(raiiaf_replay.comfyui_sampler(sampler), ""), None)
    mine = type(pipe.scheduler).__name__
    if scheduler == "pipe" or cls is None:
        why = "scheduler='pipe'" if cls else "it has no diffusers scheduler class"
        reason = f"the file's sampler is {sampler!r}; {why}, so the pipeline's {mine} runs"
        return pipe.scheduler, [Difference("sampler", "host", sampler, mine, reason=reason)]
    return cls.from_config(pipe.scheduler.config), []


def _foreign(f: _File, pipe: Any, scheduler: str, overrides: Mapping[str, Any]) -> Replay:
    """Run a one-pass txt2img file of another host: its stored initial noise as
    ``latents``, its prompt, steps, CFG and size, and the diffusers scheduler of its
    sampler; the differences (why not exact) are returned and warned."""
    import torch

    p = f.step
    if p.host in (None, APP):  # a file of no known host, or ours without our settings
        raise ValueError(
            f"{f.name}: not written by raiiaf_rs.diffusers.generate (no '{APP}' settings), "
            "nor by ComfyUI or the webui (no passes of theirs); nothing says how it was made"
        )
    if len(f.passes) != 1 or p.role != "txt2img" or not p.adds_noise:
        raise ValueError(
            f"{f.name}: written by {p.host or 'another writer'} with "
            f"{', '.join(q.role for q in f.passes)} passes; a pipeline replays only a "
            "one-pass txt2img file of another host"
        )
    noise = f.art.latents.get(p.noise) if p.noise else None
    if noise is None:
        raise ValueError(f"{f.name}: the file holds no initial noise")
    if scheduler not in ("file", "pipe"):
        raise ValueError(f"scheduler must be 'file' or 'pipe', not {scheduler!r}")
    settings = raiiaf_replay.first_settings(f.meta, f.passes)
    factor = int(getattr(pipe, "vae_scale_factor", 8))
    call: dict[str, Any] = {
        "prompt": str(f.meta.get("prompt") or ""),
        "negative_prompt": str(f.meta.get("negative_prompt") or ""),
        "height": int(f.meta.get("height") or noise.shape[-2] * 8),
        "width": int(f.meta.get("width") or noise.shape[-1] * 8),
        "num_inference_steps": int(settings.get("steps") or 20),
        "guidance_scale": float(settings.get("cfg") or 7.0),
    }
    call.update(overrides)
    channels = int(pipe.unet.config.in_channels)
    wanted = (1, channels, int(call["height"]) // factor, int(call["width"]) // factor)
    if tuple(noise.shape) != wanted:
        raise ValueError(
            raiiaf_replay.shape_mismatch(
                f.name, tuple(noise.shape), wanted, f"this pipeline ({factor}x VAE) at "
                f"{call['width']}x{call['height']}",
                "use a pipeline of the model family that wrote the file, or pass height= "
                "and width= that give the stored shape",
            )
        )  # fmt: skip
    sched, diffs = _foreign_scheduler(f, pipe, scheduler)
    diffs += raiiaf_replay.cross_host_differences(f.passes, f.meta, APP)
    stored_size = (f.meta.get("width"), f.meta.get("height"))
    if None not in stored_size and stored_size != (call["width"], call["height"]):
        diffs.append(Difference("size", "setting", stored_size, (call["width"], call["height"])))
    for d in diffs:
        warnings.warn(f"raiiaf replay: {d.text()}", UserWarning, stacklevel=3)
    call["generator"] = torch.Generator().manual_seed(int(p.seed or 0))
    call["output_type"] = "pil"
    with _attr(pipe, "scheduler", sched), _replaying(pipe, [f], call):
        images = list(pipe(**call).images)
    return Replay(images, diffs)


def replay(
    path: PathLike,
    pipe: Any,
    *,
    alone: bool = False,
    scheduler: str = "file",
    model: PathLike | None = None,
    **overrides: Any,
) -> Replay:
    """Regenerate the image of the sidecar ``path`` with ``pipe`` from its stored noise, RNG
    states and settings; ``Replay.images`` holds that one image. Differences of pipeline,
    scheduler, model and environment are found first, returned and warned.

    One image of a batch of ``n`` runs as a batch of ``n`` copies of itself (its prompt,
    noise and RNG state in every slot): at another batch size the kernels give other last
    bits (measured on CPU), and copies keep the shapes of the run that made it, so the
    image comes out bit for bit (``n`` times the work). ``alone=True`` runs it at batch size 1
    instead (measured: floats ~2e-6 off, about 0.01 % of 8-bit values off by one).

    ``scheduler``: ``"file"`` runs the stored scheduler class and config (the pipeline's
    own is put back after), ``"pipe"`` the pipeline's. ``overrides``: call arguments that
    replace stored ones (e.g. ``num_inference_steps``)."""
    f = _load(path, foreign=True)
    if not f.own:
        return _foreign(f, pipe, scheduler, overrides)
    diffs = differences(f, pipe, scheduler=scheduler, model=model) + _exactness(f, alone)
    per_prompt = int(f.own.get("num_images_per_prompt") or 1)
    n = 1 if alone else int(f.meta.get("batch_size") or 1)
    call = dict(f.own["call"])
    for k in _PROMPTS:
        if k in call:
            mine = _item(call[k], f.index, per_prompt)
            call[k] = [mine] * len(call[k]) if isinstance(call[k], list) and not alone else mine
    call["num_images_per_prompt"] = 1 if alone else per_prompt
    call.update(overrides)
    out = _run(pipe, [f] * n, call, scheduler, diffs)
    out.images = [out.images[0 if alone else f.index]]
    return out


def replay_batch(
    paths: Sequence[PathLike],
    pipe: Any,
    *,
    scheduler: str = "file",
    model: PathLike | None = None,
    **overrides: Any,
) -> Replay:
    """Regenerate a whole batch from its sidecars (any order), as one pipeline call as it
    ran: ValueError when the files are not one complete batch of one call."""
    files = sorted((_load(p) for p in paths), key=lambda f: f.index)
    if not files:
        raise ValueError("replay_batch needs the batch's .raiiaf files")
    ids = {f.meta.get("batch_id") for f in files}
    n = int(files[0].meta.get("batch_size") or 1)
    have = [f.index for f in files]
    if len(ids) != 1 or have != list(range(n)):
        raise ValueError(
            f"not one complete batch: batch ids {sorted(map(str, ids))}, images {have} of {n}; "
            "pass every file of one generate() call"
        )
    diffs = differences(files[0], pipe, scheduler=scheduler, model=model)
    call = dict(files[0].own["call"])
    call["num_images_per_prompt"] = int(files[0].own.get("num_images_per_prompt") or 1)
    call.update(overrides)
    return _run(pipe, files, call, scheduler, diffs)
