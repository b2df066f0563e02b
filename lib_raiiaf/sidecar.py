"""Writing the ``.raiiaf`` beside each saved main image: which saves are main images,
the file name the webui really wrote, the settings and metadata recorded, and a warning
where a saved image gets no sidecar."""

from __future__ import annotations

import contextlib
import os
from typing import Any

import torch
from raiiaf_rs import host as raiiaf_host
from raiiaf_rs import passes as raiiaf_passes

from . import infotext as infotext_mod
from . import pass_schema, replay, save_button, webui
from .run_state import Run, global_index, image_sha256, is_img2img, log

#: Suffixes of the webui's secondary saves (never a main image).
SECONDARY_SUFFIXES = (
    "-before-face-restoration",
    "-before-color-correction",
    "-before-highres-fix",
    "-mask-composite",
    "-mask",
)


def check_saved(p: Any, run: Run | None) -> None:
    """``postprocess``: say so when the run saved no image (API ``save_images: false``,
    auto-save off): its noise is dropped with it and no ``.raiiaf`` exists."""
    if run is None or not run.options.save or run.stop is not None or run.written:
        return
    save_samples = getattr(p, "save_samples", None)
    saving = (
        save_samples() if callable(save_samples) else not getattr(p, "do_not_save_samples", False)
    )
    if saving:
        return
    note = (
        "raiiaf: no .raiiaf was written: this run saved no images (API save_images false, "
        "or 'Always save all generated images' off); in the UI the Save button writes "
        "one beside each image it saves (for the last runs), or turn saving on"
    )
    log.warning("%s", note)
    print(f"[raiiaf] WARNING {note}")
    run.warnings.append(note)


