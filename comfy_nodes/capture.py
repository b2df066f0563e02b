"""Capturing the initial noise of every sampler call.

ComfyUI hands the raw, unscaled initial noise to the guider's ``outer_sample``
for KSampler, KSamplerAdvanced, SamplerCustom and SamplerCustomAdvanced alike,
together with the seed and the exact sigmas. An ``OUTER_SAMPLE`` wrapper sees
all of it. This module provides that wrapper and two ways to install it:

- globally (default): every sampling run gets the wrapper, so replacing
  SaveImage by the pack's save node is all a graph needs. Switch it off by
  setting the environment variable ``RAIIAF_CAPTURE=0`` before ComfyUI starts
  (then use the "Capture noise" MODEL patch node where wanted);
- per model: :func:`patch_model` adds it to a cloned MODEL.

Captures are kept per prompt id (at most the last few prompts) for the save
node of the same prompt to pick up.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import torch

WRAPPER_KEY = "raiiaf.capture"
KEEP_PROMPTS = 8


@dataclass
class Capture:
    """One sampler call: its initial noise and the settings it really ran with."""

    node_id: str
    order: int
    noise: torch.Tensor
    seed: int | None
    sigmas: list[float]
    sampler: str
    cfg: float | None
    is_zero: bool
    final_latent: torch.Tensor | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """Latent name in the file: the first pass is ``initial_noise``."""
        if self.order == 0:
            return "initial_noise"
        return f"noise_{self.order}_node_{self.node_id}"


_lock = threading.Lock()
_captures: OrderedDict[str, list[Capture]] = OrderedDict()


def _context() -> tuple[str, str]:
    """(prompt_id, node_id) of the sampler node now executing."""
    try:
        from comfy_execution.utils import get_executing_context

        ctx = get_executing_context()
    except ImportError:  # ComfyUI without execution contexts
        ctx = None
    if ctx is None:
        return "", ""
    return str(ctx.prompt_id), str(ctx.node_id)


def captures_for(prompt_id: str) -> list[Capture]:
    with _lock:
        return list(_captures.get(prompt_id, []))


def _record(prompt_id: str, capture_fn) -> Capture:
    with _lock:
        calls = _captures.setdefault(prompt_id, [])
        _captures.move_to_end(prompt_id)
        while len(_captures) > KEEP_PROMPTS:
            _captures.popitem(last=False)
        cap = capture_fn(len(calls))
        calls.append(cap)
        return cap


def _sampler_name(sampler: Any) -> str:
    fn = getattr(sampler, "sampler_function", None)
    name = getattr(fn, "__name__", type(sampler).__name__)
    return name[len("sample_") :] if name.startswith("sample_") else name


def outer_sample_wrapper(executor, noise, latent_image, sampler, sigmas, *args, **kwargs):
    """OUTER_SAMPLE wrapper: records the call, then continues the chain with
    every argument untouched (unknown arguments included)."""
    seed = kwargs.get("seed", args[3] if len(args) > 3 else None)
    guider = getattr(executor, "class_obj", None)
    prompt_id, node_id = _context()
    if isinstance(noise, torch.Tensor) and not getattr(noise, "is_nested", False):
        cpu = noise.detach().to("cpu", copy=True)
        extra: dict[str, Any] = {}
        patcher = getattr(guider, "model_patcher", None)
        if patcher is not None:
            try:
                extra["model_class"] = type(patcher.model).__name__
                extra["model_dtype"] = str(patcher.model_dtype()).replace("torch.", "")
            except Exception:  # descriptive only
                pass

        def make(order: int) -> Capture:
            return Capture(
                node_id=node_id,
                order=order,
                noise=cpu,
                seed=None if seed is None else int(seed),
                sigmas=[float(s) for s in sigmas.detach().cpu().reshape(-1).tolist()],
                sampler=_sampler_name(sampler),
                cfg=getattr(guider, "cfg", None),
                is_zero=not bool(cpu.any()),
                extra=extra,
            )

        cap = _record(prompt_id, make)
    else:
        cap = None
    out = executor(noise, latent_image, sampler, sigmas, *args, **kwargs)
    if cap is not None and isinstance(out, torch.Tensor):
        cap.final_latent = out.detach().to("cpu", copy=True)
    return out


def patch_model(model):
    """A clone of ``model`` whose sampling runs are captured."""
    import comfy.patcher_extension as pe

    m = model.clone()
    if not m.get_wrappers(pe.WrappersMP.OUTER_SAMPLE, WRAPPER_KEY):
        m.add_wrapper_with_key(pe.WrappersMP.OUTER_SAMPLE, WRAPPER_KEY, outer_sample_wrapper)
    return m


def global_capture_enabled() -> bool:
    return os.environ.get("RAIIAF_CAPTURE", "1").strip().lower() not in ("0", "false", "no", "off")


_installed = False


def install_global_hook() -> bool:
    """Add the capture wrapper to every sampling run, after the model's own
    wrappers (so it records the noise really used, e.g. after a replay patch).

    ComfyUI merges a model's wrappers into the run's options in
    ``comfy.sampler_helpers.prepare_model_patcher``; this wraps that function
    and appends the capture wrapper under its own key, so other packs'
    wrappers chain as before. Returns whether the hook is active.
    """
    global _installed
    if _installed or not global_capture_enabled():
        return _installed
    import comfy.patcher_extension as pe
    import comfy.sampler_helpers as helpers

    original = helpers.prepare_model_patcher

    def prepare_model_patcher(model, conds, model_options, *args, **kwargs):
        result = original(model, conds, model_options, *args, **kwargs)
        try:
            if not pe.get_wrappers_with_key(
                pe.WrappersMP.OUTER_SAMPLE, WRAPPER_KEY, model_options, is_model_options=True
            ):
                pe.add_wrapper_with_key(
                    pe.WrappersMP.OUTER_SAMPLE,
                    WRAPPER_KEY,
                    outer_sample_wrapper,
                    model_options,
                    is_model_options=True,
                )
        except Exception as e:  # never break sampling over a capture
            print(f"[raiiaf] noise capture unavailable for this run: {e}")
        return result

    prepare_model_patcher.__wrapped__ = original  # type: ignore[attr-defined]
    helpers.prepare_model_patcher = prepare_model_patcher
    _installed = True
    return True
