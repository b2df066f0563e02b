"""The state of one generation (``p.raiiaf``, a :class:`Run`) and the helpers every
part of the extension shares: the UI options, image and index bookkeeping, and how a bad
replay is reported (stop, or go on without replay)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field, fields
from typing import Any

import torch

from . import replay

log = logging.getLogger("raiiaf")


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
