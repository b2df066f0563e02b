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
from raiiaf_rs import host as raiiaf_host
from raiiaf_rs import passes as raiiaf_passes
from raiiaf_rs import replay as raiiaf_replay

from . import batch_noise, capture, graph, host, paths, routes
from .passes import IsSampler, replay_pass, with_seed

RaiiafType = io.Custom("RAIIAF")
REPLAY_KEY = "raiiaf.replay"


@dataclass
class StoredPass:
    """One stored sampler pass: its noise and what it ran with."""

    name: str
    node_id: str  # the sampler node in the saved graph
    class_type: str
    noise: torch.Tensor
    seed: int | None
    input_latent: torch.Tensor | None = None  # pre-noised latents: the sampler's start
    latent_shapes: list[list[int]] | None = None  # nested latents: the packed shapes


@dataclass
class Stored:
    """Loaded file(s): passes in path order; for several files of one batch, each
    pass's tensors concatenated. ``rows``: the images' places in the batch they were
    sampled in (of ``batch_size``), which ancestral and SDE samplers need."""

    name: str
    passes: list[StoredPass]
    metadata: dict[str, Any]
    batch_size: int = 1
    rows: tuple[int, ...] = (0,)


def shape_error(name: str, stored: tuple, wanted: tuple, what: str) -> ValueError:
    return ValueError(
        raiiaf_replay.shape_mismatch(
            name,
            stored,
            wanted,
            what,
            "set the latent's width, height and batch size to match the file (use the "
            "loader's LATENT output) or load another file",
        )
    )


def _nested(t: torch.Tensor, shapes: list[list[int]] | None):
    """A packed tensor as ComfyUI's NestedTensor of ``shapes`` (nested latents)."""
    if not shapes:
        return t
    import comfy.nested_tensor
    import comfy.utils

    shapes = [[t.shape[0], *s[1:]] for s in shapes]
    return comfy.nested_tensor.NestedTensor(comfy.utils.unpack_latents(t, shapes))


class StoredNoise:
    """A NOISE (duck-typed like ComfyUI's Noise_RandomNoise): returns the
    stored tensor; ``seed`` is the stored seed, which ancestral and SDE
    samplers use for their per-step noise."""

    def __init__(self, stored: Stored):
        first = stored.passes[0]
        self.stored = stored
        self.noise = first.noise
        self.seed = 0 if first.seed is None else first.seed

    def generate_noise(self, input_latent: dict) -> torch.Tensor:
        samples = input_latent["samples"]
        first = self.stored.passes[0]
        want = _nested(self.noise, first.latent_shapes)
        if getattr(samples, "is_nested", False):
            got = [tuple(t.shape) for t in samples.unbind()]
            have = [tuple(t.shape) for t in want.unbind()] if first.latent_shapes else None
            if got != have:
                raise ValueError(
                    f"the stored noise has the nested shapes {have} but the latent has {got}; "
                    "use the loader's LATENT output or load another file"
                )
            return want
        if tuple(samples.shape) != tuple(self.noise.shape):
            raise shape_error(
                self.stored.name, tuple(self.noise.shape), tuple(samples.shape), "the latent"
            )
        out = self.noise.clone().to(dtype=samples.dtype)
        # Read by the capture hook's wrapper: these images' per-step noise as in their batch.
        out.raiiaf_rows = (self.stored.batch_size, self.stored.rows)
        return out


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
    if meta.get("warning"):
        lines.append(f"WARNING: {meta['warning']}")
    if meta.get("pre_noised"):
        lines.append(f"  pre-noised: {meta['pre_noised']}")
    refused = art.image and _image_check(art.image, _nbytes(art)).refused
    if refused:
        lines.append(f"IMAGE NOT LOADED: {refused}; the noise and settings loaded")
    unknown = meta.get("unknown_settings")
    if isinstance(unknown, dict) and unknown:
        lines.append(
            "NOT RECORDED (the file does not know them; the outputs for them are "
            "placeholders, set them yourself): "
            + "; ".join(f"{k}: {why}" for k, why in unknown.items())
        )
    found = raiiaf_replay.passes(art)
    lines += [f"  {raiiaf_replay.pass_text(p)}" for p in found]
    across = raiiaf_replay.cross_host_differences(found, meta, "comfyui")
    if across:
        lines.append(
            f"NOT EXACT IN COMFYUI (written by {across[0].stored}; the stored noise is used "
            "as it is, but):"
        )
        lines += [f"  - {d.text()}" for d in across]
    recorded = bool(art.environment)
    lines.append(raiiaf_host.drift_summary(host.drift(art) if recorded else [], recorded=recorded))
    return "\n".join(lines)


