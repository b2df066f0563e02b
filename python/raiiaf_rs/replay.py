"""Reading a ``.raiiaf`` to replay it, the same in every host (FORMAT.md, "Sampler passes").

The write half is :mod:`raiiaf_rs.host`; this is the read half. The ComfyUI nodes and
routes and the webui extension use it, so every host:

- reads under one size policy (:data:`HOST_MAX_DECODED_BYTES`, replaced by
  ``$RAIIAF_MAX_DECODED_BYTES``), :func:`read`;
- turns read errors into one set of messages that name the file as the user gave it and
  never a path on the machine (:class:`ReadError`);
- describes latent shapes with the same "8x pixels" hint (:func:`shape_text`,
  :func:`shape_mismatch`);
- returns the ordered sampler passes with their settings (:func:`passes`,
  :func:`first_settings`), for files of any host and of earlier versions;
- compares what was stored with what is about to run as one typed list of
  :class:`Difference` (:func:`compare`, :func:`environment_differences`,
  :func:`cross_host_differences`), and says when a file of another host cannot be
  regenerated exactly, and why.

No UI imports: a host passes its own values in and shows the messages its own way.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import raiiaf_rs
from raiiaf_rs import passes as _passes
from raiiaf_rs.passes import Pass

__all__ = [
    "ENV_MAX_DECODED_BYTES",
    "HOST_MAX_DECODED_BYTES",
    "PLAIN_GRAPH_CLASSES",
    "SAMPLERS_DIFFUSERS_TO_COMFYUI",
    "SAMPLERS_WEBUI_TO_COMFYUI",
    "SCHEDULERS_WEBUI_TO_COMFYUI",
    "Difference",
    "ReadError",
    "comfyui_sampler",
    "compare",
    "cross_host_differences",
    "environment_differences",
    "first_settings",
    "max_decoded_bytes",
    "pass_text",
    "passes",
    "plain_graph_refusal",
    "read",
    "read_error",
    "shape_mismatch",
    "shape_text",
    "translate",
]

PathLike = Union[str, "os.PathLike[str]"]

#: What one file may decode to when a host UI reads it (its tensors, its image and its
#: environment): files come from users and the network, so tighter than the library's
#: 1 GiB. A 2048x2048 SDXL file with hires noise and a PNG decodes to well under 100 MiB.
HOST_MAX_DECODED_BYTES = 256 << 20

#: The one override, read by the library itself: bytes, or e.g. ``1G``.
ENV_MAX_DECODED_BYTES = "RAIIAF_MAX_DECODED_BYTES"


def max_decoded_bytes() -> int | None:
    """The host limit to pass to :func:`raiiaf_rs.read`: None when
    ``$RAIIAF_MAX_DECODED_BYTES`` is set (the library reads it), else
    :data:`HOST_MAX_DECODED_BYTES`."""
    return None if os.environ.get(ENV_MAX_DECODED_BYTES) else HOST_MAX_DECODED_BYTES


# --- reading ---------------------------------------------------------------------------------
class ReadError(ValueError):
    """A file that cannot be read for a replay. The message starts with the file's name
    as the user gave it (``name: reason``) and never holds a path the user did not give.
    ``reason``: the message without the name."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


def _hide(message: str, hide: Mapping[str, str]) -> str:
    for text in sorted(hide, key=len, reverse=True):
        if text:
            message = message.replace(text, hide[text])
    return message


