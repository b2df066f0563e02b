"""Capture, replay and the ``.raiiaf`` sidecar, independent of the UI.

State of one generation lives on the processing object as ``p.raiiaf`` (a
:class:`Run`): the captured noise keyed by ``(pass, global image index)``, the final
latents, and the replay plan. Hooks only read and write that state; the
``on_image_saved`` callback writes one file per main image from it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from raiiaf_rs import host as raiiaf_host

from . import gen_settings, opts_guard, replay, save_button, start_latent, webui
from . import infotext as infotext_mod

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
    #: Settings restored from the files for this generation: {label: (was, now)}.
    restored: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    #: The webui settings those replaced, {key: value}, put back after the run.
    opts_before: dict[str, Any] = field(default_factory=dict)
    plan: replay.Plan | None = None
    #: Set when the user chose to stop on a bad file: the message the run stops with.
    stop: str | None = None
    warnings: list[str] = field(default_factory=list)
    #: Set when another script (e.g. Forge's inpaint preprocessor) replaced the noise
    #: through ``p.modified_noise`` before this extension's hook: {pass: True}.
    modified_by_other: dict[str, bool] = field(default_factory=dict)
    sources: list = field(default_factory=list)
    #: img2img with a noise multiplier: some stored values have no exact pre-multiplier
    #: float, so the tensor between the draw and the hook was not exactly the stored one.
    draw_inexact: bool = False
    noise: dict[tuple[str, int], torch.Tensor] = field(default_factory=dict)
    latents: dict[int, torch.Tensor] = field(default_factory=dict)
    #: Starting latents that are random draws themselves (``start_latent``).
    start: dict[tuple[str, int], torch.Tensor] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    written: list[str] = field(default_factory=list)
    #: SHA-256 of each main image (``image_sha256``) -> its global index, for the Save
    #: button (``save_button``).
    image_hashes: dict[str, int] = field(default_factory=dict)


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


def report(p: Any, run: Run, message: str, drop: str | None = None) -> None:
    """A bad replay: stop (the message reaches the UI as the run's error) or go on
    without replay (the message goes to the log and under the images); ``drop``: only
    that pass goes on without replay."""
    message = f"raiiaf: {message}"
    if run.options.on_mismatch == replay.STOP:
        log.error("%s (stopping, as chosen)", message)
        print(f"[raiiaf] ERROR {message} (stopping, as chosen)")
        run.stop = message
        return
    if drop is not None and run.plan is not None:
        note = f"{message}; the {drop} pass is generated WITHOUT replay, as chosen"
        run.plan.skip.add(drop)
    else:
        note = f"{message}; generating WITHOUT replay, as chosen"
        run.plan = None
    log.warning("%s", note)
    print(f"[raiiaf] WARNING {note}")
    run.warnings.append(note)
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


class StoppedSampler:
    """Stands in for ``p.sampler`` when the run must stop after its noise was drawn
    (a hook's exception would only be logged): the webui calls the sampler outside any
    script try/except, so the error ends the generation and its message reaches the UI
    and the API response (an interrupt would leave an image without a reason, and make
    the webui fail later, e.g. in ``test_for_nans`` after a non-latent hires upscale)."""

    def __init__(self, inner: Any, message: str):
        self._inner = inner
        self._message = message

    def sample(self, *args: Any, **kwargs: Any):
        raise replay.ReplayError(self._message)

    sample_img2img = sample

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def stop_sampler(p: Any, run: Run) -> None:
    """Make the next sampling call raise ``run.stop``."""
    sampler = getattr(p, "sampler", None)
    if run.stop is not None and sampler is not None and not isinstance(sampler, StoppedSampler):
        p.sampler = StoppedSampler(sampler, run.stop)


class DrawRng:
    """Wraps ``p.rng`` for the first pass (the txt2img/img2img draw). Its first draw is
    the webui's own (so every image's generator advances exactly as in the original run)
    with the stored noise then written into it in place, *before* any hook sees it: a
    script that derives its own noise from it (Forge's ``p.modified_noise``, e.g. the
    inpaint preprocessor's ``noise + latent / sigma_max``) then derives it from the
    stored noise, as in the original run. Later draws (ancestral and DDIM per-step
    noise through ``TorchHijack``) pass through. Without ``process_before_every_sampling``
    (A1111 1.6-1.9) the first draw is also where the noise is captured."""

    def __init__(self, inner: Any, p: Any, run: Run, capture: bool):
        self._inner = inner
        self._p = p
        self._run = run
        self._capture = capture
        self._drawn = False

    def next(self):
        x = self._inner.next()
        if not self._drawn:
            self._drawn = True
            replace_at_draw(self._p, self._run, x)
            if self._capture:
                # img2img multiplies the draw by the noise multiplier next, in place; the
                # file holds the noise after it (as with the sampling hook).
                m = 1.0
                if is_img2img(self._p):
                    m = float(getattr(self._p, "initial_noise_multiplier", 1.0) or 1.0)
                on_noise(self._p, self._run, "first", x * m if m != 1.0 else x)
        return x

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def replace_at_draw(p: Any, run: Run, x: Any) -> None:
    """The stored first-pass noise into the freshly drawn tensor. img2img multiplies it by
    the noise multiplier next (in place), so there the value written is one whose product
    with the multiplier is the stored value, found per element (the hook then writes the
    exact stored values in any case); where no float does that, ``run.draw_inexact`` says
    so, for a script that reads the noise between the draw and the hook."""
    plan = run.plan
    if plan is None or run.stop is not None or "first" in plan.skip:
        return
    if tuple(x.shape[1:]) != _first_shape(plan, p) or x.shape[0] != _batch(p):
        return  # the hook reports it
    multiplier = 1.0
    if is_img2img(p):
        multiplier = float(getattr(p, "initial_noise_multiplier", 1.0) or 1.0)
    for i in range(int(x.shape[0])):
        arr = plan.source(global_index(p, i)).noise("first")
        if arr is None:
            continue
        stored = torch.from_numpy(arr.copy()).to(device=x.device, dtype=x.dtype)
        if multiplier != 1.0:
            stored = _pre_multiplier(stored, multiplier, run)
        x[i].copy_(stored)


def _pre_multiplier(stored: Any, m: float, run: Run) -> Any:
    """y with ``y * m == stored`` element-wise (the webui's in-place ``x *= m``), trying
    the quotient and its float neighbours."""
    y = stored / m
    for direction in (float("inf"), float("-inf")):
        wrong = (y * m) != stored
        if not bool(wrong.any()):
            return y
        step = torch.nextafter(y, torch.full_like(y, direction))
        y = torch.where(wrong & ((step * m) == stored), step, y)
    if bool(((y * m) != stored).any()):
        run.draw_inexact = True
    return y


def _first_shape(plan: replay.Plan, p: Any) -> tuple[int, ...]:
    arr = plan.source(global_index(p, 0)).noise("first")
    return tuple(arr.shape) if arr is not None else ()


def _batch(p: Any) -> int:
    return len(getattr(p, "seeds", None) or []) or int(getattr(p, "batch_size", 1))


def prepare(p: Any, options: Options) -> Run | None:
    """The ``before_process`` hook (before the webui applies ``p.override_settings``):
    set up the run, read and check the replay files, and restore the pixel-relevant
    settings they hold (or report each difference)."""
    if not options.enabled:
        p.raiiaf = None
        return None
    run = Run(options=options)
    p.raiiaf = run
    try:
        run.sources = replay.load_sources(options.replay_files)
        differences = replay.setting_differences(run.sources, p)
    except replay.ReplayError as e:
        report(p, run, str(e))
        run.sources = []
        return run
    if not run.sources or not differences:
        return run
    if options.restore_seeds:
        # What each setting would be after the run without this replay: the caller's
        # override, else the webui's value.
        overrides = dict(getattr(p, "override_settings", None) or {})
        keys = [d.key for d in differences if d.kind == "opts"]
        run.opts_before = opts_guard.protect(p, keys, overrides)
        restored = replay.restore(p, differences)
        run.restored = restored
        note = "raiiaf: restored from the file: " + "; ".join(
            f"{k} {was!r} -> {now!r}" for k, (was, now) in restored.items()
        )
        log.info("%s", note)
        print(f"[raiiaf] {note}")
        comment = getattr(p, "comment", None)
        if callable(comment):
            comment(note)
        return run
    listing = "; ".join(d.text() for d in differences)
    report(
        p,
        run,
        f"the file was made with other settings that change the image: {listing}. Turn on "
        "'use the stored seeds and settings' to restore them, or set them as listed",
    )
    if run.plan is None and run.stop is None:
        run.sources = []  # "proceed": no replay at all
    return run


def start(p: Any, run: Run | None) -> Run | None:
    """The ``process`` hook: ``p.all_seeds`` exists, ``p.init()`` has not run yet. Check
    the files against the run and restore the stored seeds."""
    if run is None:
        return None
    if is_img2img(p):
        run.inputs = {
            "init_images_sha256": [image_sha256(im) for im in (p.init_images or [])],
            "mask_sha256": image_sha256(getattr(p, "image_mask", None)),
        }
    if getattr(p, "firstpass_image", None) is not None:
        run.inputs = {"firstpass_image_sha256": image_sha256(p.firstpass_image)}
    sources = run.sources
    if not sources or run.stop is not None:
        return run
    plan = replay.Plan(sources=sources, restore_seeds=run.options.restore_seeds)
    if not compare_generation(p, run, sources):
        return run
    plan.restored = dict(run.restored)
    total = len(getattr(p, "all_seeds", None) or []) or p.batch_size * p.n_iter
    try:
        replay.check_count(plan, total)
        if getattr(p, "firstpass_image", None) is None:
            c = webui.latent_channels()
            replay.check_shape(plan, "first", (c, p.height // 8, p.width // 8), 0, total)
        else:
            plan.skip.add("first")  # the Hires fix button: no first pass runs
        check_batch_independence(p, plan)
        check_rng_device(p, plan)
    except replay.ReplayError as e:
        report(p, run, str(e))
        return run
    run.plan = plan
    warn_environment(run, sources)
    if run.options.restore_seeds:
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
    else:
        seeds = plan.seeds()
        needs = draws_random_numbers(p, plan)
        if seeds is not None and list(seeds[0]) != list(p.all_seeds) and needs:
            note = (
                "raiiaf: the stored seeds are not used (as chosen) and "
                f"{'; '.join(needs)}: the image keeps the stored initial noise but will "
                "differ from the original"
            )
            log.warning("%s", note)
            run.warnings.append(note)
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


def compare_generation(p: Any, run: Run, sources: list[replay.Source]) -> bool:
    """The files' prompts, steps, CFG, sampler, size, hires settings and model hashes
    against this run's: restored where chosen (and possible), else each difference
    listed with stop / proceed. False: no replay."""
    try:
        diffs = gen_settings.differences(sources, p)
    except Exception as e:  # a malformed file must not break the run
        report(p, run, f"the stored generation settings cannot be read: {e}")
        return False
    restore = run.options.restore_seeds
    blocking = [d for d in diffs if d.kind == "fixed" or not restore]
    if blocking:
        listing = "; ".join(d.text() for d in blocking)
        advice = (
            "load the file's checkpoint/VAE and set Hires fix as stored"
            if restore
            else "turn on 'use the stored seeds and settings' to restore them, or set them "
            "as listed (the 'apply stored settings' button)"
        )
        report(
            p,
            run,
            f"the file was made with other settings that change the image: {listing}; {advice}",
        )
        run.sources = []
        return False
    if diffs:
        done = gen_settings.restore(p, sources, diffs)
        run.restored.update(done)
        note = "raiiaf: restored from the file: " + "; ".join(
            f"{k} {was!r} -> {now!r}" for k, (was, now) in done.items()
        )
        log.info("%s", note)
        print(f"[raiiaf] {note}")
        comment = getattr(p, "comment", None)
        if callable(comment):
            comment(note)
    return True


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


def finish(p: Any, run: Run | None) -> None:
    """``postprocess``: the settings restored from the files were for this replay only:
    put back exactly what was there before (``opts_guard``; again when ``p`` closes)."""
    if run is not None and run.opts_before:
        opts_guard.restore(run.opts_before)


def before_batch(p: Any, run: Run | None, has_sampling_hook: bool) -> None:
    """``before_process_batch``: ``p.rng`` was just created and ``p.init()`` has run."""
    if run is None:
        return
    plan = run.plan
    if plan is not None and run.stop is None and getattr(p, "iteration", 0) == 0:
        shape = hires_shape(p)
        if getattr(p, "enable_hr", False) and shape is not None and not is_img2img(p):
            try:
                replay.check_shape(plan, "hires", shape, 0, len(plan.sources))
            except replay.ReplayError as e:
                report(p, run, str(e), drop="hires")
    if is_img2img(p) and run.stop is None:
        first = global_index(p, 0)
        rows = start_latent.stored_rows(run, "first", first, getattr(p, "init_latent", None))
        if rows is not None:
            p.init_latent = rows
        start_latent.capture(run, "first", first, getattr(p, "init_latent", None))
    if run.stop is not None:
        # The Hires fix button draws nothing from p.rng before the hires pass: there the
        # hires pass's hook stops the sampler (stop_sampler).
        p.rng = StoppedRng(p.rng, run.stop)
    elif run.plan is not None or not has_sampling_hook:
        p.rng = DrawRng(p.rng, p, run, capture=not has_sampling_hook)


def on_noise(p: Any, run: Run | None, which: str, noise: Any, x: Any = None) -> None:
    """The exact noise of a pass (``process_before_every_sampling``'s ``noise``):
    replace it in place from the plan, then capture what the sampler will use.
    Idempotent (Forge calls it twice in the hires pass). ``p.modified_noise`` is never
    set: the in-place copy is what the sampler uses in every webui, and another script's
    ``p.modified_noise`` (derived from this noise) stays as that script made it."""
    if run is None or noise is None:
        return
    if run.stop is not None:
        stop_sampler(p, run)
        return
    batch = int(noise.shape[0])
    plan = run.plan
    if plan is not None and which in plan.skip:
        plan = None
    if plan is not None:
        try:
            replay.check_shape(plan, which, tuple(noise.shape[1:]), global_index(p, 0), batch)
        except replay.ReplayError as e:
            report(p, run, str(e), drop=which if which == "hires" else None)
            if run.stop is not None:
                # Too late to raise (hooks' errors are only logged): the sampler raises
                # instead, so nothing is made from noise that is not the stored one.
                stop_sampler(p, run)
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
    if which == "hires" and start_latent.hires_encodes(p):
        rows = start_latent.stored_rows(run, "hires", global_index(p, 0), x)
        if rows is not None:
            x.copy_(rows)
        start_latent.capture(run, "hires", global_index(p, 0), x)
    if getattr(p, "modified_noise", None) is not None:
        run.modified_by_other[which] = True
        if which == "first" and run.draw_inexact and run.plan is not None:
            note = (
                "raiiaf: another script replaced the noise (p.modified_noise) from the noise "
                "as drawn, and with this noise multiplier the stored noise could not be put "
                "there bit for bit before it did: the result may differ slightly from the "
                "original"
            )
            if note not in run.warnings:
                log.warning("%s", note)
                run.warnings.append(note)
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
