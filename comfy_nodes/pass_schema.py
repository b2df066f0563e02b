"""The save node's ``passes`` metadata (FORMAT.md §4.7): each sampler pass upstream of the
saved image as a :class:`raiiaf_rs.passes.Pass`, the record every host writes. The
``captures`` records (§4.4) stay beside it for loaders of earlier versions."""

from __future__ import annotations

from typing import Any

from raiiaf_rs.passes import Pass

#: ComfyUI's setting names and the pass schema's.
_SETTINGS = (
    ("sampler_name", "sampler"),
    ("scheduler", "scheduler"),
    ("steps", "steps"),
    ("cfg", "cfg"),
    ("denoise", "denoise"),
    ("start_at_step", "start_step"),
    ("end_at_step", "end_step"),
)


def _role(order: int, record: dict[str, Any]) -> str:
    """``txt2img``/``img2img`` for the first pass (an input latent stored, or a denoise
    below 1, means it started from an image); ``hires`` for every later one, as the old
    files' rule maps them."""
    if order > 0:
        return "hires"
    settings = record.get("settings") or {}
    started = record.get("input_latent") or settings.get("denoise", 1.0) != 1.0
    return "img2img" if started else "txt2img"


def captured(order: int, record: dict[str, Any], dtype: str, whole: str | None) -> Pass:
    """The pass of a ``captures`` record (``whole``: why the file holds the whole
    batch's noise for it, which no replay of this image alone reproduces)."""
    settings = record.get("settings") or {}
    sigmas = record.get("sigmas")
    return Pass(
        order=order,
        role=_role(order, record),
        noise=record["name"],
        input_latent=record.get("input_latent"),
        adds_noise=not record.get("all_zero", False),
        seed=record.get("seed"),
        noise_shape=tuple(record["shape"]) if record.get("shape") else None,
        noise_dtype=dtype,
        sigmas=tuple(float(s) for s in sigmas) if sigmas else None,
        settings={new: settings[old] for old, new in _SETTINGS if settings.get(old) is not None},
        source={
            "host": "comfyui",
            "node_id": record.get("node_id"),
            "class_type": record.get("class_type"),
        },
        exact=whole is None,
        why_not_exact=(whole,) if whole else (),
    )


def missing(order: int, record: dict[str, Any]) -> Pass:
    """A pass that ran but whose noise could not be stored (``missing_passes`` record)."""
    return Pass(
        order=order,
        role="txt2img" if order == 0 else "hires",
        source={
            "host": "comfyui",
            "node_id": record.get("node_id"),
            "class_type": record.get("class_type"),
        },
        exact=False,
        why_not_exact=(f"its noise is not stored: {record.get('reason')}",),
    )