def read_error(e: BaseException, name: str, hide: Mapping[str, str] | None = None) -> ReadError:
    """The one message for an error reading file ``name``. ``hide``: texts (paths) to
    replace in the library's message, e.g. ``{"/srv/input/": ""}``."""
    hide = hide or {}
    if isinstance(e, ReadError):
        return e
    if isinstance(e, raiiaf_rs.errors.DecodedSizeLimitError):
        return ReadError(
            name,
            f"too large: it would decode to {e.declared:,} bytes, more than this host's limit "
            f"of {e.limit:,} (set {ENV_MAX_DECODED_BYTES} to raise it)",
        )
    if isinstance(e, raiiaf_rs.HashMismatchError):
        return ReadError(
            name,
            "the file was altered or damaged: it fails its integrity check "
            f"({_hide(str(e), hide)})",
        )
    if isinstance(e, raiiaf_rs.RaiiafError):  # a forged size is a corrupt file, not a big one
        return ReadError(name, f"not a readable .raiiaf file ({_hide(str(e), hide)})")
    if isinstance(e, OSError):
        return ReadError(name, f"could not be read ({e.strerror or type(e).__name__})")
    # e.g. metadata that is not JSON
    return ReadError(name, f"not a readable .raiiaf file ({type(e).__name__})")


def read(
    source: PathLike | bytes,
    name: str,
    *,
    as_torch: bool = False,
    hide: Mapping[str, str] | None = None,
    limit: int | None = None,
    how: Callable[..., Any] | None = None,
) -> Any:
    """Read and verify ``source`` (a path, or the file's bytes) under the host size policy
    (``limit`` replaces it); ReadError names the file ``name``. ``how(source,
    max_decoded_bytes=...)`` replaces :func:`raiiaf_rs.read` for a step of reading (e.g.
    :func:`raiiaf_rs.read_metadata`); its result is returned."""
    bound = limit if limit is not None else max_decoded_bytes()
    try:
        if how is not None:
            return how(source, max_decoded_bytes=bound)
        if isinstance(source, (bytes, bytearray, memoryview)):
            return raiiaf_rs.read_bytes(source, as_torch=as_torch, max_decoded_bytes=bound)
        return raiiaf_rs.read(source, as_torch=as_torch, max_decoded_bytes=bound)
    except Exception as e:
        raise read_error(e, name, hide) from None


# --- shapes ---------------------------------------------------------------------------------
def shape_text(shape: Sequence[int]) -> str:
    """A latent shape with the image size it stands for: ``[1, 4, 64, 64] (about 512x512
    pixels for an 8x VAE)``; shapes with fewer than three dimensions as the list alone."""
    shape = [int(d) for d in shape]
    if len(shape) < 3:
        return str(shape)
    h, w = shape[-2], shape[-1]
    return f"{shape} (about {w * 8}x{h * 8} pixels for an 8x VAE)"


def shape_mismatch(
    name: str, stored: Sequence[int], wanted: Sequence[int], what: str, fix: str
) -> str:
    """The message for stored noise whose shape is not the one the run needs; ``what``:
    what needs ``wanted`` ("the latent", "this hires pass"); ``fix``: what to do, in the
    host's words."""
    return (
        f"{name}: the stored noise has shape {shape_text(stored)} but {what} needs "
        f"{shape_text(wanted)}; {fix}"
    )


# --- passes ---------------------------------------------------------------------------------
def passes(art: Any) -> list[Pass]:
    """The sampler passes of a read file (:func:`raiiaf_rs.passes.passes_of`), whose
    noise is stored, in run order. ReadError for a malformed ``passes`` key."""
    meta = art.metadata if isinstance(art.metadata, Mapping) else {}
    shapes = {k: tuple(getattr(v, "shape", ())) for k, v in art.latents.items()}
    try:
        return _passes.passes_of(meta, shapes, dict(art.dtypes))
    except ValueError as e:
        raise ReadError(getattr(art, "path", "") or "the file", f"malformed passes: {e}") from None


