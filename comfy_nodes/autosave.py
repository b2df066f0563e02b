"""The no-graph-change mode: a ``.raiiaf`` beside every image core SaveImage writes.

Opt-in. The mode is on for a prompt when the environment variable
``RAIIAF_SIDECAR_ALL`` is 1/true/yes/on when ComfyUI starts (headless servers, SwarmUI
backends), or, when that variable is unset, when the setting ``raiiaf.SidecarAll`` is
on in ComfyUI's settings panel (registered by web/raiiaf_settings.js). The front end
stores its settings on the server, in ``<user directory>/default/comfy.settings.json``
(app/app_settings.py, the same on 0.3.75 and 0.33.0); this module reads that file.
``RAIIAF_SIDECAR_ALL=0`` forces the mode off whatever the panel says. With
``--multi-user`` ComfyUI does not record which user queued a prompt, so the panel
setting cannot be tied to a prompt: only the environment variable counts there.

How: ``nodes.SaveImage.save_images`` is wrapped. The original runs first, untouched;
then, for each image it wrote to the output directory, the sidecar is written with the
save node's attribution rules (save.passes_for: the sampler runs upstream of the
executing node's ``images`` input) and record (save.build_record). Nodes of other
packs that subclass SaveImage or call ``SaveImage.save_images`` (KJNodes, Impact, many
"save with metadata" variants) go through the same method and get a sidecar too;
previews (type "temp") get none. Savers with their own writing code, and SwarmUI's
``SwarmSaveImageWS`` (which sends the image over the websocket and writes no file),
have no image file here to sit beside, so they get nothing.

A sidecar that cannot be written costs a warning in the log and nothing else: the
images, and what SaveImage returns, stay exactly as core SaveImage made them.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections import OrderedDict
from typing import Any

from raiiaf_rs import host as raiiaf_host

from . import host

ENV = "RAIIAF_SIDECAR_ALL"
SETTING_ID = "raiiaf.SidecarAll"
SETTINGS_FILE = "comfy.settings.json"
_ON = ("1", "true", "yes", "on")
_OFF = ("0", "false", "no", "off")

log = logging.getLogger(__name__)
_lock = threading.Lock()
_decided: OrderedDict[str, bool] = OrderedDict()  # prompt id -> mode, fixed at first ask
_settings_cache: tuple[tuple[int, int], bool] | None = None


def parse_env(value: str | None) -> bool | None:
    """The mode the environment variable sets: True/False, None when unset. An
    unreadable value is an error, not a guess."""
    v = (value or "").strip().lower()
    if not v:
        return None
    if v in _ON:
        return True
    if v in _OFF:
        return False
    raise ValueError(f"{ENV}={value!r}: use 1 (on) or 0 (off), or leave it unset")


def setting_from(settings: Any) -> bool:
    """The panel setting's value in a parsed settings file (off unless exactly true)."""
    return isinstance(settings, dict) and settings.get(SETTING_ID) is True


def _settings_path() -> str | None:
    try:
        import folder_paths
        from comfy.cli_args import args

        if getattr(args, "multi_user", False):
            return None
        return os.path.join(folder_paths.get_user_directory(), "default", SETTINGS_FILE)
    except Exception:
        return None


def panel_setting() -> bool:
    """The settings panel's value, read from the server's settings file (cached by the
    file's mtime and size: a toggle in the panel counts from the next prompt on)."""
    global _settings_cache
    path = _settings_path()
    try:
        st = os.stat(path) if path else None
    except OSError:
        st = None
    if st is None:
        return False
    key = (st.st_mtime_ns, st.st_size)
    cached = _settings_cache
    if cached is not None and cached[0] == key:
        return cached[1]
    try:
        with open(path, encoding="utf-8") as f:
            value = setting_from(json.load(f))
    except (OSError, ValueError) as e:
        log.warning("[raiiaf] cannot read %s from the settings file: %s", SETTING_ID, e)
        value = False
    _settings_cache = (key, value)
    return value


def mode_now() -> bool:
    env = parse_env(os.environ.get(ENV))
    return panel_setting() if env is None else env


def enabled(prompt_id: str) -> bool:
    """Whether the mode is on for ``prompt_id``: decided once per prompt, so that the
    capture (at sampling time) and the save agree even if the setting changes between."""
    with _lock:
        if prompt_id in _decided:
            return _decided[prompt_id]
    value = mode_now()
    with _lock:
        _decided[prompt_id] = value
        while len(_decided) > 64:
            _decided.popitem(last=False)
    return value


def _hooked_classes(prompt: dict) -> bool:
    """Whether ``prompt`` has a node whose class is SaveImage or built on it."""
    try:
        import nodes

        classes = nodes.NODE_CLASS_MAPPINGS
        base = nodes.SaveImage
    except Exception:
        return False
    for node in prompt.values():
        cls = classes.get(node.get("class_type")) if isinstance(node, dict) else None
        if isinstance(cls, type) and issubclass(cls, base):
            return True
    return False


def wants_capture(prompt_id: str, prompt: dict) -> bool:
    """For the capture: prompts whose savers get a sidecar in this mode are captured."""
    try:
        return enabled(prompt_id) and _hooked_classes(prompt)
    except Exception as e:  # never break sampling over the mode
        log.warning("[raiiaf] %s: %s", ENV, e)
        return False


