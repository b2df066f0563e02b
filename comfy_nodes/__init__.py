"""raiiaf-rs for ComfyUI: save a .raiiaf (image + exact initial noise +
settings + environment) beside every image, and load it to generate the same
image again. Nodes: "Save Image + .raiiaf", "Load .raiiaf", "Replay .raiiaf
noise", "Capture noise (.raiiaf)".

The initial noise of every sampler run is captured by a global hook unless
the environment variable RAIIAF_CAPTURE=0 is set when ComfyUI starts. Opt-in, a
.raiiaf is also written beside every image core SaveImage writes (autosave.py).
"""

from __future__ import annotations

from comfy_api.latest import ComfyExtension, io

from . import archive_routes, autosave, batch_noise, capture, inputs, routes
from .capture_node import CaptureNoise
from .load import LoadRaiiaf, ReplayRaiiafNoise
from .load_batch import LoadRaiiafBatch
from .save import SaveImageRaiiaf


class RaiiafExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [SaveImageRaiiaf, LoadRaiiaf, LoadRaiiafBatch, ReplayRaiiafNoise, CaptureNoise]


async def comfy_entrypoint() -> RaiiafExtension:
    # Installed here, once: ComfyUI 0.3.x does not call ComfyExtension.on_load.
    # Batch rows for replayed images: inert unless a replay asks for them.
    batch_noise.install()
    # The inputs nodes really ran with (prompts built by string nodes, linked seeds).
    inputs.install()
    if capture.install_global_hook():
        print(
            "[raiiaf] capturing the initial noise of every sampler run (RAIIAF_CAPTURE=0 disables)"
        )
    # The no-graph-change mode: a .raiiaf beside every image SaveImage writes, when
    # RAIIAF_SIDECAR_ALL=1 or the settings panel's switch is on.
    if autosave.install():
        capture.capture_wanted.append(autosave.wants_capture)
        print(
            f"[raiiaf] a .raiiaf beside every saved image when {autosave.ENV}=1 or the "
            "settings panel's switch is on"
        )
    # The front end's routes (/raiiaf/inspect, /raiiaf/upload); WEB_DIRECTORY, the
    # JavaScript, is set in the pack root's __init__.py.
    if not routes.register():
        print("[raiiaf] no ComfyUI server: the front-end routes are not available")
    # The archive browser's sidebar tab (/raiiaf/archive/...).
    archive_routes.register()
    return RaiiafExtension()