def first_settings(metadata: Mapping[str, Any], found: Sequence[Pass]) -> dict[str, Any]:
    """The first pass's settings with the file's ``generation_settings`` filling gaps:
    ``sampler``, ``scheduler``, ``steps``, ``cfg``, ``denoise``, ``seed`` (those known).
    ``found``: :func:`passes` of the file."""
    gen = metadata.get("generation_settings")
    gen = gen if isinstance(gen, Mapping) else {}
    out: dict[str, Any] = {}
    for key, src in (("sampler", "sampler"), ("scheduler", "scheduler"), ("steps", "steps")):
        if gen.get(src) not in (None, ""):
            out[key] = gen[src]
    if gen.get("cfg_scale") is not None:
        out["cfg"] = gen["cfg_scale"]
    if gen.get("seed") is not None:
        out["seed"] = gen["seed"]
    if found:
        out.update({k: v for k, v in found[0].settings.items() if v is not None})
        if found[0].seed is not None:
            out["seed"] = found[0].seed
    return out


def pass_text(p: Pass) -> str:
    """One line for a UI: ``pass 0 txt2img: initial_noise [1, 4, 64, 64] seed 5, euler
    normal 20 steps cfg 7.0 (webui first)``."""
    settings = " ".join(
        f"{v}" if k in ("sampler", "scheduler") else f"{k} {v}"
        for k, v in p.settings.items()
        if v is not None
    )
    where = " ".join(str(v) for k, v in p.source.items() if v not in (None, ""))
    noise = f"{p.noise} {list(p.noise_shape or [])}" if p.noise else "noise not stored"
    seed = f" seed {p.seed}" if p.seed is not None else ""
    start = "" if p.adds_noise else ", starts pre-noised"
    exact = "" if p.exact else f"; NOT EXACT: {'; '.join(p.why_not_exact)}"
    where = where or "unknown writer"
    return f"pass {p.order} {p.role}: {noise}{seed}, {settings}{start} ({where}){exact}"


# --- differences ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Difference:
    """One way the run about to start differs from the one stored.

    ``kind``: ``setting`` (a value of the generation), ``opts`` (a host-wide setting, the
    webui's settings page), ``p`` (a value the webui keeps on its processing object),
    ``environment`` (a component of the environment document), ``host`` (the file was
    made by another host: ``stored``/``current`` name the two, ``reason`` says why exact
    regeneration is impossible); a host may add kinds of its own. ``affects_pixels``:
    whether it can change the image. ``label``: the name the UI shows (the key when None)."""

    key: str
    kind: str
    stored: Any
    current: Any
    affects_pixels: bool = True
    label: str | None = None
    reason: str | None = None

    def text(self, here: str = "this run") -> str:
        """One line: ``label: file <stored>, <here> <current>`` (with the reason for a
        ``host`` difference)."""
        name = self.label or self.key
        if self.reason:
            return f"{name}: {self.reason}"
        return f"{name}: file {self.stored!r}, {here} {self.current!r}"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers):
        return float(a) == float(b)
    return a == b


def compare(
    stored: Mapping[str, Any],
    current: Mapping[str, Any],
    *,
    kind: str = "setting",
    labels: Mapping[str, str] | None = None,
    skip_unknown: bool = True,
) -> list[Difference]:
    """The keys whose values differ (numbers compared as numbers), in ``stored``'s order.
    ``skip_unknown``: a key the file does not hold (or holds as None) is no difference."""
    labels = labels or {}
    out = []
    for key in list(stored) + [k for k in current if k not in stored]:
        a, b = stored.get(key), current.get(key)
        if a is None and skip_unknown:
            continue
        if not _same(a, b):
            out.append(Difference(key, kind, a, b, label=labels.get(key)))
    return out


def environment_differences(drifts: Iterable[Any]) -> list[Difference]:
    """:func:`raiiaf_rs.host.environment_drift`'s result as differences."""
    return [
        Difference(
            d.component, "environment", d.stored, d.current, affects_pixels=bool(d.affects_pixels)
        )
        for d in drifts
    ]


#: Samplers that draw new noise at every step from the host's generator (ComfyUI and
#: webui names, lower case); the file stores only the initial noise.
_PER_STEP = ("ancestral", "_sde", " sde", "sde_", "dpm2 a", "euler a", "lcm", "restart", "ddpm")


def _per_step(sampler: Any) -> bool:
    s = str(comfyui_sampler(sampler) or "").lower()
    return s.endswith(" a") or any(k in s for k in _PER_STEP)


