"""Global callbacks (``on_image_saved`` etc.), registered by scripts at module level;
``clear_callbacks()`` runs before scripts are (re)loaded."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from modules import errors


class ImageSaveParams:
    def __init__(self, image: Any, p: Any, filename: str, pnginfo: dict):
        self.image = image
        self.p = p
        self.filename = filename
        self.pnginfo = pnginfo


class ExtraNoiseParams:
    def __init__(self, noise: Any, x: Any, xi: Any):
        self.noise = noise
        self.x = x
        self.xi = xi


_callbacks: dict[str, list] = defaultdict(list)


def clear_callbacks() -> None:
    _callbacks.clear()


def _add(kind: str, fn) -> None:
    _callbacks[kind].append(fn)


def _run(kind: str, *args: Any, **kwargs: Any) -> None:
    for fn in list(_callbacks[kind]):
        try:
            fn(*args, **kwargs)
        except Exception:
            errors.report(f"Error executing callback {kind} for {fn}", exc_info=True)


def on_before_image_saved(fn) -> None:
    _add("before_image_saved", fn)


def on_image_saved(fn) -> None:
    _add("image_saved", fn)


def on_extra_noise(fn) -> None:
    _add("extra_noise", fn)


def on_after_component(fn) -> None:
    _add("after_component", fn)


def on_before_component(fn) -> None:
    _add("before_component", fn)


def on_script_unloaded(fn) -> None:
    _add("script_unloaded", fn)


def on_ui_settings(fn) -> None:
    _add("ui_settings", fn)


def on_infotext_pasted(fn) -> None:
    _add("infotext_pasted", fn)


def on_app_started(fn) -> None:
    _add("app_started", fn)


def before_image_saved_callback(params: ImageSaveParams) -> None:
    _run("before_image_saved", params)


def image_saved_callback(params: ImageSaveParams) -> None:
    _run("image_saved", params)


def extra_noise_callback(params: ExtraNoiseParams) -> None:
    _run("extra_noise", params)


def after_component_callback(component: Any, **kwargs: Any) -> None:
    _run("after_component", component, **kwargs)


def script_unloaded_callback() -> None:
    _run("script_unloaded")


def registered(kind: str) -> list:
    return list(_callbacks[kind])
