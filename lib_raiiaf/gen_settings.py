"""The generation's own settings (prompts, steps, CFG, sampler, schedule, size, hires
fix, checkpoint and VAE) compared with the replay files, and restored.

Checked at the ``process`` hook: the prompts are final there (styles applied,
``p.all_prompts``), the checkpoint and VAE hashes are known (``p.sd_model_hash``), and
nothing that uses the other values (``p.init()``, the noise draws, the sampler) has run.
Settings the webui reads from ``opts`` are compared in ``replay.setting_differences``.
"""

from __future__ import annotations

from typing import Any

from . import replay

#: (label, ``p`` attribute, key in the file's ``a1111`` settings).
SCALARS = (
    ("steps", "steps", "steps"),
    ("CFG scale", "cfg_scale", "cfg_scale"),
    ("sampler", "sampler_name", "sampler"),
    ("schedule type", "scheduler", "scheduler"),
    ("width", "width", "width"),
    ("height", "height", "height"),
)
#: Hires-fix values a user sets (the others are computed from them in ``p.init()``).
HIRES = (
    "hr_scale",
    "hr_upscaler",
    "hr_second_pass_steps",
    "hr_resize_x",
    "hr_resize_y",
    "hr_sampler_name",
    "hr_scheduler",
    "hr_cfg",
    "denoising_strength",
)
#: Differences never restored: another model must be loaded by the user.
MODELS = (("checkpoint hash", "sd_model_hash", "checkpoint"), ("VAE hash", "sd_vae_hash", "vae"))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    return a == b


def _hires(src: replay.Source) -> dict[str, Any] | None:
    h = src.a1111.get("hires")
    return dict(h) if isinstance(h, dict) else None


def differences(sources: list[replay.Source], p: Any) -> list[replay.Difference]:
    """Every generation setting of the files that differs from this run's (per image for
    the prompts); kind "gen" is restorable, "fixed" is not (models, turning hires on or
    off)."""
    out: list[replay.Difference] = []
    prompts = list(getattr(p, "all_prompts", None) or [])
    negatives = list(getattr(p, "all_negative_prompts", None) or [])
    for k, src in enumerate(sources):
        meta = src.artifact.metadata
        for key, now in (("prompt", prompts), ("negative prompt", negatives)):
            stored = meta.get(key.replace(" ", "_"))
            if isinstance(stored, str) and k < len(now) and stored != now[k]:
                label = key if len(sources) == 1 else f"{key} of image {k + 1}"
                out.append(replay.Difference(label, "gen", stored, now[k]))
    a = sources[0].a1111
    for label, attr, key in SCALARS:
        stored = a.get(key)
        if stored is not None and not _same(stored, getattr(p, attr, None)):
            out.append(replay.Difference(label, "gen", stored, getattr(p, attr, None)))
    if "initial_noise_multiplier" in (a.get("img2img") or {}) or hasattr(p, "init_images"):
        stored = a.get("denoising_strength")
        now = getattr(p, "denoising_strength", None)
        if stored is not None and not _same(stored, now):
            out.append(replay.Difference("denoising strength", "gen", stored, now))
    if hasattr(p, "enable_hr") and getattr(p, "firstpass_image", None) is None:
        hires = _hires(sources[0])
        on = bool(getattr(p, "enable_hr", False))
        if (hires is not None) != on:
            out.append(replay.Difference("Hires fix", "fixed", hires is not None, on))
        elif hires is not None:
            for key in HIRES:
                now = getattr(p, key, None)
                if key in hires and now is not None and not _same(hires[key], now):
                    out.append(replay.Difference(f"Hires {key}", "gen", hires[key], now))
    model = a.get("model") or {}
    for label, attr, role in MODELS:
        stored = (model.get(role) or {}).get("short_hash")
        now = getattr(p, attr, None)
        if stored and now and stored != now:
            out.append(replay.Difference(label, "fixed", stored, now))
    return out


def restore(p: Any, sources: list[replay.Source], diffs: list[replay.Difference]) -> dict:
    """Put the files' values on ``p`` for every restorable difference: {label: (was, now)}."""
    done: dict[str, tuple[Any, Any]] = {}
    attrs = {label: attr for label, attr, _key in SCALARS}
    for d in diffs:
        if d.kind != "gen":
            continue
        if d.key.startswith(("prompt", "negative prompt")):
            negative = d.key.startswith("negative")
            name = "all_negative_prompts" if negative else "all_prompts"
            values = list(getattr(p, name))
            hr_name = "all_hr_negative_prompts" if negative else "all_hr_prompts"
            hr = getattr(p, hr_name, None)
            for k, src in enumerate(sources):
                stored = src.artifact.metadata.get("negative_prompt" if negative else "prompt")
                if isinstance(stored, str) and k < len(values):
                    # A hires prompt left empty follows the prompt (setup_prompts).
                    if isinstance(hr, list) and k < len(hr) and hr[k] == values[k]:
                        hr[k] = stored
                    values[k] = stored
            setattr(p, name, values)
            if not negative:
                p.main_prompt = values[0]
            else:
                p.main_negative_prompt = values[0]
        elif d.key in attrs:
            setattr(p, attrs[d.key], d.stored)
        elif d.key == "denoising strength":
            p.denoising_strength = d.stored
        elif d.key.startswith("Hires "):
            setattr(p, d.key[len("Hires ") :], d.stored)
        else:
            continue
        done[d.key] = (d.current, d.stored)
    return done