#: What the IMAGE output takes a pixel: float32 RGB (12) and PIL's decode it is made from (4).
IMAGE_BYTES_PER_PIXEL = 16


def _nbytes(art: raiiaf_rs.Artifact) -> int:
    return sum(t.numel() * t.element_size() for t in art.latents.values())


def _image_check(png: bytes, decoded_already: int = 0) -> raiiaf_host.ImageCheck:
    """May the IMAGE output be decoded (header only, the server's decoded-size limit)?"""
    return raiiaf_host.check_image(
        png,
        max_decoded_bytes=routes.max_decoded_bytes(),
        bytes_per_pixel=IMAGE_BYTES_PER_PIXEL,
        decoded_already=decoded_already,
    )


def _image(png: bytes | None, decoded_already: int = 0) -> torch.Tensor:
    """The IMAGE output: the embedded image, or a black 64x64 one when there is none or it
    is refused (over the limit: the summary says why, and the noise still loads)."""
    if not png or _image_check(png, decoded_already).refused:
        return torch.zeros((1, 64, 64, 3), dtype=torch.float32)
    from PIL import Image

    with Image.open(_io.BytesIO(png)) as img:
        pixels = np.asarray(img.convert("RGB")).astype(np.float32)  # one float copy
    pixels /= 255.0  # in place, the same values as before
    return torch.from_numpy(pixels)[None]


def _tensor(art: raiiaf_rs.Artifact, name: str) -> torch.Tensor:
    t = art.latents[name]
    return t.float() if art.dtypes[name] != "float32" else t


def read_artifact(file: str) -> raiiaf_rs.Artifact:
    path = paths.resolve(file)
    return raiiaf_replay.read(path, file, as_torch=True, hide=routes.hidden(path, file))


def stored_from(art: raiiaf_rs.Artifact, file: str) -> Stored:
    """The passes of a file of any host (raiiaf_rs.replay.passes: its ``passes`` key, or
    the old files' rules) whose noise it stores, in run order."""
    meta = art.metadata
    found = [p for p in raiiaf_replay.passes(art) if p.noise in art.latents]
    if not found:
        missing = meta.get("warning")
        raise ValueError(
            f"{file}: the file holds no noise to replay (latents: {list(art.latents)})"
            + (f"; {missing}" if missing else "")
        )
    # Nested latents' packed shapes are ComfyUI's own, in its capture records.
    records = {c.get("name"): c for c in meta.get("captures") or [] if isinstance(c, dict)}
    default_seed = (meta.get("generation_settings") or {}).get("seed")
    passes = [
        StoredPass(
            name=p.noise,
            node_id=str(p.source.get("node_id") or ""),
            class_type=str(p.source.get("class_type") or ""),
            noise=_tensor(art, p.noise),
            seed=p.seed if p.seed is not None else default_seed,
            input_latent=_tensor(art, p.input_latent) if p.input_latent in art.latents else None,
            latent_shapes=records.get(p.noise, {}).get("latent_shapes"),
        )
        for p in found
    ]
    size = meta.get("batch_size", 1)
    index = meta.get("batch_index", 0)
    if not (isinstance(size, int) and isinstance(index, int) and 0 <= index < size):
        size, index = 1, 0
    return Stored(name=file, passes=passes, metadata=meta, batch_size=size, rows=(index,))


