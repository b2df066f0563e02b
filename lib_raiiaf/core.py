"""Capture, replay and the ``.raiiaf`` sidecar, independent of the UI.

State of one generation lives on the processing object as ``p.raiiaf`` (a
:class:`Run`): the captured noise keyed by ``(pass, global image index)``, the final
latents, and the replay plan. Hooks only read and write that state; the
``on_image_saved`` callback writes one file per main image from it.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field, fields
from typing import Any

import raiiaf_rs
import torch

from . import infotext as infotext_mod
from . import replay, webui

log = logging.getLogger("raiiaf")

#: Suffixes of the webui's secondary saves (never a main image).
SECONDARY_SUFFIXES = (
    "-before-face-restoration",
    "-before-color-correction",
    "-before-highres-fix",
    "-mask-composite",
    "-mask",
)


@dataclass
class Options:
    enabled: bool = False
    save: bool = True
    embed_image: bool = True
    store_latent: bool = False
    replay_files: Any = None
    on_mismatch: str = replay.STOP
    restore_seeds: bool = True

    @classmethod
    def from_args(cls, args: tuple) -> Options:
        # The UI's components come in the order of the fields (scripts/raiiaf.py ARGS).
        values = dict(zip((f.name for f in fields(cls)), args))
        out = cls(**values)
        if out.on_mismatch not in replay.ON_MISMATCH:
            out.on_mismatch = replay.STOP
        return out


@dataclass
class Run:
    options: Options
    plan: replay.Plan | None = None
    #: Set when the user chose to stop on a bad file: the message the run stops with.
    stop: str | None = None
    warnings: list[str] = field(default_factory=list)
    noise: dict[tuple[str, int], torch.Tensor] = field(default_factory=dict)
    latents: dict[int, torch.Tensor] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    written: list[str] = field(default_factory=list)


def image_sha256(image: Any) -> str | None:
    """SHA-256 of a PIL image's mode, size and pixels (not of an encoding)."""
    if image is None or not hasattr(image, "tobytes"):
        return None
    h = hashlib.sha256(f"{image.mode}:{image.size[0]}x{image.size[1]}:".encode())
    h.update(image.tobytes())
    return h.hexdigest()


def is_img2img(p: Any) -> bool:
    return hasattr(p, "init_images")


def global_index(p: Any, i: int) -> int:
    return int(getattr(p, "iteration", 0)) * int(getattr(p, "batch_size", 1)) + i


def report(p: Any, run: Run, message: str) -> None:
    """A bad replay: stop (the message reaches the UI as the run's error) or go on
    without replay (the message goes to the log and under the images)."""
    message = f"raiiaf: {message}"
    if run.options.on_mismatch == replay.STOP:
        log.error("%s (stopping, as chosen)", message)
        print(f"[raiiaf] ERROR {message} (stopping, as chosen)")
        run.stop = message
        return
    note = f"{message}; generating WITHOUT replay, as chosen"
    log.warning("%s", note)
    print(f"[raiiaf] WARNING {note}")
    run.warnings.append(note)
    run.plan = None
    comment = getattr(p, "comment", None)
    if callable(comment):
        comment(note)


