"""diffusers as a host: a pipeline call that writes a ``.raiiaf`` beside each image, and
the replay of such a file (one image of a batch alone, or the whole batch).

>>> import torch
>>> from diffusers import StableDiffusionPipeline
>>> from raiiaf_rs import diffusers as rd
>>> pipe = StableDiffusionPipeline.from_pretrained("path/to/model")
>>> gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
>>> run = rd.generate(pipe, "out/cat.png", prompt="a cat", num_images_per_prompt=2,
...                   num_inference_steps=20, generator=gens)
>>> run.saved[1].sidecar                        # out/cat-1.raiiaf, beside out/cat-1.png
>>> again = rd.replay(run.saved[1].sidecar, pipe)   # that image alone, same pixels
>>> again.differences                           # pipeline/scheduler/model/environment

What a bit-exact rerun needs, and so what :func:`generate` records (measured with
diffusers 0.35 and 0.42, tests/diffusers):

- the initial noise, drawn here exactly as the pipeline draws it (its own
  ``randn_tensor`` with the call's generators) and passed in as ``latents``: stored as
  ``initial_noise``; Euler (and every scheduler that draws nothing later) needs no more;
- each batch item's ``torch.Generator`` state right after that draw: ancestral
  schedulers (Euler a, DDPM, LCM...) draw again at every step, and the stored noise alone
  gives another image. A call without ``generator`` gets one CPU generator per image
  seeded from a fresh random seed (recorded), so that each image can be rerun;
- DPM++ SDE (``DPMSolverSDEScheduler``) ignores ``generator``: its Brownian tree is seeded
  from ``noise_sampler_seed`` or else from the *global* RNG. When the scheduler has no
  seed, each image gets its own (its generator's ``initial_seed()``) and is rerun alone;
  a scheduler configured with one int seed draws one tree for the whole batch, and the
  file says that its image reruns bit for bit only with its whole batch;
- img2img: the VAE encode draws ``latent_dist.sample(generator[i])`` before the noise: the
  encoded latents are stored (``initial_noise_input_latent``) with the noise and the
  states after the noise, and replay starts from them (no encode, no input image needed).

One image of a batch replays as a batch of copies of itself (its prompt, noise and RNG state
in every slot): CPU kernels give other last bits at another batch size (measured at batch
size 1: floats ~2e-6 off, about 0.01 % of 8-bit values off by one), so copies keep the
shapes of the run that made it and the image comes out bit for bit (``alone=True`` trades
that for speed). :func:`replay_batch` reruns the batch as it ran. Replay reports every
difference of pipeline, scheduler, model and environment first, as a typed list
(:func:`differences`) and as warnings; it never silently runs something else.

Supported: diffusers 0.35 to 0.42 (tests/diffusers, ``make diffusers-test``), txt2img and
img2img pipelines of the Stable Diffusion kind (SD 1.x/2.x, SDXL); others (inpaint...)
are refused before anything runs.

Not thread-safe for one pipeline object: a call wraps the pipeline's ``prepare_latents``
(and, for img2img, its scheduler's ``add_noise``) on the instance for its duration.
"""

from __future__ import annotations

import base64
import inspect
import io
import os
import random
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Union

import raiiaf_rs
from raiiaf_rs import host
from raiiaf_rs.passes import Pass, to_json

__all__ = [
    "APP",
    "Difference",
    "Replay",
    "Run",
    "Saved",
    "differences",
    "generate",
    "model_entries",
    "replay",
    "replay_batch",
]

PathLike = Union[str, "os.PathLike[str]"]

#: The host name in ``host``/``environment`` and ``passes[].source.host``.
APP = "diffusers"
NOISE = "initial_noise"
INPUT_LATENT = "initial_noise_input_latent"
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
_WEIGHTS = (".safetensors", ".bin", ".ckpt", ".pt", ".pth")


# --- results ----------------------------------------------------------------------------------
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


@dataclass(frozen=True)
class Difference:
    """One way the replay differs from the stored run (the fields of
    :class:`raiiaf_rs.replay.Difference`). ``kind``: ``pipeline``, ``scheduler``,
    ``setting``, ``model``, ``environment`` or ``batch``."""

    key: str
    kind: str
    stored: Any
    current: Any
    affects_pixels: bool = True
    label: str | None = None
    reason: str | None = None

    def text(self, here: str = "this run") -> str:
        name = self.label or self.key
        if self.reason:
            return f"{name}: {self.reason}"
        return f"{name}: file {self.stored!r}, {here} {self.current!r}"


@dataclass
class Replay:
    """What :func:`replay`/:func:`replay_batch` made: the images (PIL) in batch order and
    the differences found before running (also issued as warnings)."""

    images: list[Any]
    differences: list[Difference] = field(default_factory=list)


# --- capture ------------------------------------------------------------------------------------
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