def cross_host_differences(
    found: Sequence[Pass], metadata: Mapping[str, Any], here: str
) -> list[Difference]:
    """Why a file written by another host cannot be regenerated bit for bit by host
    ``here`` (``comfyui``, ``webui``, ``diffusers``), one ``host`` difference a reason;
    empty when every pass was written by ``here`` or by an unknown writer. The stored
    noise goes in as it is; what differs is everything computed from it."""
    writers = {p.host for p in found if p.host and p.host != here}
    if not writers:
        return []
    there = ", ".join(sorted(writers))

    def diff(key: str, reason: str) -> Difference:
        return Difference(key, "host", there, here, label=key, reason=reason)

    out = []
    if metadata.get("prompt") or metadata.get("negative_prompt"):
        out.append(
            diff(
                "prompt weighting",
                f"{there} and {here} parse the prompt differently (emphasis such as "
                "(word:1.2) and [word], long prompts split into 75-token chunks, "
                "normalisation of weights), so the conditioning differs",
            )
        )
    for p in found:
        sampler = p.settings.get("sampler")
        label = f"pass {p.order} ({p.role})"
        out.append(
            diff(
                f"{label} sampler implementation",
                f"{there}'s sampler {sampler!r} and {here}'s are separate implementations "
                "(model wrapper, CFG, float order of operations): the result is close, "
                "not identical",
            )
        )
        if p.sigmas is None:
            out.append(
                diff(
                    f"{label} scheduler",
                    f"the file does not store the sigmas {there} sampled; {here} computes "
                    f"its own from the scheduler {p.settings.get('scheduler')!r}",
                )
            )
        if _per_step(sampler):
            out.append(
                diff(
                    f"{label} noise device",
                    f"the sampler {sampler!r} draws new noise at every step from the host's "
                    f"own generator ({here}'s differs from {there}'s in device and seeding); "
                    "the file stores only the initial noise",
                )
            )
        if p.role in ("hires", "refiner") and p.input_latent is None:
            out.append(
                diff(
                    f"{label} input",
                    f"the pass starts from {there}'s upscaled first pass, which is not "
                    f"stored; {here} upscales its own",
                )
            )
        if not p.exact:
            for why in p.why_not_exact:
                out.append(diff(f"{label} not exact in {there} either", why))
    return out


#: ComfyUI node classes of a plain txt2img / img2img / hires graph: what the webui's own
#: passes can do too (one model, text prompts, KSampler passes, latent or pixel upscale).
PLAIN_GRAPH_CLASSES = frozenset(
    {
        "CheckpointLoaderSimple",
        "CLIPTextEncode",
        "EmptyLatentImage",
        "KSampler",
        "VAEDecode",
        "VAEEncode",
        "LoadImage",
        "LatentUpscale",
        "LatentUpscaleBy",
        "ImageScale",
        "ImageScaleBy",
        "SaveImage",
        "PreviewImage",
        "RaiiafSave",
        "RaiiafSaveImage",
    }
)


def plain_graph_refusal(found: Sequence[Pass], metadata: Mapping[str, Any]) -> str | None:
    """Why a ComfyUI file cannot be replayed by a host with fixed txt2img/img2img/hires
    passes (the webui); None when its graph is plain (:data:`PLAIN_GRAPH_CLASSES`, one
    or two KSampler passes, the second a hires pass, noise stored for the first)."""
    if not found or found[0].host != "comfyui":
        return None
    comfy = metadata.get("comfyui")
    graph = comfy.get("prompt") if isinstance(comfy, Mapping) else None
    if isinstance(graph, Mapping):
        classes = {str(n.get("class_type")) for n in graph.values() if isinstance(n, Mapping)}
        other = sorted(classes - PLAIN_GRAPH_CLASSES)
        if other:
            return (
                "its ComfyUI graph is not a plain txt2img/img2img/hires graph (it uses "
                f"{', '.join(other)}); load it in ComfyUI"
            )
    if len(found) > 2:
        return f"it holds {len(found)} sampler passes; the webui runs at most two (first and hires)"
    for p in found:
        cls = p.source.get("class_type")
        if cls not in (None, "KSampler"):
            return f"pass {p.order} ran in a {cls} node, not a plain KSampler; load it in ComfyUI"
        if not p.adds_noise:
            return f"pass {p.order} started from a pre-noised latent, which the webui cannot do"
    if found[0].noise is None:
        return "it holds no noise for the first pass"
    if len(found) == 2 and found[1].role != "hires":
        return f"its second pass is a {found[1].role} pass, not a hires pass"
    return None