def read_stored(file: str) -> tuple[raiiaf_rs.Artifact, Stored]:
    art = read_artifact(file)
    return art, stored_from(art, file)


class ChoiceOutput(io.Combo.Output):
    """A combo output typed by its option list, so it links into a core combo input
    such as KSampler's ``sampler_name``.

    Prompt validation accepts a link when the output's type equals the input's, and a
    V1 combo input's type is its option list. ComfyUI up to 0.7 typed
    ``io.Combo.Output`` that way; since 0.8 (upstream 0be8a76c) it is the string
    "COMBO", which validation refuses into a list-typed input (HTTP 400
    return_type_mismatch). Giving the very list the input uses keeps the link valid
    on every version (and a V3 "COMBO" input accepts any list-typed output)."""

    @property
    def io_type(self):
        return self.options


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
                ChoiceOutput(
                    "sampler_name",
                    display_name="sampler_name",
                    options=comfy.samplers.KSampler.SAMPLERS,
                ),
                ChoiceOutput(
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
        return outputs(stored, _image(art.image, _nbytes(art)), _summary(art, file))


def _placeholder(what: str, settings: dict, default: str) -> str:
    """The summary's line for a stored ``what`` (sampler, scheduler) ComfyUI does not have."""
    if settings.get(what) in (None, ""):
        return ""
    return (
        f"\nNOT EXACT: the file's {what} {settings[what]!r} has no ComfyUI counterpart; "
        f"the {what} output is {default!r}, set it yourself"
    )


def outputs(stored: Stored, image: torch.Tensor, summary: str) -> io.NodeOutput:
    """The loaders' outputs (one file or a batch of them)."""
    shapes = {p.name: tuple(p.noise.shape) for p in stored.passes}
    found = raiiaf_passes.passes_of(stored.metadata, shapes)
    settings = raiiaf_replay.first_settings(stored.metadata, found)
    first = stored.passes[0]
    seed = first.seed if first.seed is not None else int(settings.get("seed", 0))
    # A file of the webui names its sampler and scheduler the webui's way, a diffusers
    # file its scheduler class (the summary lists why neither is exact here).
    sampler = raiiaf_replay.comfyui_sampler(settings.get("sampler", "euler"))
    scheduler = raiiaf_replay.translate(
        settings.get("scheduler", "normal"), raiiaf_replay.SCHEDULERS_WEBUI_TO_COMFYUI
    )
    # A name ComfyUI does not have: a placeholder output, and the summary says so.
    if sampler not in comfy.samplers.KSampler.SAMPLERS:
        summary += _placeholder("sampler", settings, "euler")
        sampler = "euler"
    if scheduler not in comfy.samplers.KSampler.SCHEDULERS:
        summary += _placeholder("scheduler", settings, "normal")
        scheduler = "normal"
    if first.input_latent is not None:  # pre-noised: the sampler starts from it as it is
        latent = first.input_latent.clone()
    else:
        latent = _nested(torch.zeros_like(first.noise), first.latent_shapes)
    return io.NodeOutput(
        stored,
        StoredNoise(stored),
        {"samples": latent},
        image,
        int(seed),
        int(settings.get("steps", 20)),
        float(settings.get("cfg", 7.0)),
        sampler,
        scheduler,
        str(stored.metadata.get("prompt", "")),
        str(stored.metadata.get("negative_prompt", "")),
        summary,
    )


class _PassMap:
    """Which stored pass each sampler node of the replay graph gets: the pass saved
    from the node with the same id when every sampler there has one (the graph
    reloaded from the file), else the pass at the same position along the path: a
    sampler with k samplers upstream of it gets pass k, as the save node numbered
    them (upstream first). Patched or not, every sampler on the path counts, so a
    graph that patches only its second pass gives that pass the second stored one.
    A sampler served from ComfyUI's cache shifts nothing: positions come from the
    graph, not from the order calls happen in."""

    def __init__(self, stored: Stored, replay_id: str):
        self.stored = stored
        self.replay_id = replay_id
        self.lock = threading.Lock()
        self.prompt_id = ""
        self.calls: dict[str, int] = {}

    def index(self, prompt_id: str, exec_id: str) -> tuple[int | None, str]:
        """(pass index or None, what the sampler node is, for messages)."""
        real = graph.real_id(exec_id)
        with self.lock:
            if prompt_id != self.prompt_id:
                self.prompt_id, self.calls = prompt_id, {}
            call = self.calls.get(real, 0)
            self.calls[real] = call + 1
            order = sum(self.calls.values()) - 1
        prompt = host.running_prompt(prompt_id)
        if prompt is None:  # no graph to read: the k-th sampling run gets the k-th pass
            return (order if order < len(self.stored.passes) else None), f"sampler node {real}"
        what = f"sampler node {real} ({graph.class_of(prompt, real) or 'expanded'})"
        ids = [p.node_id for p in self.stored.passes]
        return replay_pass(prompt, real, call, ids, self.replay_id, _sampler(prompt)), what


def _sampler(prompt: dict) -> IsSampler:
    return lambda n: graph.class_of(prompt, n) in capture.seen_sampler_classes


def replay_wrapper(stored: Stored, replay_id: str = ""):
    """OUTER_SAMPLE wrapper: each sampler run gets its stored pass (see _PassMap): the
    noise, the seed and, for pre-noised latents, the input latent; and, for images of
    a batch replayed apart from it, their per-step noise as in that batch."""
    passes = _PassMap(stored, replay_id)

    def wrapper(executor, noise, latent_image, sampler, sigmas, *args, **kwargs):
        prompt_id, exec_id, _ = host.current_context()
        k, what = passes.index(prompt_id, exec_id)
        if k is None:
            print(f"[raiiaf] {stored.name}: no stored pass for {what}; it samples its own noise")
            return executor(noise, latent_image, sampler, sigmas, *args, **kwargs)
        p = stored.passes[k]
        saved = f"stored pass {p.name} (node {p.node_id or '?'}, {p.class_type or 'sampler'})"
        if tuple(p.noise.shape) != tuple(noise.shape):
            raise ValueError(
                f"{stored.name}: {saved} has noise of shape {list(p.noise.shape)} but {what} "
                f"samples a latent of shape {list(noise.shape)}; give that sampler a latent "
                "of the stored size (the loader's LATENT for the first pass) or check that "
                "the graph's passes are those of the saved one"
            )
        noise = p.noise.to(device=noise.device, dtype=noise.dtype)
        if p.input_latent is not None:
            if tuple(p.input_latent.shape) != tuple(latent_image.shape):
                raise ValueError(
                    f"{stored.name}: {saved} starts from a pre-noised latent of shape "
                    f"{list(p.input_latent.shape)} but {what} gets one of shape "
                    f"{list(latent_image.shape)}"
                )
            latent_image = p.input_latent.to(device=latent_image.device, dtype=latent_image.dtype)
        if p.seed is not None:
            args, kwargs = with_seed(args, kwargs, p.seed)
        with batch_noise.original_batch(stored.batch_size, stored.rows):
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
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def execute(cls, model, raiiaf):
        import comfy.patcher_extension as pe

        m = model.clone()
        m.remove_wrappers_with_key(pe.WrappersMP.OUTER_SAMPLE, REPLAY_KEY)
        m.add_wrapper_with_key(
            pe.WrappersMP.OUTER_SAMPLE,
            REPLAY_KEY,
            replay_wrapper(raiiaf, str(cls.hidden.unique_id)),
        )
        return io.NodeOutput(m)
