"""Checks of a replay against this run that need no noise yet: random numbers the webui
would still draw (per-step noise, a GPU source on another device), images that depend
on their batch, the environment, and the hires pass's latent shape."""

from __future__ import annotations

from typing import Any

from raiiaf_rs import host as raiiaf_host

from . import replay, webui
from .run_state import Run, is_img2img, log
from .sidecar import environment


def warn_environment(run: Run, sources: list[replay.Source]) -> None:
    """Say so (log, and under the images) when a file was made in an environment that
    differs from this webui's in ways that can change pixels (torch, GPU, attention,
    dtypes...): the noise is replayed, but the image may not come out the same."""
    try:
        now = environment()
        for src in sources:
            drifts = raiiaf_host.environment_drift(src.artifact, now)
            text = raiiaf_host.drift_summary(drifts, pixels_only=True)
            if text:
                note = (
                    f"raiiaf: {src.name} was made in another environment; the stored noise is "
                    f"replayed, but the image may differ:\n{text}"
                )
                log.warning("%s", note)
                run.warnings.append(note)
                return
    except Exception as e:  # a malformed environment must not stop the replay
        log.warning("raiiaf: could not compare the environments: %s", e)


#: Samplers that draw no random numbers after the initial noise (with s_churn 0; DDIM
#: with eta 0): their images come from the stored noise alone.
DETERMINISTIC_SAMPLERS = ("Euler", "LMS", "Heun", "DPM2", "DPM++ 2M", "UniPC", "PLMS", "DDIM")


def draws_random_numbers(p: Any, plan: replay.Plan) -> list[str]:
    """What in this generation still draws from the webui's generators: per-step noise
    of its samplers, or a hires pass whose noise the files lack."""
    out = []
    eta = getattr(p, "eta", None)
    if eta is None:
        eta = webui.opt("eta_ddim", 0.0)
    churn = float(getattr(p, "s_churn", 0.0) or 0.0)
    names = [("first pass", getattr(p, "sampler_name", None))]
    if getattr(p, "enable_hr", False):
        names.append(("hires pass", getattr(p, "hr_sampler_name", None) or names[0][1]))
    for where, name in names:
        if not isinstance(name, str):
            continue
        if where == "first pass" and "first" in plan.skip:
            continue
        stochastic = name not in DETERMINISTIC_SAMPLERS or (
            (name == "DDIM" and float(eta or 0.0) > 0.0)
            or (name in ("Euler", "Heun", "DPM2") and churn > 0.0)
        )
        if stochastic:
            out.append(f"the {where}'s sampler ({name}) draws noise at every step")
    if getattr(p, "enable_hr", False) and any(s.noise("hires") is None for s in plan.sources):
        out.append("the hires pass's noise is not in the file")
    return out


def check_rng_device(p: Any, plan: replay.Plan) -> None:
    """The GPU noise source gives other numbers on another kind of device: say so when
    this generation needs the webui's generators (the stored noise alone is not enough)."""
    here = webui.rng_device_type()
    for src in plan.sources:
        there = src.a1111.get("rng_device_type")
        if not isinstance(there, str) or there == here:
            continue
        needs = draws_random_numbers(p, plan)
        if not needs:
            return
        raise replay.ReplayError(
            f"{src.name} was made with random numbers drawn on '{there}', this webui draws "
            f"them on '{here}' (Random number generator source "
            f"{webui.noise_device()!r}), and {'; '.join(needs)}: those numbers cannot be "
            "reproduced here, so the image would differ. Use a deterministic sampler to "
            "replay the stored noise alone, or make images meant for other machines with "
            "the CPU or NV source"
        )


def check_batch_independence(p: Any, plan: replay.Plan) -> None:
    """Refuse, instead of replaying something else, where an image depends on its place
    in the original run: the SDE samplers with ``no_dpmpp_sde_batch_determinism`` (one
    Brownian tree for the whole batch, from the global generator), and inpainting with
    "latent noise" fill (its noise comes from the *first* batch's seeds, by position)."""
    size = int(getattr(p, "batch_size", 1))
    latent_noise_fill = (
        is_img2img(p)
        and getattr(p, "image_mask", None) is not None
        and getattr(p, "inpainting_fill", None) == 2
    )
    for k, src in enumerate(plan.sources if latent_noise_fill else []):
        a = src.a1111
        was = a.get("batch_index"), a.get("iteration")
        if was != (k % size, k // size) and a.get("iteration", 0) != 0:
            raise replay.ReplayError(
                f"{src.name} is an inpainting with 'latent noise' fill from batch "
                f"{int(a.get('iteration', 0)) + 1}: the webui drew that fill from the first "
                "batch's seeds by position, which this run cannot give it; replay the whole "
                "run with all its files, in order"
            )
    samplers = {getattr(p, "sampler_name", None), getattr(p, "hr_sampler_name", None)}
    if not any(isinstance(n, str) and "SDE" in n for n in samplers):
        return
    for k, src in enumerate(plan.sources):
        a = src.a1111
        if not (a.get("opts") or {}).get("no_dpmpp_sde_batch_determinism"):
            continue
        same = a.get("batch_size") == size and a.get("batch_index") == k % size
        if not same:
            raise replay.ReplayError(
                f"{src.name} was made with an SDE sampler while 'Do not make DPM++ SDE "
                "deterministic across different batch sizes' was on: its noise depends on "
                f"the whole batch of {a.get('batch_size')}, so this image cannot be made "
                f"again as image {k % size + 1} of a batch of {size}; replay the whole "
                "batch with all its files, in order"
            )


def hires_shape(p: Any) -> tuple[int, ...] | None:
    """The hires pass's latent shape: the upscaled size, less the rows and columns the
    webui crops when both resize width and height are set at another aspect ratio."""
    hr_x = int(getattr(p, "hr_upscale_to_x", 0) or 0)
    hr_y = int(getattr(p, "hr_upscale_to_y", 0) or 0)
    if not hr_x or not hr_y:
        return None
    tx = int(getattr(p, "truncate_x", 0) or 0)
    ty = int(getattr(p, "truncate_y", 0) or 0)
    return (webui.latent_channels(), hr_y // 8 - ty, hr_x // 8 - tx)