# --- names across hosts ------------------------------------------------------------------------
#: The webui's sampler names and ComfyUI's for the same k-diffusion sampler.
SAMPLERS_WEBUI_TO_COMFYUI = {
    "Euler": "euler",
    "Euler a": "euler_ancestral",
    "Heun": "heun",
    "LMS": "lms",
    "DPM2": "dpm_2",
    "DPM2 a": "dpm_2_ancestral",
    "DPM fast": "dpm_fast",
    "DPM adaptive": "dpm_adaptive",
    "DPM++ 2S a": "dpmpp_2s_ancestral",
    "DPM++ 2M": "dpmpp_2m",
    "DPM++ SDE": "dpmpp_sde",
    "DPM++ 2M SDE": "dpmpp_2m_sde",
    "DPM++ 3M SDE": "dpmpp_3m_sde",
    "DDIM": "ddim",
    "UniPC": "uni_pc",
    "LCM": "lcm",
}

#: The webui's scheduler names and ComfyUI's for the same sigmas ("Automatic" and
#: "Uniform": the model's own discretization, ComfyUI's "normal").
SCHEDULERS_WEBUI_TO_COMFYUI = {
    "Automatic": "normal",
    "Uniform": "normal",
    "Karras": "karras",
    "Exponential": "exponential",
    "Polyexponential": "polyexponential",
    "SGM Uniform": "sgm_uniform",
    "Simple": "simple",
    "Normal": "normal",
    "DDIM": "ddim_uniform",
    "Beta": "beta",
}


def translate(value: Any, table: Mapping[str, str], reverse: bool = False) -> Any:
    """``value`` in the other host's names (``reverse``: ComfyUI's to the webui's);
    unchanged when it is already one of the target's names or has no counterpart."""
    pairs = {v: k for k, v in table.items()} if reverse else table
    return pairs.get(value, value) if isinstance(value, str) else value


#: diffusers scheduler classes and the ComfyUI sampler of the same method (their sigmas:
#: the class's own ``timestep_spacing``, not a ComfyUI scheduler). A class missing here
#: has no ComfyUI or webui counterpart.
SAMPLERS_DIFFUSERS_TO_COMFYUI = {
    "EulerDiscreteScheduler": "euler",
    "EulerAncestralDiscreteScheduler": "euler_ancestral",
    "HeunDiscreteScheduler": "heun",
    "LMSDiscreteScheduler": "lms",
    "KDPM2DiscreteScheduler": "dpm_2",
    "KDPM2AncestralDiscreteScheduler": "dpm_2_ancestral",
    "DPMSolverMultistepScheduler": "dpmpp_2m",
    "DPMSolverSDEScheduler": "dpmpp_sde",
    "DDIMScheduler": "ddim",
    "UniPCMultistepScheduler": "uni_pc",
    "LCMScheduler": "lcm",
    "DDPMScheduler": "ddpm",
}


def comfyui_sampler(value: Any) -> Any:
    """A sampler name of any host (webui name, diffusers scheduler class, ComfyUI name)
    as ComfyUI's; unchanged when it has no counterpart."""
    value = translate(value, SAMPLERS_DIFFUSERS_TO_COMFYUI)
    return translate(value, SAMPLERS_WEBUI_TO_COMFYUI)
