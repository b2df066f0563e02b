"""The replay and capture hooks, independent of the UI.

State of one generation lives on the processing object as ``p.raiiaf`` (a
:class:`~lib_raiiaf.run_state.Run`): the captured noise keyed by ``(pass, global image
index)``, the final latents, and the replay plan. Hooks only read and write that state;
``sidecar`` writes one file per main image from it.
"""

from __future__ import annotations

from typing import Any

import torch

from . import gen_settings, opts_guard, replay, start_latent, webui
from .checks import (
    check_batch_independence,
    check_rng_device,
    draws_random_numbers,
    hires_shape,
    warn_environment,
)
from .rng_wrap import DrawRng, StoppedRng, stop_sampler
from .run_state import Options, Run, global_index, image_sha256, is_img2img, log, report


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
    for src in run.sources:
        across = src.not_exact_here()
        if across:
            note = (
                f"raiiaf: {src.name} was written by {across[0].stored}: its stored noise is "
                "replayed, but the image will not be identical: "
                + "; ".join(d.text() for d in across)
            )
            log.warning("%s", note)
            run.warnings.append(note)
    if not run.sources or not differences:
        return run
    if options.restore_seeds:
        # What each setting would be after the run without this replay: the caller's
        # override, else the webui's value.
        overrides = dict(getattr(p, "override_settings", None) or {})
        keys = [d.key for d in differences if d.kind == "opts"]
        run.opts_before = opts_guard.protect(p, keys, overrides)
        run.restored = replay.restore(p, differences)
        _say_restored(p, run.restored)
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
        _say_restored(p, done)
    return True


def _say_restored(p: Any, restored: dict[str, tuple[Any, Any]]) -> None:
    """What a replay restored, ``{key: (was, now)}``: in the log and under the images."""
    note = "raiiaf: restored from the file: " + "; ".join(
        f"{k} {was!r} -> {now!r}" for k, (was, now) in restored.items()
    )
    log.info("%s", note)
    print(f"[raiiaf] {note}")
    comment = getattr(p, "comment", None)
    if callable(comment):
        comment(note)


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
        p.rng = DrawRng(p.rng, p, run, capture=None if has_sampling_hook else on_noise)


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
