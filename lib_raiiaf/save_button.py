"""The webui's *Save* button: a ``.raiiaf`` beside the image it saves.

The button saves gallery images after the run has ended, through ``images.save_image``
with a stand-in ``p`` built from the page's JSON (no ``p.raiiaf``). So the last few
runs' captured state is kept here, with the SHA-256 of each main image as shown in the
gallery (the gallery round-trips PNG losslessly), and a save of one of those images gets
its sidecar from the run that made it.
"""

from __future__ import annotations

from typing import Any

#: How many finished runs are kept (their noise tensors and ``p``).
KEEP = 2
_recent: list[tuple[Any, Any]] = []


def remember(p: Any, run: Any) -> None:
    """After a run that captured noise and wants sidecars."""
    if not run.image_hashes or not run.noise:
        return
    kept = [(q, r) for q, r in _recent if r is not run]
    _recent[:] = [*kept[len(kept) - (KEEP - 1) :], (p, run)]


def find(image_hash: str | None) -> tuple[Any, Any, int] | None:
    """(p, run, global index) of a kept run's image with this hash, newest run first."""
    if image_hash is None:
        return None
    for p, run in reversed(_recent):
        index = run.image_hashes.get(image_hash)
        if index is not None:
            return p, run, index
    return None
