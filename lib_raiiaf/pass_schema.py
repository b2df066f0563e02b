"""The extension's ``passes`` metadata (FORMAT.md §4.7): the first pass and, with Hires
fix, the hires pass, as :class:`raiiaf_rs.passes.Pass` records like every host writes.
Tensor names stay the extension's (``initial_noise``, ``hires_noise``, ``init_latent``,
``hires_start_latent``)."""

from __future__ import annotations

from typing import Any

from raiiaf_rs.passes import Pass

from . import replay


def _pass(
    order: int,
    role: str,
    which: str,
    latents: dict[str, Any],
    settings: dict[str, Any],
    seed: Any,
    ui: str,
    why_not: list[str],
) -> Pass:
    noise, start = replay.PASS_NAMES[which], replay.START_NAMES[which]
    t = latents.get(noise)
    reasons = list(why_not) + ([] if t is not None else ["its noise is not stored"])
    return Pass(
        order=order,
        role=role,
        noise=noise if t is not None else None,
        input_latent=start if start in latents else None,
        seed=seed,
        noise_shape=tuple(int(d) for d in t.shape) if t is not None else None,
        noise_dtype=str(t.dtype).removeprefix("torch.") if t is not None else None,
        settings={k: v for k, v in settings.items() if v is not None},
        source={"host": "webui", "pass": which, "ui": ui},
        exact=not reasons,
        why_not_exact=tuple(reasons),
    )


def passes(a: dict[str, Any], latents: dict[str, Any], ui: str, why_not: list[str]) -> list[Pass]:
    """The passes of one image from its ``a1111`` settings ``a`` and stored ``latents``;
    ``ui``: ``a1111`` or ``forge``; ``why_not``: what keeps every pass from a bit-exact
    rerun (noise changed by another script...)."""
    out: list[Pass] = []
    img2img = a.get("mode") == "img2img"
    if not str(a.get("first_pass", "")).startswith("skipped"):  # not the Hires fix button
        settings = {
            "sampler": a.get("sampler"),
            "scheduler": a.get("scheduler"),
            "steps": a.get("steps"),
            "cfg": a.get("cfg_scale"),
            "denoise": a.get("denoising_strength") if img2img else 1.0,
        }
        role = "img2img" if img2img else "txt2img"
        out.append(_pass(0, role, "first", latents, settings, a.get("seed"), ui, why_not))
    hires = a.get("hires")
    if isinstance(hires, dict):
        sampler = hires.get("hr_sampler_name")
        scheduler = hires.get("hr_scheduler")
        settings = {
            "sampler": a.get("sampler") if sampler in (None, "Use same sampler") else sampler,
            "scheduler": a.get("scheduler")
            if scheduler in (None, "Use same scheduler")
            else scheduler,
            "steps": hires.get("hr_second_pass_steps") or a.get("steps"),
            "cfg": hires.get("hr_cfg") or a.get("cfg_scale"),
            "denoise": hires.get("denoising_strength"),
        }
        order = len(out)
        out.append(_pass(order, "hires", "hires", latents, settings, a.get("seed"), ui, why_not))
    return out