def write_sidecars(
    images: Any,
    saved: list[dict[str, Any]],
    output_dir: str,
    prompt: dict | None,
    extra_pnginfo: dict | None,
    node_id: str,
    list_index: int,
    prompt_id: str,
) -> list[str]:
    """Write the ``.raiiaf`` of each image in ``saved`` (SaveImage's ``ui.images``
    entries, in batch order) beside it. Returns the paths written; failures are
    logged, told to the front end, and skipped."""
    from . import save  # the save node's attribution and record: one set of rules

    prompt = prompt if isinstance(prompt, dict) else host.running_prompt(prompt_id) or {}
    passes = save.passes_for(prompt, node_id, list_index, prompt_id)
    environment = host.environment([p.capture for p in passes if p.capture is not None])
    batch = int(images.shape[0])
    size = (int(images.shape[2]), int(images.shape[1]))
    batch_id = uuid.uuid4().hex
    written: list[str] = []
    problems: list[str] = []  # for the log and the front end (no server paths)
    for index, entry in enumerate(saved[:batch]):
        name = entry.get("filename", "?") if isinstance(entry, dict) else "?"
        try:
            if entry.get("type") != "output":
                continue  # previews and temp files get no sidecar
            path = os.path.join(output_dir, entry.get("subfolder") or "", entry["filename"])
            latents, metadata = save.build_record(
                passes, index, batch, prompt, extra_pnginfo, False, prompt, batch_id, size
            )
            class_type = (prompt.get(node_id) or {}).get("class_type", "")
            metadata["sidecar_mode"] = {
                "written_by": f"{ENV} / {SETTING_ID} (no raiiaf node in the graph)",
                "node_id": node_id,
                "class_type": class_type,
            }
            written.append(
                raiiaf_host.write_sidecar(
                    path,
                    latents,
                    metadata=metadata,
                    environment=environment,
                    image_extra={"width": size[0], "height": size[1]},
                )
            )
            if metadata.get("warning") and metadata["warning"] not in problems:
                problems.append(metadata["warning"])
                log.warning("[raiiaf] %s: %s", name, metadata["warning"])
        except Exception as e:  # a sidecar never breaks SaveImage
            problems.append(f"{name} was saved without its .raiiaf: {save._failure(e, output_dir)}")
            log.warning("[raiiaf] WARNING %s", problems[-1])
    _tell_front_end(node_id, problems)
    return written


def _tell_front_end(node_id: str, problems: list[str]) -> None:
    """Warnings as the "raiiaf.sidecar_warning" event, to the client that queued the
    prompt (web/raiiaf_settings.js shows them as a toast). SaveImage's own output to the
    front end stays as core made it."""
    if not problems:
        return
    try:
        from server import PromptServer

        server = PromptServer.instance
        client = getattr(server, "client_id", None)  # the running prompt's client
        if client:
            server.send_sync(
                "raiiaf.sidecar_warning", {"node": node_id, "warnings": problems}, client
            )
    except Exception as e:  # the log has them anyway
        log.warning("[raiiaf] could not tell the front end: %s", e)


def _after_save(node: Any, images: Any, out: Any, prompt: Any, extra_pnginfo: Any) -> None:
    prompt_id, node_id, list_index = host.current_context()
    if not enabled(prompt_id):
        return
    saved = out.get("ui", {}).get("images") if isinstance(out, dict) else None
    output_dir = getattr(node, "output_dir", None)
    if not saved or not output_dir or getattr(node, "type", "output") != "output":
        return
    write_sidecars(
        images, list(saved), output_dir, prompt, extra_pnginfo, node_id, list_index, prompt_id
    )


_installed = False


def install() -> bool:
    """Wrap SaveImage.save_images (once). Returns whether the mode may apply: the
    environment variable does not force it off. The wrapper reads the mode per prompt."""
    global _installed
    try:
        env = parse_env(os.environ.get(ENV))
    except ValueError as e:
        log.error("[raiiaf] %s; the .raiiaf-beside-every-image mode stays off", e)
        return False
    if env is False:
        return False
    if _installed:
        return True
    try:
        import nodes

        original = nodes.SaveImage.save_images
    except Exception as e:  # a ComfyUI whose SaveImage moved: the rest of the pack works
        log.error("[raiiaf] no SaveImage.save_images to wrap (%s): the mode is unavailable", e)
        return False

    def save_images(
        self, images, filename_prefix="ComfyUI", prompt=None, extra_pnginfo=None, *args, **kwargs
    ):
        out = original(self, images, filename_prefix, prompt, extra_pnginfo, *args, **kwargs)
        try:
            _after_save(self, images, out, prompt, extra_pnginfo)
        except Exception as e:  # a sidecar never breaks SaveImage
            log.warning("[raiiaf] WARNING no .raiiaf for this save: %s: %s", type(e).__name__, e)
        return out

    save_images.__wrapped__ = original  # type: ignore[attr-defined]
    save_images.__doc__ = original.__doc__
    nodes.SaveImage.save_images = save_images
    _installed = True
    return True