class StoppedRng:
    """Stands in for ``p.rng`` when the run must stop: the webui draws the noise with
    ``p.rng.next()`` outside any script try/except, so the error ends the generation
    and the UI shows its message (a hook's exception would only be logged)."""

    def __init__(self, inner: Any, message: str):
        self._inner = inner
        self._message = message

    def next(self):
        raise replay.ReplayError(self._message)

    first = next

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class CapturingRng:
    """For webuis without ``process_before_every_sampling`` (A1111 1.6-1.9): wraps
    ``p.rng`` so its first draw (the initial noise) is captured or replaced in place;
    later draws (ancestral per-step noise) pass through."""

    def __init__(self, inner: Any, p: Any, run: Run):
        self._inner = inner
        self._p = p
        self._run = run
        self._drawn = False

    def next(self):
        x = self._inner.next()
        if not self._drawn:
            self._drawn = True
            on_noise(self._p, self._run, "first", x)
        return x

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def start(p: Any, options: Options) -> Run | None:
    """The ``process`` hook: set up the run, load and check the replay files, restore
    the stored seeds. ``p.all_seeds`` exists; ``p.init()`` has not run yet."""
    if not options.enabled:
        p.raiiaf = None
        return None
    run = Run(options=options)
    p.raiiaf = run
    if is_img2img(p):
        run.inputs = {
            "init_images_sha256": [image_sha256(im) for im in (p.init_images or [])],
            "mask_sha256": image_sha256(getattr(p, "image_mask", None)),
        }
    try:
        sources = replay.load_sources(options.replay_files)
    except replay.ReplayError as e:
        report(p, run, str(e))
        return run
    if not sources:
        return run
    plan = replay.Plan(sources=sources, restore_seeds=options.restore_seeds)
    total = len(getattr(p, "all_seeds", None) or []) or p.batch_size * p.n_iter
    try:
        replay.check_count(plan, total)
        c = webui.latent_channels()
        replay.check_shape(plan, "first", (c, p.height // 8, p.width // 8), 0, total)
    except replay.ReplayError as e:
        report(p, run, str(e))
        return run
    run.plan = plan
    if options.restore_seeds:
        seeds = plan.seeds()
        if seeds is not None:
            p.all_seeds, p.all_subseeds = list(seeds[0]), list(seeds[1])
            p.seed, p.subseed = p.all_seeds[0], p.all_subseeds[0]
            a = sources[0].a1111
            if isinstance(a.get("subseed_strength"), (int, float)):
                p.subseed_strength = a["subseed_strength"]
            resize = a.get("seed_resize_from")
            if isinstance(resize, list) and len(resize) == 2:
                p.seed_resize_from_w, p.seed_resize_from_h = resize
    if is_img2img(p):
        stored = (sources[0].a1111.get("img2img") or {}).get("init_images_sha256")
        if stored and stored != run.inputs["init_images_sha256"]:
            note = (
                "raiiaf: the img2img input image differs from the one stored in "
                f"{sources[0].name}; the noise is replayed but the result will differ"
            )
            log.warning("%s", note)
            run.warnings.append(note)
    names = ", ".join(s.sha256[:10] for s in sources[:4]) + ("…" if len(sources) > 4 else "")
    p.extra_generation_params["RAIIAF replay"] = names
    return run


def before_batch(p: Any, run: Run | None, has_sampling_hook: bool) -> None:
    """``before_process_batch``: ``p.rng`` was just created and ``p.init()`` has run."""
    if run is None:
        return
    if run.plan is not None and run.stop is None and getattr(p, "iteration", 0) == 0:
        hr_x = getattr(p, "hr_upscale_to_x", 0)
        hr_y = getattr(p, "hr_upscale_to_y", 0)
        if getattr(p, "enable_hr", False) and hr_x and hr_y and not is_img2img(p):
            c = webui.latent_channels()
            try:
                replay.check_shape(
                    run.plan, "hires", (c, hr_y // 8, hr_x // 8), 0, len(run.plan.sources)
                )
            except replay.ReplayError as e:
                report(p, run, str(e))
    if run.stop is not None:
        p.rng = StoppedRng(p.rng, run.stop)
    elif not has_sampling_hook:
        p.rng = CapturingRng(p.rng, p, run)


def on_noise(p: Any, run: Run | None, which: str, noise: Any) -> None:
    """The exact noise of a pass (``process_before_every_sampling``'s ``noise``):
    replace it in place from the plan, then capture what the sampler will use.
    Idempotent (Forge calls it twice in the hires pass)."""
    if run is None or noise is None or run.stop is not None:
        return
    batch = int(noise.shape[0])
    plan = run.plan
    if plan is not None:
        try:
            replay.check_shape(plan, which, tuple(noise.shape[1:]), global_index(p, 0), batch)
        except replay.ReplayError as e:
            report(p, run, str(e))
            if run.stop is not None:
                # Too late to raise (hooks' errors are only logged): interrupt instead,
                # so nothing is saved from noise that is not the stored one.
                state = getattr(webui.module("modules.shared"), "state", None)
                if state is not None and hasattr(state, "interrupt"):
                    state.interrupt()
                return
            plan = None
    if plan is not None:
        for i in range(batch):
            arr = plan.source(global_index(p, i)).noise(which)
            if arr is None:
                continue
            stored = torch.from_numpy(arr.copy()).to(device=noise.device, dtype=noise.dtype)
            noise[i].copy_(stored)
            plan.applied[(which, global_index(p, i))] = True
        if hasattr(p, "modified_noise"):  # Forge: also the documented way
            p.modified_noise = noise
    for i in range(batch):
        run.noise[(which, global_index(p, i))] = (
            noise[i].detach().to("cpu", torch.float32).contiguous().clone()
        )


def on_samples(p: Any, run: Run | None, samples: Any) -> None:
    if run is None or not run.options.store_latent or samples is None:
        return
    for i in range(int(samples.shape[0])):
        run.latents[global_index(p, i)] = samples[i].detach().to("cpu", torch.float32).clone()


def tag_image(p: Any, run: Run | None, image: Any) -> None:
    if run is None or image is None:
        return
    try:
        image.raiiaf_index = global_index(p, int(getattr(p, "batch_index", 0)))
        image.raiiaf_run = id(run)
    except AttributeError:
        pass


def _settings(p: Any, index: int) -> dict[str, Any]:
    seeds = list(getattr(p, "all_seeds", None) or [getattr(p, "seed", 0)])
    subseeds = list(getattr(p, "all_subseeds", None) or [getattr(p, "subseed", 0)])
    seed = seeds[index] if index < len(seeds) else seeds[-1]
    subseed = subseeds[index] if index < len(subseeds) else subseeds[-1]
    a: dict[str, Any] = {
        "mode": "img2img" if is_img2img(p) else "txt2img",
        "image_index": index,
        "iteration": int(getattr(p, "iteration", 0)),
        "batch_index": index - global_index(p, 0),
        "batch_size": int(getattr(p, "batch_size", 1)),
        "n_iter": int(getattr(p, "n_iter", 1)),
        "seed": int(seed),
        "subseed": int(subseed),
        "subseed_strength": float(getattr(p, "subseed_strength", 0.0) or 0.0),
        "seed_resize_from": [
            int(getattr(p, "seed_resize_from_w", 0) or 0),
            int(getattr(p, "seed_resize_from_h", 0) or 0),
        ],
        "width": int(p.width),
        "height": int(p.height),
        "steps": int(p.steps),
        "sampler": getattr(p, "sampler_name", None),
        "scheduler": getattr(p, "scheduler", None),
        "cfg_scale": float(p.cfg_scale),
        "denoising_strength": getattr(p, "denoising_strength", None),
        "clip_skip": webui.opt("CLIP_stop_at_last_layers"),
    }
    for key in ("eta", "s_churn", "s_tmin", "s_tmax", "s_noise"):
        value = getattr(p, key, None)
        if isinstance(value, (int, float)):
            a[key] = value
    if getattr(p, "enable_hr", False):
        a["hires"] = {
            key: getattr(p, key, None)
            for key in (
                "hr_scale",
                "hr_upscaler",
                "hr_second_pass_steps",
                "hr_resize_x",
                "hr_resize_y",
                "hr_upscale_to_x",
                "hr_upscale_to_y",
                "hr_sampler_name",
                "hr_scheduler",
                "hr_cfg",
                "denoising_strength",
            )
            if isinstance(getattr(p, key, None), (int, float, str))
        }
    if is_img2img(p):
        img = {
            key: getattr(p, key, None)
            for key in (
                "initial_noise_multiplier",
                "resize_mode",
                "mask_blur",
                "inpainting_fill",
                "inpaint_full_res",
                "inpaint_full_res_padding",
                "inpainting_mask_invert",
                "image_cfg_scale",
            )
            if isinstance(getattr(p, key, None), (int, float, str, bool))
        }
        a["img2img"] = img
    return a


def _infotext(params: Any, p: Any, index: int) -> str:
    info = getattr(params, "pnginfo", None) or {}
    text = info.get("parameters") if isinstance(info, dict) else None
    if text:
        return str(text)
    processing = webui.module("modules.processing")
    try:
        return str(
            processing.create_infotext(p, p.all_prompts, p.all_seeds, p.all_subseeds, index=index)
        )
    except Exception:  # older signature or missing fields: the infotext is optional
        return ""


def environment() -> dict[str, Any]:
    return raiiaf_rs.environment.capture(
        host=webui.host(),
        attention=webui.attention(),
        dtypes=webui.dtypes() or None,
        noise_device=webui.noise_device(),
    )


def build(p: Any, run: Run, index: int, infotext: str) -> tuple[dict, dict[str, Any]]:
    latents: dict[str, torch.Tensor] = {}
    for which, name in replay.PASS_NAMES.items():
        t = run.noise.get((which, index))
        if t is not None:
            latents[name] = t.unsqueeze(0)
    if run.options.store_latent and index in run.latents:
        latents["final_latent"] = run.latents[index].unsqueeze(0)
    a = _settings(p, index)
    a.update(
        opts=webui.noise_opts(),
        cmd_flags=webui.safe_flags(),
        model=webui.model_identity(p),
        webui=webui.host(),
        noise_stage=("after the initial noise multiplier" if is_img2img(p) else "as drawn"),
    )
    if run.inputs:
        a.setdefault("img2img", {}).update(run.inputs)
    parsed = infotext_mod.parse(infotext) if infotext else {}
    prompts = list(getattr(p, "all_prompts", None) or [getattr(p, "prompt", "")])
    negatives = list(
        getattr(p, "all_negative_prompts", None) or [getattr(p, "negative_prompt", "")]
    )
    prompt = prompts[index] if index < len(prompts) else prompts[-1]
    negative = negatives[index] if index < len(negatives) else negatives[-1]
    metadata: dict[str, Any] = {
        "prompt": str(prompt),
        "negative_prompt": str(negative),
        "model_name": a["model"]["checkpoint"].get("name", ""),
        "tags": ["forge" if webui.is_forge() else "a1111", a["mode"]],
        "generation_settings": {
            "seed": a["seed"],
            "steps": a["steps"],
            "sampler": a["sampler"] or "",
            "scheduler": a["scheduler"] or "",
            "cfg_scale": a["cfg_scale"],
        },
        "infotext": infotext,
        "infotext_fields": parsed.get("params", {}),
        "a1111": a,
    }
    if run.plan is not None and index < len(run.plan.sources):
        src = run.plan.source(index)
        metadata["replayed_from"] = {
            "name": src.name,
            "sha256": src.sha256,
            "passes": sorted(w for (w, k) in run.plan.applied if k == index),
            "seeds_restored": run.plan.restore_seeds,
        }
    if run.warnings:
        metadata["warnings"] = list(run.warnings)
    return latents, metadata


def is_main_image(params: Any, run: Run, tagging: bool) -> int | None:
    """The global index of a main image being saved, or None for grids, masks,
    ``-before-`` copies and saves from outside the generation."""
    image = params.image
    if getattr(image, "raiiaf_run", None) == id(run):
        return int(image.raiiaf_index)
    if tagging:
        return None
    # Webuis without postprocess_image_after_composite: the saved name tells.
    stem = os.path.splitext(os.path.basename(params.filename))[0]
    if any(stem.endswith(s) or f"{s}-" in stem for s in SECONDARY_SUFFIXES):
        return None
    if stem.startswith("grid") or "-grid" in stem:
        return None
    return global_index(params.p, int(getattr(params.p, "batch_index", 0)))


def on_saved(params: Any, tagging: bool) -> str | None:
    """``on_image_saved``: write ``<same basename>.raiiaf`` beside a main image."""
    p = getattr(params, "p", None)
    run = getattr(p, "raiiaf", None)
    if not isinstance(run, Run) or not run.options.save or run.stop is not None:
        return None
    index = is_main_image(params, run, tagging)
    if index is None:
        return None
    saved = getattr(params.image, "already_saved_as", None) or params.filename
    if ("first", index) not in run.noise:
        log.warning("raiiaf: no noise captured for image %d; no .raiiaf for %s", index, saved)
        return None
    target = os.path.splitext(saved)[0] + ".raiiaf"
    try:
        latents, metadata = build(p, run, index, _infotext(params, p, index))
        image = None
        with open(saved, "rb") as f:
            data = f.read()
        metadata["image_file"] = {
            "name": os.path.basename(saved),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        if run.options.embed_image and data[:8] == b"\x89PNG\r\n\x1a\n":
            image = data
        raiiaf_rs.write(
            target,
            latents,
            image=image,
            metadata=metadata,
            environment=environment(),
            overwrite=True,
        )
    except Exception as e:  # a failed sidecar must never break the webui's save
        log.exception("raiiaf: could not write %s", target)
        print(f"[raiiaf] ERROR could not write {target}: {e}")
        return None
    run.written.append(target)
    return target
