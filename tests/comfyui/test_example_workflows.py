"""Every example workflow in workflows/ on the real ComfyUI under test (0.3.75 in `pytest`,
0.33.0 in `comfyui-latest-test`): each save workflow runs, then the reload workflow made
for its files, and the regenerated images are the saved ones, pixel for pixel. The graphs
are the API form of the shipped files (workflows/graphs.py; tests/test_workflows.py checks
the files are what it renders), at 64x64 and 4 steps.

On ComfyUI >= 0.8 the reload workflows that link the loader's sampler_name and scheduler
into a KSampler were refused at /prompt (HTTP 400, return_type_mismatch) while those
outputs were typed "COMBO": see comfy_nodes/load.ChoiceOutput.
"""

from __future__ import annotations

import inspect
import io
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .harness import REPO

sys.path.insert(0, str(REPO / "workflows"))
import graphs

SIZE, STEPS = 64, 4
# reload workflow -> (the save workflow that makes its files, that one's arguments, how many
# images it saves). The batch is regenerated whole from any one of its files.
CASES = {
    "raiiaf_reload_ksampler": ("raiiaf_save_ksampler", {}, 1),
    "raiiaf_reload_sampler_custom_advanced": ("raiiaf_save_sampler_custom_advanced", {}, 1),
    "raiiaf_reload_hires": ("raiiaf_save_hires", {}, 1),
    "raiiaf_reload_batch": ("raiiaf_save_ksampler", {"batch": 2}, 2),
}


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(path.read_bytes())).convert("RGB"))


def call(name: str, **kw) -> dict:
    """The API prompt of workflow ``name`` with those of ``kw`` it takes."""
    make = graphs.WORKFLOWS[name]
    takes = inspect.signature(make).parameters
    return graphs.to_api(make(**{k: v for k, v in kw.items() if k in takes}))


def test_every_example_workflow_is_run_here():
    used = set(CASES) | {save for save, _, _ in CASES.values()}
    assert used == set(graphs.WORKFLOWS), "give each new workflow a case in CASES"


@pytest.mark.parametrize("reload", sorted(CASES))
def test_example_workflow_saves_then_regenerates_the_same_image(comfy, reload):
    save, extra, images = CASES[reload]
    prefix = f"ex_{reload.removeprefix('raiiaf_')}"
    common = {"ckpt": comfy.ckpt, "steps": STEPS, "width": SIZE, "height": SIZE}
    comfy.wait(comfy.queue(call(save, prefix=prefix, **common, **extra)), timeout=300)
    file = f"{prefix}_{images:05}_.raiiaf [output]"  # the batch's last file names it
    comfy.wait(comfy.queue(call(reload, file=file, prefix=f"{prefix}_re", **common)), timeout=300)
    for i in range(1, images + 1):
        original = pixels(comfy.output_dir / f"{prefix}_{i:05}_.png")
        again = pixels(comfy.output_dir / f"{prefix}_re_{i:05}_.png")
        assert np.array_equal(again, original), f"{reload}: image {i} differs"


def test_loader_outputs_are_typed_like_ksamplers_inputs(comfy):
    """What prompt validation compares: the loaders' sampler_name and scheduler outputs
    carry KSampler's own option lists as their types, on every ComfyUI version."""
    ksampler = comfy.object_info("KSampler")["KSampler"]["input"]["required"]
    for node in ("RaiiafLoad", "RaiiafLoadBatch"):
        info = comfy.object_info(node)[node]
        types = dict(zip(info["output_name"], info["output"]))
        for name in ("sampler_name", "scheduler"):
            spec = ksampler[name]  # [options, {...}], or ["COMBO", {"options": ...}]
            options = spec[0] if isinstance(spec[0], list) else spec[1]["options"]
            assert types[name] == options, (node, name)
