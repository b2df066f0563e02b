"""Capturing the initial noise of sampler runs, keyed by the node that ran them.

ComfyUI hands the raw, unscaled initial noise to the guider's ``outer_sample``
for KSampler, KSamplerAdvanced, SamplerCustom and SamplerCustomAdvanced alike,
together with the seed and the exact sigmas. An ``OUTER_SAMPLE`` wrapper sees
all of it. This module provides that wrapper and two ways to install it:

- globally (default): every sampling run gets the wrapper, and it keeps a capture
  only when the running prompt has a "Save Image + .raiiaf" node. Switch it off
  with ``RAIIAF_CAPTURE=0`` before ComfyUI starts;
- per model: :func:`patch_model` (the "Capture noise" node) always captures.

A capture is kept under the *signature* of its sampler node (graph.signature: its
class and inputs, links replaced by their sources' signatures: what ComfyUI's cache keys
on), the part of the executing id below its prompt node (nodes expanded at run time), the
list index and the call number within that node's run. The prompt node's id is kept only
as a label: the save node looks its upstream sampler nodes up by signature alone, so a
sampler ComfyUI served from its cache still finds the capture of the run that made the
cached output, even when it was deleted and re-added, pasted or wrapped into a subgraph
since (a new id, the same signature). Everything kept is bounded in bytes
(``RAIIAF_CAPTURE_MAX_MB``, default 512), oldest first out. Why a signature has no
capture (its run was in a prompt without a save node, dropped by the bound, too big
alone) is remembered too, so a missing pass gets its true reason (:func:`why_missing`).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import torch

from . import batch_noise, graph, host
from .passes import seed_of

WRAPPER_KEY = "raiiaf.capture"
SAVE_CLASS = "RaiiafSaveImage"
MAX_BYTES = int(float(os.environ.get("RAIIAF_CAPTURE_MAX_MB", "512")) * 2**20)


@dataclass
class Capture:
    """One sampler run: its initial noise and the settings it really ran with."""

    exec_id: str  # the executing node id (expanded nodes have their own)
    prompt_id: str
    list_index: int
    call: int  # k-th sampling run within that node's execution
    seq: int  # global order of capture
    noise: torch.Tensor
    seed: int | None
    sigmas: list[float]
    sampler: str
    cfg: float | None
    is_zero: bool
    latent_shapes: list[list[int]] | None = None  # nested latents: the shapes packed
    input_latent: torch.Tensor | None = None  # kept when the sampler adds no noise
    final_latent: torch.Tensor | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return sum(
            t.numel() * t.element_size()
            for t in (self.noise, self.input_latent, self.final_latent)
            if t is not None
        )


_lock = threading.Lock()
_store: OrderedDict[tuple[str, str, int, int], Capture] = OrderedDict()
_by_sig: dict[str, set[tuple[str, str, int, int]]] = {}
_bytes = 0
_seq = itertools.count()
_calls: dict[tuple[str, str, int], int] = {}  # the running prompt's runs per node
# Why the newest run under a signature left no capture: signature -> reason key.
_gone: OrderedDict[str, str] = OrderedDict()
MAX_GONE = 4096
_plans: OrderedDict[str, tuple[bool, bool]] = OrderedDict()
# Other writers of .raiiaf files that want a prompt captured: (prompt_id, prompt) -> bool
# (the no-graph-change mode, autosave.wants_capture).
capture_wanted: list = []
seen_sampler_classes: set[str] = set(graph.SAMPLER_CLASSES)


def stored_bytes() -> int:
    return _bytes


def _note(sig: str, reason: str) -> None:
    """Remembers why ``sig``'s newest run left no capture (call with _lock held)."""
    _gone.pop(sig, None)
    _gone[sig] = reason
    while len(_gone) > MAX_GONE:
        _gone.popitem(last=False)


def _drop(key, reason: str = "") -> None:
    global _bytes
    cap = _store.pop(key)
    _bytes -= cap.nbytes
    keys = _by_sig.get(key[0])
    if keys is not None:
        keys.discard(key)
        if not keys:
            del _by_sig[key[0]]
            if reason:
                _note(key[0], reason)


def rel_id(exec_id: str) -> str:
    """The executing id below its prompt node: "" for the node itself, ".0.0.5" for a
    node it expanded into at run time."""
    return str(exec_id)[len(graph.real_id(exec_id)) :]


