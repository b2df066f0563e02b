"""Run inside the simulated user's Python (not the project's .venv): start the real
ComfyUI with the cloned pack, report what a user would see, as one JSON line on stdout.

    python manager_driver.py BASE_DIR PACK_DIR [generate]

Uses only the standard library and the ComfyUI harness (itself standard library only),
so it runs in a Python where raiiaf_rs may or may not be installed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "comfyui"))
from harness import TINY_CKPT, ComfyServer, default_txt2img

base, pack = Path(sys.argv[1]), Path(sys.argv[2])
generate = sys.argv[3:] == ["generate"]
report: dict = {}
# This very Python is the user's: the server runs with it, whatever $COMFYUI_PYTHON says.
with ComfyServer(base, node_pack=pack, python=sys.executable) as comfy:
    info = comfy.object_info()
    report["raiiaf_nodes"] = sorted(k for k in info if k.startswith("Raiiaf"))
    report["core_nodes"] = "KSampler" in info and "SaveImage" in info
    if generate:
        graph = default_txt2img(TINY_CKPT, seed=5, steps=2, save_class="RaiiafSaveImage")
        graph["7"]["inputs"].update(filename_prefix="mgr", save_final_latent=False, codec="raw")
        entry = comfy.run(graph)
        report["outputs"] = entry["outputs"]
        report["files"] = sorted(p.name for p in comfy.output_dir.iterdir())
    report["alive"] = comfy.alive()
report["log"] = comfy.log_text()
print(json.dumps(report))
