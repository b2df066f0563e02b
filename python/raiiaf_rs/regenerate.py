"""How to regenerate a file outside ComfyUI, for ``raiiaf serve``'s "Regenerate": the inputs
of the AUTOMATIC1111 / Forge extension's replay (lib_raiiaf: the *raiiaf* accordion's
"Replay: .raiiaf file(s)", with "Apply stored settings") and the same replay as one command
line, through the webui's HTTP API (``alwayson_scripts["raiiaf"]``, docs/a1111-extension.md).
"""

from __future__ import annotations

import json
import shlex
from typing import Any

#: The extension's "on mismatch" choice that never replays silently with other noise.
STOP = "Stop with a message"
#: The settings "Apply stored settings" copies into the tab, and where they come from.
_SETTINGS = (
    ("prompt", "prompt"),
    ("negative_prompt", "negative_prompt"),
    ("seed", "seed"),
    ("steps", "steps"),
    ("sampler_name", "sampler"),
    ("scheduler", "scheduler"),
    ("cfg_scale", "cfg_scale"),
    ("width", "width"),
    ("height", "height"),
    ("denoising_strength", "denoise"),
)


def settings(metadata: dict[str, Any]) -> dict[str, Any]:
    """The webui's txt2img fields for a file's metadata (those it records)."""
    gen = metadata.get("generation_settings")
    gen = gen if isinstance(gen, dict) else {}
    a1111 = metadata.get("a1111")
    a1111 = a1111 if isinstance(a1111, dict) else {}
    out: dict[str, Any] = {}
    for field, key in _SETTINGS:
        for source in (a1111, gen, metadata):
            value = source.get(field, source.get(key))
            if value not in (None, ""):
                out[field] = value
                break
    return out


def webui(path: str, name: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """``{steps, settings, command}``: what to do in the webui's txt2img tab to replay the
    file ``path`` (``name`` as the user sees it), the settings that fills in, and the API
    call doing the same (the path must be inside the webui's output folders, as the
    extension requires, or the file sent as base64 instead)."""
    fields = settings(metadata)
    body = {
        **fields,
        "save_images": True,
        "alwayson_scripts": {"raiiaf": {"args": [True, True, True, False, path, STOP, True]}},
    }
    command = (
        "curl -s -X POST http://127.0.0.1:7860/sdapi/v1/txt2img "
        "-H 'Content-Type: application/json' -d " + shlex.quote(json.dumps(body))
    )
    return {
        "steps": [
            "Open the txt2img tab of AUTOMATIC1111 or Forge with the raiiaf extension.",
            "Open “raiiaf: .raiiaf noise files (save / replay)” and enable it.",
            f"Drop {name} into “Replay: .raiiaf file(s), one per image of the run, in order”.",
            "Click “Apply stored settings” (it fills in the settings below), keep “Use the "
            "stored seeds and settings” on and “Stop with a message”, then Generate.",
        ],
        "settings": fields,
        "command": command,
    }
