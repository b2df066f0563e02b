"""The extension's ``passes`` metadata (FORMAT.md §4.7): the first pass and, with Hires
fix, the hires pass, as :class:`raiiaf_rs.passes.Pass` records like every host writes.
Tensor names stay the extension's (``initial_noise``, ``hires_noise``, ``init_latent``,
``hires_start_latent``)."""

from __future__ import annotations

from typing import Any

from raiiaf_rs.passes import Pass


def _tensor(latents: dict[str, Any], name: str) -> tuple[str | None, tuple | None, str | None]:
    t = latents.get(name)
    if t is None:
        return None, None, None
    return name, tuple(int(d) for d in t.shape), str(t.dtype).removeprefix("torch.")


def passes(a: dict[str, Any], latents: dict[str, Any], ui: str, why_not: list[str]) -> list[Pass]:
    """The passes of one image from its ``a1111`` settings ``a`` and stored ``latents``;
    ``ui``: ``a1111`` or ``forge``; ``why_not``: what keeps every pass from a bit-exact
    rerun (noise changed by another script...)."""
    out: list[Pass] = []
    hires = a.get("hires") if isinstance(a.get("hires"), dict) else None
    skipped = str(a.get("first_pass", "")).startswith("skipped")
    if not skipped:
        noise, shape, dtype = _tensor(latents, "initial_noise")
        img2img = a.get("mode") == "img2img"
        settings = {
            "sampler": a.get("sampler"),
            "scheduler": a.get("scheduler"),
            "steps": a.get("steps"),
            "cfg": a.get("cfg_scale"),
            "denoise": a.get("denoising_strength") if img2img else 1.0,
        }
        reasons = list(why_not) + ([] if noise else ["its noise is not stored"])
        out.append(
            Pass(
                order=0,
                role="img2img" if img2img else "txt2img",
                noise=noise,
                input_latent="init_latent" if "init_latent" in latents else None,
                seed=a.get("seed"),
                noise_shape=shape,
                noise_dtype=dtype,
                settings={k: v for k, v in settings.items() if v is not None},
                source={"host": "webui", "pass": "first", "ui": ui},
                exact=not reasons,
                why_not_exact=tuple(reasons),
            )
        )
    if hires is not None:
        noise, shape, dtype = _tensor(latents, "hires_noise")
        sampler = hires.get("hr_sampler_name")
        settings = {
            "sampler": a.get("sampler") if sampler in (None, "Use same sampler") else sampler,
            "scheduler": hires.get("hr_scheduler"),
            "steps": hires.get("hr_second_pass_steps") or a.get("steps"),
            "cfg": hires.get("hr_cfg") or a.get("cfg_scale"),
            "denoise": hires.get("denoising_strength"),
        }
        if settings["scheduler"] in (None, "Use same scheduler"):
            settings["scheduler"] = a.get("scheduler")
        reasons = list(why_not) + ([] if noise else ["its noise is not stored"])
        out.append(
            Pass(
                order=len(out),
                role="hires",
                noise=noise,
                input_latent="hires_start_latent" if "hires_start_latent" in latents else None,
                seed=a.get("seed"),
                noise_shape=shape,
                noise_dtype=dtype,
                settings={k: v for k, v in settings.items() if v is not None},
                source={"host": "webui", "pass": "hires", "ui": ui},
                exact=not reasons,
                why_not_exact=tuple(reasons),
            )
        )
    return out