def _keep(sig: str, cap: Capture) -> None:
    """Stores ``cap``, then drops the oldest captures until under the byte bound.
    A capture bigger than the bound alone is not kept (the save says so)."""
    global _bytes
    # The prompt id stays in the key only where there is no signature (unreadable
    # prompt): there the node id is all that tells two samplers apart.
    rel = cap.exec_id if sig.startswith("prompt:") else rel_id(cap.exec_id)
    key = (sig, rel, cap.list_index, cap.call)
    if cap.nbytes > MAX_BYTES:  # would flush everything else and still not fit
        with _lock:
            _note(sig, f"too_big:{cap.nbytes}")
        return
    with _lock:
        _gone.pop(sig, None)
        if key in _store:
            _drop(key)
        _store[key] = cap
        _by_sig.setdefault(sig, set()).add(key)
        _bytes += cap.nbytes
        while _bytes > MAX_BYTES and _store:
            _drop(next(iter(_store)), "evicted")


def _plan(prompt_id: str) -> tuple[bool, bool]:
    """(capture?, keep final latent?) for the running prompt. The
    global hook captures only for prompts with a raiiaf save node; if the prompt
    cannot be read, it captures (a missing capture is worse than a spare one)."""
    with _lock:
        if prompt_id in _plans:
            return _plans[prompt_id]
    prompt = host.running_prompt(prompt_id)
    if prompt is None:
        plan = (True, True)
    else:
        saves = [
            n for n in prompt.values() if isinstance(n, dict) and n.get("class_type") == SAVE_CLASS
        ]
        flags = [n.get("inputs", {}).get("save_final_latent") for n in saves]
        final = any(f is True or graph.is_link(f) for f in flags)
        plan = (bool(saves) or any(want(prompt_id, prompt) for want in capture_wanted), final)
    with _lock:
        _plans[prompt_id] = plan
        while len(_plans) > 16:
            _plans.popitem(last=False)
    return plan


def _sampler_name(sampler: Any) -> str:
    fn = getattr(sampler, "sampler_function", None)
    name = getattr(fn, "__name__", type(sampler).__name__)
    return name[len("sample_") :] if name.startswith("sample_") else name


def _sig_of(prompt_id: str, exec_id: str) -> str:
    """The key a capture of ``exec_id`` is kept under: the signature of its prompt
    node, or, when the prompt cannot be read, the prompt id itself."""
    prompt = host.running_prompt(prompt_id)
    if prompt is None or graph.real_id(exec_id) not in prompt:
        return "prompt:" + prompt_id
    # A node of another pack that sampled (or expanded into samplers) is a sampler
    # node from now on: if it is ever served from the cache with nothing kept, the
    # save names it as a missing pass.
    seen_sampler_classes.add(graph.class_of(prompt, graph.real_id(exec_id)))
    return graph.signature(prompt, graph.real_id(exec_id))


def _record(noise, latent_image, sampler, sigmas, seed, guider, kwargs) -> Capture:
    prompt_id, exec_id, list_index = host.current_context()
    cpu = noise.detach().to("cpu", copy=True)
    extra: dict[str, Any] = {}
    patcher = getattr(guider, "model_patcher", None)
    if patcher is not None:
        try:
            extra["model_class"] = type(patcher.model).__name__
            extra["model_dtype"] = str(patcher.model_dtype()).replace("torch.", "")
        except Exception:  # descriptive only
            pass
    shapes = kwargs.get("latent_shapes")
    is_zero = not bool(cpu.any())
    with _lock:
        run = (prompt_id, exec_id, list_index)
        if any(k[0] != prompt_id for k in _calls):
            _calls.clear()  # only the running prompt's counts matter
        call = _calls.get(run, 0)
        _calls[run] = call + 1
    return Capture(
        exec_id=exec_id,
        prompt_id=prompt_id,
        list_index=list_index,
        call=call,
        seq=next(_seq),
        noise=cpu,
        seed=None if seed is None else int(seed),
        sigmas=[float(s) for s in sigmas.detach().cpu().reshape(-1).tolist()],
        sampler=_sampler_name(sampler),
        cfg=getattr(guider, "cfg", None),
        is_zero=is_zero,
        latent_shapes=[list(s) for s in shapes] if shapes and len(shapes) > 1 else None,
        # A sampler that adds no noise starts from its input latent as it is (a
        # pre-noised latent): that is what a replay needs instead of the noise.
        input_latent=latent_image.detach().to("cpu", copy=True)
        if is_zero and isinstance(latent_image, torch.Tensor)
        else None,
        extra=extra,
    )


