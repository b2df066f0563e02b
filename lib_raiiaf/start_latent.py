"""The sampler's starting latent where it is a random draw, captured and replayed.

img2img starts from ``p.init_latent``, the VAE encoding of the input image, and the
webui's encoder *samples* the latent distribution with torch's global generator, whose
state is whatever the previous generation left. The hires pass after a non-latent
upscaler (and the Hires fix button) encodes an image the same way. Replaying the stored
noise alone therefore does not give the same image: the starting latent is stored too
(``init_latent``, ``hires_start_latent``) and put back on replay, as long as the input
image (and mask) is the one the file was made from.
"""

from __future__ import annotations

from typing import Any

import torch

from . import replay


def _tensor(x: Any) -> bool:
    return isinstance(x, torch.Tensor) and x.ndim == 4


def hires_encodes(p: Any) -> bool:
    """Whether this hires pass starts from a VAE encoding (not a latent upscale)."""
    if getattr(p, "firstpass_image", None) is not None:
        return True
    return getattr(p, "latent_scale_mode", "latent") is None


def capture(run: Any, which: str, first: int, latent: Any) -> None:
    if not _tensor(latent):
        return
    for i in range(int(latent.shape[0])):
        run.start[(which, first + i)] = latent[i].detach().to("cpu", torch.float32).clone()


def inputs_match(run: Any, src: replay.Source) -> bool:
    """The img2img input image and mask are those the file was made from."""
    stored = src.a1111.get("img2img") or {}
    for key in ("init_images_sha256", "mask_sha256"):
        if key in stored and stored[key] != run.inputs.get(key):
            return False
    return True


def stored_rows(run: Any, which: str, first: int, latent: Any) -> torch.Tensor | None:
    """The stored starting latents for images ``first``.. of this batch, shaped and typed
    like ``latent``; None (with a warning) where they cannot be used."""
    plan = run.plan
    if plan is None or run.stop is not None or which in plan.skip or not _tensor(latent):
        return None
    rows = []
    for i in range(int(latent.shape[0])):
        src = plan.source(first + i)
        arr = src.start(which)
        what = "img2img starting latent" if which == "first" else "hires starting latent"
        if arr is None:
            _warn(
                run,
                f"{src.name} holds no {what} (older file): the noise is replayed, "
                "but the image may differ from the original",
            )
            return None
        if which == "first" and not inputs_match(run, src):
            return None  # start() already warns that the input image differs
        if tuple(arr.shape) != tuple(latent.shape[1:]):
            _warn(
                run,
                f"{src.name}: the stored {what} has shape {list(arr.shape)}, this "
                f"run's is {list(latent.shape[1:])}: not replayed, the image will differ",
            )
            return None
        rows.append(torch.from_numpy(arr.copy()))
    return torch.stack(rows).to(device=latent.device, dtype=latent.dtype)


def _warn(run: Any, text: str) -> None:
    note = f"raiiaf: {text}"
    if note not in run.warnings:
        print(f"[raiiaf] WARNING {note}")
        run.warnings.append(note)