def tag_image(p: Any, run: Run | None, image: Any) -> None:
    if run is None or image is None:
        return
    index = global_index(p, int(getattr(p, "batch_index", 0)))
    try:
        image.raiiaf_index = index
        image.raiiaf_run = id(run)
    except AttributeError:
        pass
    if run.options.save:
        digest = image_sha256(image)
        if digest is not None:
            run.image_hashes[digest] = index


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
        "rng_device_type": webui.rng_device_type(),
    }
    for key in replay.P_SAMPLER_ATTRS:
        value = getattr(p, key, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            a[key] = webui.json_value(value)
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
                "truncate_x",
                "truncate_y",
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
    """The ENVC document of this webui now (attention and dtypes are read each time: a
    settings change or another model can change them)."""
    return raiiaf_host.capture_environment(
        webui.host_info(),
        attention=webui.attention(),
        dtypes=webui.dtypes(),
        noise_device=webui.noise_device(),
    )


def _models(model: dict[str, Any]) -> list[dict[str, Any]]:
    """Metadata ``models`` from ``webui.model_identity``."""
    out = []
    for role in ("checkpoint", "vae"):
        entry = dict(model.get(role) or {})
        name = entry.pop("name", None)
        if name:
            out.append(raiiaf_host.model_entry(role, name, entry.pop("sha256", None), **entry))
    return out


def build(
    p: Any, run: Run, index: int, infotext: str, size: tuple[int, int] | None = None
) -> tuple[dict, dict[str, Any]]:
    """Latents and metadata of image ``index``; ``size``: the saved image's (width,
    height), the generation's when not given."""
    latents: dict[str, torch.Tensor] = {}
    for which, name in replay.PASS_NAMES.items():
        t = run.noise.get((which, index))
        if t is not None:
            latents[name] = t.unsqueeze(0)
    for which, name in replay.START_NAMES.items():
        t = run.start.get((which, index))
        if t is None and which == "first" and is_img2img(p):
            # init_latent holds one row per image of a batch, the same for every batch.
            t = run.start.get((which, index % max(1, int(getattr(p, "batch_size", 1)))))
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
    if run.inputs and is_img2img(p):
        a.setdefault("img2img", {}).update(run.inputs)
    elif run.inputs:
        a.setdefault("hires", {}).update(run.inputs)
        a["first_pass"] = "skipped: the Hires fix button on an existing image"
    if run.modified_by_other:
        a["noise_modified_by_other_script"] = sorted(run.modified_by_other)
    parsed = infotext_mod.parse(infotext) if infotext else {}
    prompts = list(getattr(p, "all_prompts", None) or [getattr(p, "prompt", "")])
    negatives = list(
        getattr(p, "all_negative_prompts", None) or [getattr(p, "negative_prompt", "")]
    )
    prompt = prompts[index] if index < len(prompts) else prompts[-1]
    negative = negatives[index] if index < len(negatives) else negatives[-1]
    if size is None:
        size = (a["width"], a["height"])
    extra: dict[str, Any] = {
        "infotext": infotext,
        "infotext_fields": parsed.get("params", {}),
        "a1111": a,
    }
    metadata = raiiaf_host.build_metadata(
        webui.host_info(),
        prompt=str(prompt),
        negative_prompt=str(negative),
        model_name=a["model"]["checkpoint"].get("name", ""),
        tags=["forge" if webui.is_forge() else "a1111", a["mode"]],
        generation=raiiaf_host.Generation(
            seed=a["seed"],
            steps=a["steps"],
            sampler=a["sampler"] or "",
            scheduler=a["scheduler"] or "",
            cfg_scale=a["cfg_scale"],
        ),
        denoise=a["denoising_strength"] if is_img2img(p) else 1.0,
        width=size[0],
        height=size[1],
        batch_index=a["batch_index"],
        batch_size=a["batch_size"],
        models=_models(a["model"]),
        loras=infotext_mod.loras(str(prompt), parsed.get("params")),
        extra=extra,
    )
    passes = sorted(w for (w, k) in run.plan.applied if k == index) if run.plan else []
    if passes and index < len(run.plan.sources):
        # Only where stored noise really went into this image (not for a replay that
        # was dropped, skipped or stopped).
        src = run.plan.source(index)
        metadata["replayed_from"] = {
            "name": src.name,
            "sha256": src.sha256,
            "passes": passes,
            "seeds_restored": run.plan.restore_seeds,
            "settings_restored": {
                k: {"was": webui.json_value(was), "now": webui.json_value(now)}
                for k, (was, now) in run.plan.restored.items()
            },
        }
    if run.warnings:
        metadata["warnings"] = list(run.warnings)
    other = a.get("noise_modified_by_other_script")
    why_not = [f"noise changed by another script: {', '.join(other)}"] if other else []
    ui = "forge" if webui.is_forge() else "a1111"
    schema = pass_schema.passes(a, latents, ui, why_not)
    metadata["passes"] = raiiaf_passes.to_json(schema)
    return latents, metadata


def is_main_image(params: Any, run: Run, tagging: bool) -> int | None:
    """The global index of a main image being saved, or None for grids, masks,
    ``-before-`` copies and saves from outside the generation."""
    image = params.image
    if getattr(image, "raiiaf_run", None) == id(run):
        return int(image.raiiaf_index)
    # Webuis without postprocess_image_after_composite, or a script after this one that
    # replaced the image object (``pp.image``) after it was tagged: the saved name tells.
    stem = os.path.splitext(os.path.basename(params.filename))[0]
    if any(stem.endswith(s) or f"{s}-" in stem for s in SECONDARY_SUFFIXES):
        return None
    if stem.startswith("grid") or "-grid" in stem:
        return None
    return global_index(params.p, int(getattr(params.p, "batch_index", 0)))


def before_saved(params: Any) -> None:
    """``on_before_image_saved``: with the webui's "Add number suffix" on a name clash,
    A1111 writes ``<name>-1.png`` (``-2``...) but reports the name it asked for; note the
    name the image will really get (the first free one, the webui's rule) so that the
    sidecar follows the image and records that image's name and SHA-256."""
    p = getattr(params, "p", None)
    if not isinstance(getattr(p, "raiiaf", None), Run) and not hasattr(p, "infotexts"):
        return  # neither a run of this extension nor the Save button
    if webui.opt("save_images_replace_action", "Replace") == "Replace":
        return
    stem, ext = os.path.splitext(params.filename)
    # After this callback the webui cuts the whole path to the folder's longest file
    # name (f_namemax, less the extension) before it picks the free name: so do we.
    folder = os.path.dirname(params.filename) or "."
    with contextlib.suppress(OSError, AttributeError):
        stem = stem[: os.statvfs(folder).f_namemax - max(4, len(ext))]
    target, n = stem + ext, 0
    while os.path.exists(target):
        n += 1
        target = f"{stem}-{n}{ext}"
    with contextlib.suppress(AttributeError):
        params.raiiaf_target = target


def saved_path(params: Any) -> str:
    """The file the webui really wrote for this save."""
    asked = getattr(params.image, "already_saved_as", None) or params.filename
    if webui.opt("save_images_replace_action", "Replace") == "Replace":
        return asked
    if asked != params.filename:  # Forge reports the name written
        return asked
    expected = getattr(params, "raiiaf_target", None)
    return expected if isinstance(expected, str) and os.path.exists(expected) else asked


def on_saved(params: Any, tagging: bool) -> str | None:
    """``on_image_saved``: write ``<same basename>.raiiaf`` beside a main image (the
    first free ``<basename>-N.raiiaf`` when that name is taken)."""
    p = getattr(params, "p", None)
    run = getattr(p, "raiiaf", None)
    if isinstance(run, Run):
        if not run.options.save or run.stop is not None:
            return None
        index = is_main_image(params, run, tagging)
    elif getattr(p, "raiiaf", None) is None and hasattr(p, "infotexts"):
        # The Save button's stand-in p (built from the page's generation info).
        found = save_button.find(image_sha256(getattr(params, "image", None)))
        if found is None:
            return None
        p, run, index = found
    else:
        return None
    if index is None:
        return None
    saved = saved_path(params)
    if not any(k == index for (_w, k) in run.noise):
        note = f"raiiaf: no noise was captured for image {index + 1}; no .raiiaf for {saved}"
        log.warning("%s", note)
        run.warnings.append(note)
        return None
    try:
        size = getattr(params.image, "size", None)
        if not (isinstance(size, tuple) and len(size) == 2):
            size = None
        latents, metadata = build(p, run, index, _infotext(params, p, index), size)
        # Never over another file, even when "Replace" replaced the image: the sidecar
        # then gets the next free name, and its image_file names the image.
        target = raiiaf_host.write_sidecar(
            saved,
            latents,
            metadata=metadata,
            environment=environment(),
            embed_image=run.options.embed_image,
        )
    except Exception as e:  # a failed sidecar must never break the webui's save
        log.exception("raiiaf: could not write the .raiiaf of %s", saved)
        print(f"[raiiaf] ERROR could not write the .raiiaf of {saved}: {e}")
        run.warnings.append(f"raiiaf: could not write the .raiiaf of {saved}: {e}")
        return None
    run.written.append(target)
    return target