def _wrap(executor, noise, latent_image, sampler, sigmas, args, kwargs, always: bool):
    seed = seed_of(args, kwargs)
    cap = None
    if isinstance(noise, torch.Tensor) and not getattr(noise, "is_nested", False):
        prompt_id = host.current_context()[0]
        wanted, keep_final = (True, True) if always else _plan(prompt_id)
        if wanted:
            guider = getattr(executor, "class_obj", None)
            cap = _record(noise, latent_image, sampler, sigmas, seed, guider, kwargs)
    # A loader's NOISE for some images of a batch: their per-step noise as in that batch.
    rows = getattr(noise, "raiiaf_rows", None)
    if rows is not None:
        with batch_noise.original_batch(*rows):
            out = executor(noise, latent_image, sampler, sigmas, *args, **kwargs)
    else:
        out = executor(noise, latent_image, sampler, sigmas, *args, **kwargs)
    if cap is not None:
        if keep_final and isinstance(out, torch.Tensor):
            cap.final_latent = out.detach().to("cpu", copy=True)
        _keep(_sig_of(cap.prompt_id, cap.exec_id), cap)
    elif not always and isinstance(noise, torch.Tensor):
        prompt_id, exec_id, _ = host.current_context()
        sig = _sig_of(prompt_id, exec_id)
        with _lock:
            _note(sig, "no_save")
    return out


def outer_sample_wrapper(executor, noise, latent_image, sampler, sigmas, *args, **kwargs):
    """OUTER_SAMPLE wrapper of the "Capture noise" node: always records the run,
    then continues the chain with every argument untouched."""
    return _wrap(executor, noise, latent_image, sampler, sigmas, args, kwargs, always=True)


def global_wrapper(executor, noise, latent_image, sampler, sigmas, *args, **kwargs):
    """OUTER_SAMPLE wrapper of the global hook: records the run only for prompts
    with a raiiaf save node."""
    return _wrap(executor, noise, latent_image, sampler, sigmas, args, kwargs, always=False)


def lookup(
    prompt: dict, node_id: str, list_index: int, prompt_id: str, memo: dict | None = None
) -> list[Capture]:
    """The captures of prompt node ``node_id`` (its own runs and those of nodes it
    expanded into) for list item ``list_index``, in the order they ran: from this
    prompt if it ran here, else from the run ComfyUI's cache holds the output of,
    found by signature whatever id the node had then.
    ``memo``: signatures already computed for this prompt (shared across lookups)."""
    sig = graph.signature(prompt, node_id, memo)
    with _lock:
        caps = [_store[k] for k in _by_sig.get(sig, ()) if k in _store]
        caps += [
            _store[k]
            for k in _by_sig.get("prompt:" + prompt_id, ())
            if k in _store and graph.real_id(k[1]) == str(node_id)
        ]
    if any(c.prompt_id == prompt_id for c in caps):
        caps = [c for c in caps if c.prompt_id == prompt_id]
    if not caps:
        return []
    # List runs: item i uses the sampler's item i, or its last if it made fewer.
    last = max(c.list_index for c in caps)
    want = min(list_index, last)
    return sorted((c for c in caps if c.list_index == want), key=lambda c: c.seq)


def why_missing(prompt: dict, node_id: str, memo: dict | None = None) -> str:
    """Why prompt node ``node_id`` has no capture (after :func:`lookup` found none), as
    a sentence for the file and the user: the true reason where one is known."""
    sig = graph.signature(prompt, node_id, memo)
    with _lock:
        reason = _gone.get(sig, "")
    fix = "change any input of that sampler, or re-queue after clearing ComfyUI's cache"
    if reason == "no_save":
        return (
            "not captured: ComfyUI served this sampler from its cache, and the run that made "
            "the cached output was in a prompt without a raiiaf save node (captures are kept "
            f"only for prompts with one); {fix}, to capture it"
        )
    if reason == "evicted":
        return (
            "not captured: its capture was dropped to stay within the "
            f"{MAX_BYTES / 2**20:.1f} MiB bound (RAIIAF_CAPTURE_MAX_MB) before this save, and "
            f"ComfyUI served the sampler from its cache; raise the bound or {fix}"
        )
    if reason.startswith("too_big:"):
        size = int(reason.split(":", 1)[1]) / 2**20
        return (
            f"not captured: its noise ({size:.1f} MiB) is larger than the whole "
            f"{MAX_BYTES / 2**20:.1f} MiB bound (RAIIAF_CAPTURE_MAX_MB); raise the bound and "
            "re-queue after clearing ComfyUI's cache"
        )
    if not global_capture_enabled():
        return (
            "not captured: the global capture is off (RAIIAF_CAPTURE=0) and the node's "
            "model has no Capture noise patch"
        )
    return (
        "not captured: no sampling run of this node was seen (it returned without "
        "sampling, e.g. denoise 0 or start_at_step past its steps, or it sampled in a "
        f"way the capture hook does not see); {fix}"
    )


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
                    global_wrapper,
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
