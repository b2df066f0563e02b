"""The save node's ``passes`` metadata (FORMAT.md §4.7): each sampler pass upstream of the
saved image as a :class:`raiiaf_rs.passes.Pass`, the record every host writes. A stored
pass is built from its ``captures`` record by the reader's own rule
(:func:`raiiaf_rs.passes.from_capture`), so a file reads the same with the key or without
it; the ``captures`` records (§4.4) stay beside it for loaders of earlier versions."""

from __future__ import annotations

import dataclasses
from typing import Any

from raiiaf_rs.passes import Pass, from_capture

#: KSamplerAdvanced's step range, which the old files' rule does not map.
_STEPS = (("start_at_step", "start_step"), ("end_at_step", "end_step"))


def captured(
    order: int, record: dict[str, Any], latents: dict[str, Any], whole: str | None
) -> Pass:
    """The pass of a ``captures`` record (``latents``: the file's tensors; ``whole``: why
    the file holds the whole batch's noise for it, which no replay of this image alone
    reproduces)."""
    shapes = {k: tuple(t.shape) for k, t in latents.items()}
    dtypes = {k: str(t.dtype).removeprefix("torch.") for k, t in latents.items()}
    p = from_capture(record, order, order == 0, shapes, dtypes)
    settings = record.get("settings") or {}
    steps = {new: settings[old] for old, new in _STEPS if settings.get(old) is not None}
    return dataclasses.replace(
        p,
        settings={**p.settings, **steps},
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
