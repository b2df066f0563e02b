"""What the diffusers host's capture and replay share: the result types, the file's tensor
names, the pipeline kinds it supports, and the model fingerprints and environment."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Union

import raiiaf_rs
from raiiaf_rs import host
from raiiaf_rs.replay import Difference  # the hosts' one typed difference

PathLike = Union[str, "os.PathLike[str]"]


#: The host name in ``host``/``environment`` and ``passes[].source.host``.
APP = "diffusers"


NOISE = "initial_noise"


INPUT_LATENT = "initial_noise_input_latent"


_WEIGHTS = (".safetensors", ".bin", ".ckpt", ".pt", ".pth")


@dataclass(frozen=True)
class Saved:
    """One image :func:`generate` saved, and its sidecar."""

    image: str
    sidecar: str
    batch_index: int


@dataclass
class Run:
    """What :func:`generate` made: the pipeline's images (PIL), in batch order, and where
    each was saved."""

    images: list[Any]
    saved: list[Saved]


@dataclass
class Replay:
    """What :func:`replay`/:func:`replay_batch` made: the images (PIL) in batch order and
    the differences found before running (also issued as warnings)."""

    images: list[Any]
    differences: list[Difference] = field(default_factory=list)


def _json_safe(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_json_safe(v) for v in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _json_safe(v) for k, v in value.items())
    return False


def _plain(value: Any) -> Any:
    """A config value as JSON (tuples as lists, numpy arrays as lists)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _scheduler_config(scheduler: Any) -> dict[str, Any]:
    return {k: _plain(v) for k, v in dict(scheduler.config).items() if not k.startswith("_")}


_TXT2IMG = {
    "batch_size",
    "num_channels_latents",
    "height",
    "width",
    "dtype",
    "device",
    "generator",
    "latents",
}


_IMG2IMG = {
    "image",
    "timestep",
    "batch_size",
    "num_images_per_prompt",
    "dtype",
    "device",
    "generator",
}


def _is_img2img(pipe: Any) -> bool:
    """Whether ``pipe`` starts from an image (SD/SDXL img2img) or from noise (txt2img), by
    its ``prepare_latents``; ValueError for any other kind (inpaint, video...), whose
    latents this module does not know how to record."""
    fn = getattr(pipe, "prepare_latents", None)
    params = set(inspect.signature(fn).parameters) if callable(fn) else set()
    if params >= _IMG2IMG and "mask" not in " ".join(params):
        return True
    if params >= _TXT2IMG and "image" not in params:
        return False
    raise ValueError(
        f"{type(pipe).__name__} is not supported by raiiaf_rs.diffusers: it records "
        "txt2img and img2img pipelines of the Stable Diffusion kind (StableDiffusionPipeline, "
        "StableDiffusionXLPipeline and their img2img pipelines)"
    )


def _item(value: Any, i: int, per_prompt: int) -> Any:
    """Batch item ``i``'s prompt of a ``prompt`` argument (diffusers repeats each prompt
    ``num_images_per_prompt`` times in a row)."""
    return value[i // per_prompt] if isinstance(value, list) else value


def _bind(fn: Callable[..., Any], args: tuple, kwargs: dict) -> inspect.BoundArguments:
    bound = inspect.signature(fn).bind(*args, **kwargs)
    bound.apply_defaults()
    return bound


@contextmanager
def _attr(obj: Any, name: str, value: Any) -> Iterator[None]:
    """``obj.name = value`` on the instance for the block (the class's own again after)."""
    had = name in vars(obj)
    old = vars(obj).get(name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        if had:
            setattr(obj, name, old)
        else:
            delattr(obj, name)


@contextmanager
def _maybe_seed(pipe: Any, seeds: list[int] | int | None) -> Iterator[None]:
    """Set DPM++ SDE's ``noise_sampler_seed`` for the block: a list (one Brownian tree per
    image) or an int (one tree for the batch); None: leave it."""
    if seeds is None:
        yield
        return
    sched = pipe.scheduler
    old = sched.noise_sampler_seed
    sched.noise_sampler_seed = list(seeds) if isinstance(seeds, list) else seeds
    sched.noise_sampler = None
    try:
        yield
    finally:
        sched.noise_sampler_seed = old
        sched.noise_sampler = None


def _weight_files(folder: str) -> Iterator[tuple[str, str]]:
    """``(component, path)`` of each weights file of a diffusers folder."""
    for comp in sorted(os.listdir(folder)):
        sub = os.path.join(folder, comp)
        if os.path.isdir(sub):
            for name in sorted(os.listdir(sub)):
                if name.endswith(_WEIGHTS):
                    yield comp, os.path.join(sub, name)


def _model_source(pipe: Any, model: PathLike | None) -> tuple[str, str | None]:
    """``(name, local path or None)``: the model's file, folder or repo id."""
    src = os.fspath(model) if model is not None else str(pipe.name_or_path or "")
    if os.path.exists(src):
        return os.path.basename(os.path.normpath(src)), src
    try:  # a repo id already in the Hugging Face cache (never downloads)
        from huggingface_hub import snapshot_download

        return src, snapshot_download(src, local_files_only=True)
    except Exception:
        return src, None


def model_entries(pipe: Any, model: PathLike | None = None) -> list[dict[str, Any]]:
    """Metadata ``models`` of ``pipe``: one entry per weights file of the folder it was
    loaded from (``model``: a file, folder or repo id instead of ``pipe.name_or_path``),
    with SHA-256 (:func:`raiiaf_rs.fingerprint`, cached); a single-file checkpoint as role
    ``checkpoint``; a repo id not on this machine as one entry with ``sha256`` None."""
    name, path = _model_source(pipe, model)
    if path is None:
        return [host.model_entry("pipeline", name or "unknown", None, repo_id=name or None)]
    if os.path.isfile(path):
        return [host.model_entry("checkpoint", name, raiiaf_rs.fingerprint(path).sha256)]
    return [
        host.model_entry(comp, f, raiiaf_rs.fingerprint(f).sha256, component=comp)
        for comp, f in _weight_files(path)
    ]


def _environment(pipe: Any, device: str) -> dict[str, Any]:
    import diffusers

    dtypes = {}
    for role in ("unet", "vae", "text_encoder", "text_encoder_2"):
        module = getattr(pipe, role, None)
        if module is not None and hasattr(module, "dtype"):
            dtypes[role] = str(module.dtype).removeprefix("torch.")
    procs = getattr(getattr(pipe, "unet", None), "attn_processors", None) or {}
    attention = type(next(iter(procs.values()))).__name__ if procs else None
    return host.capture_environment(
        host.Host(APP, diffusers.__version__),
        attention=attention,
        dtypes=dtypes,
        noise_device=device,
    )
