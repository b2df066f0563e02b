"""Putting the webui's settings back exactly as they were after a replay changed them.

A replay restores a file's settings (ENSD, noise source, sigma values...) through
``p.override_settings``. The webui does not always put those back: it only restores
keys already in ``opts.data`` (a fresh install without ``config.json`` has none), and
nothing at all when the caller asked ``override_settings_restore_afterwards: false``.
So this module records, before the webui applies the overrides, whether each key was in
``opts.data`` and its value, and puts exactly that back when the run ends: at
``postprocess`` and, because a failed run never reaches ``postprocess``, again when the
webui closes ``p`` (txt2img, img2img and the API all run under ``closing(p)``).
"""

from __future__ import annotations

import contextlib
from typing import Any

from . import webui

_ABSENT = object()


def _data(opts: Any) -> dict | None:
    data = getattr(opts, "data", None)
    return data if isinstance(data, dict) else None


def protect(p: Any, keys: list[str], caller_overrides: dict[str, Any]) -> dict[str, Any]:
    """What to put back for ``keys`` after the run: the caller's own override where the
    caller asked to keep overrides afterwards (the run without replay would have left
    it), else what ``opts`` held (``_ABSENT`` for a key not in ``opts.data``). Each key
    is also put into ``opts.data`` (with the value it reads as now), so that the webui's
    own restore covers it too."""
    opts = webui.opts()
    data = _data(opts)
    keep = not getattr(p, "override_settings_restore_afterwards", True)
    before: dict[str, Any] = {}
    for key in keys:
        if keep and key in caller_overrides:
            before[key] = caller_overrides[key]
        elif data is not None:
            before[key] = data.get(key, _ABSENT)
            if key not in data:
                data[key] = getattr(opts, key, None)
        else:
            before[key] = getattr(opts, key, _ABSENT)
    _wrap_close(p)
    return before


def restore(before: dict[str, Any]) -> None:
    """Put the recorded settings back (idempotent)."""
    opts = webui.opts()
    data = _data(opts)
    for key, value in before.items():
        if data is not None:
            if value is _ABSENT:
                data.pop(key, None)
            else:
                data[key] = value
        elif value is not _ABSENT:
            setattr(opts, key, value)


def _wrap_close(p: Any) -> None:
    """``p.close()`` then the restore of this run's settings (the webui calls it after
    ``process_images``, whether the run succeeded or raised)."""
    close = getattr(p, "close", None)
    if not callable(close) or getattr(close, "_raiiaf", False):
        return

    def close_and_restore() -> None:
        try:
            close()
        finally:
            run = getattr(p, "raiiaf", None)
            before = getattr(run, "opts_before", None)
            if before:
                restore(before)

    close_and_restore._raiiaf = True
    with contextlib.suppress(AttributeError):
        p.close = close_and_restore