def _state_b64(gen: Any) -> str:
    return base64.b64encode(gen.get_state().numpy().tobytes()).decode("ascii")


def _generator(device: str, state_b64: str) -> Any:
    import torch

    gen = torch.Generator(device=device)
    raw = bytearray(base64.b64decode(state_b64))
    gen.set_state(torch.frombuffer(raw, dtype=torch.uint8).clone())
    return gen


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


def _batch_size(call: Mapping[str, Any]) -> int:
    prompt = call.get("prompt")
    if isinstance(prompt, list):
        base = len(prompt)
    elif prompt is None and call.get("prompt_embeds") is not None:
        base = int(call["prompt_embeds"].shape[0])
    else:
        base = 1
    return base * int(call.get("num_images_per_prompt") or 1)


def _item(value: Any, i: int, per_prompt: int) -> Any:
    """Batch item ``i``'s prompt of a ``prompt`` argument (diffusers repeats each prompt
    ``num_images_per_prompt`` times in a row)."""
    return value[i // per_prompt] if isinstance(value, list) else value


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


# --- models and environment ----------------------------------------------------------------------
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


# --- generate ------------------------------------------------------------------------------------
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

    shape_note = _not_stored(explicit)
    env = _environment(pipe, str(gens[0].device))
    models = model_entries(pipe, model)
    model_name, _ = _model_source(pipe, model)
    batch_id = uuid.uuid4().hex
    saved = []
    for i, image in enumerate(images):
        meta = _metadata(
            pipe, explicit, call, rec, i, len(images), shared, forced, sde, sde_seeds,
            shape_note, models, model_name, batch_id, image, tags,
        )  # fmt: skip
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


def _metadata(
    pipe: Any,
    explicit: Mapping[str, Any],
    call: Mapping[str, Any],
    rec: _Recorder,
    i: int,
    n: int,
    shared: bool,
    forced: bool,
    sde: Any,
    sde_seeds: list[int] | None,
    not_stored: list[str],
    models: list[dict[str, Any]],
    model_name: str,
    batch_id: str,
    image: Any,
    tags: Sequence[str],
) -> dict[str, Any]:
    import diffusers

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
        model_name=model_name,
        tags=[APP, *tags],
        generation=host.Generation(
            seed=int(gen_i.initial_seed()), steps=steps, sampler=sched, cfg_scale=float(cfg or 0)
        ),
        denoise=denoise,
        width=image.width,
        height=image.height,
        batch_index=i,
        batch_size=n,
        batch_id=batch_id,
        models=models,
        extra={
            "passes": to_json([one]),
            APP: {
                "pipeline": type(pipe).__name__,
                "scheduler": sched,
                "scheduler_config": _scheduler_config(pipe.scheduler),
                "call": stored_call,
                "num_images_per_prompt": per_prompt,
                "generator": "shared" if shared else ("forced" if forced else "per_image"),
                "generator_is_list": isinstance(call.get("generator"), (list, tuple)) or forced,
                "diffusers_version": diffusers.__version__,
            },
        },
    )


# --- replay --------------------------------------------------------------------------------------
_PROMPTS = ("prompt", "prompt_2", "negative_prompt", "negative_prompt_2")


@dataclass(frozen=True)
class _File:
    """One sidecar read back for replay."""

    name: str
    art: Any
    meta: Mapping[str, Any]
    own: Mapping[str, Any]
    step: Pass

    @property
    def index(self) -> int:
        return int(self.meta.get("batch_index") or 0)


def _load(path: PathLike) -> _File:
    from raiiaf_rs.passes import passes_of

    name = os.path.basename(os.fspath(path))
    art = raiiaf_rs.read(path, as_torch=True)
    meta = art.metadata if isinstance(art.metadata, Mapping) else {}
    own = meta.get(APP)
    if not isinstance(own, Mapping) or "call" not in own:
        raise ValueError(
            f"{name}: not written by raiiaf_rs.diffusers.generate (no '{APP}' settings); "
            "only its own files can be replayed by a pipeline"
        )
    shapes = {k: tuple(v.shape) for k, v in art.latents.items()}
    found = passes_of(meta, shapes, dict(art.dtypes))
    if not found:
        raise ValueError(f"{name}: the file holds no sampler pass")
    return _File(name, art, meta, own, found[0])


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
    noise and RNG state in every slot): CPU and GPU kernels give other last bits at
    another batch size, and copies keep the shapes of the run that made it, so the image
    comes out bit for bit (``n`` times the work). ``alone=True`` runs it at batch size 1
    instead (measured: floats ~2e-6 off, about 0.01 % of 8-bit values off by one).

    ``scheduler``: ``"file"`` runs the stored scheduler class and config (the pipeline's
    own is put back after), ``"pipe"`` the pipeline's. ``overrides``: call arguments that
    replace stored ones (e.g. ``num_inference_steps``)."""
    f = _load(path)
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
