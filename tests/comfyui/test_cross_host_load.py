"""The ComfyUI loader on a file of the diffusers host (issue 22): the committed
tests/data/hosts/diffusers-txt2img.raiiaf (written by raiiaf_rs.diffusers.generate) gives
its noise, its settings in ComfyUI's names and a summary that says why it is not exact
(in-process), and the real server shows it and regenerates from it."""

from __future__ import annotations

import shutil
import sys
import urllib.parse
from pathlib import Path

import pytest
import raiiaf_rs
import torch
from PIL import Image
from raiiaf_rs import replay

ROOT = Path(__file__).resolve().parents[2]
FILE = ROOT / "tests" / "data" / "hosts" / "diffusers-txt2img.raiiaf"


def loader():
    """The pack's loader module (comfy_nodes/load.py), imported from the repository."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from comfy_nodes import load

    return load


def outputs(art, name: str, summary: str) -> tuple:
    """What "Load .raiiaf" outputs for the file read as ``art`` (its ``name``), its summary
    given as ``summary``."""
    load = loader()
    stored = load.stored_from(art, name)
    return load.outputs(stored, torch.zeros(1, 64, 64, 3), summary).result


def test_the_loader_outputs_a_diffusers_files_noise_and_settings(comfy_sample):
    art = replay.read(FILE, FILE.name, as_torch=True)
    out = outputs(art, FILE.name, loader()._summary(art, FILE.name))
    _, noise, latent, _, seed, steps, cfg, sampler, scheduler, positive, _, text = out
    want = raiiaf_rs.read(FILE).latents["initial_noise"]
    got = noise.generate_noise(latent)
    assert got.numpy().tobytes() == want.tobytes()
    assert latent["samples"].shape == got.shape == (1, 4, 32, 32)
    assert (seed, steps, cfg, positive) == (3, 3, 7.5, "a cat")
    assert (sampler, scheduler) == ("euler", "normal")  # EulerDiscreteScheduler
    assert "NOT EXACT IN COMFYUI (written by diffusers" in text
    assert "sampler implementation" in text and "prompt weighting" in text


@pytest.mark.parametrize(
    ("scheduler", "sampler", "note"),
    [
        # Not the loader's fallback ("euler" for any name it does not know): DPM++ 2M.
        ("DPMSolverMultistepScheduler", "dpmpp_2m", None),
        # A sampler ComfyUI lacks: a placeholder, which the summary names.
        (
            "PNDMScheduler",
            "euler",
            "NOT EXACT: the file's sampler 'PNDMScheduler' has no ComfyUI counterpart; "
            "the sampler output is 'euler', set it yourself",
        ),
    ],
)
def test_a_diffusers_scheduler_class_maps_to_comfyuis_sampler(
    comfy_sample, tmp_path, scheduler, sampler, note
):
    art = raiiaf_rs.read(FILE)
    meta = dict(art.metadata)
    settings = {**meta["passes"][0]["settings"], "sampler": scheduler}
    meta["passes"] = [{**meta["passes"][0], "settings": settings}]
    path = tmp_path / f"{scheduler}.raiiaf"
    raiiaf_rs.write(path, dict(art.latents), metadata=meta)
    out = outputs(replay.read(path, path.name, as_torch=True), path.name, "s")
    assert out[7] == sampler
    assert out[-1] == ("s" if note is None else f"s\n{note}")


def test_the_server_shows_and_regenerates_a_diffusers_file(comfy):
    sys.path.insert(0, str(ROOT / "workflows"))
    import graphs

    name = "from-diffusers.raiiaf"
    shutil.copy(FILE, Path(comfy.base_dir) / "input" / name)
    summary = comfy.get_json(f"/raiiaf/inspect?file={urllib.parse.quote(name)}")["summary"]
    assert summary["passes"][0].startswith("pass 0 txt2img: initial_noise [1, 4, 32, 32] seed 3")
    reasons = "\n".join(summary["not_exact_here"])
    assert "prompt weighting" in reasons and "sampler implementation" in reasons, reasons
    graph = graphs.to_api(graphs.reload_ksampler(file=name, ckpt=comfy.ckpt, prefix="xd"))
    comfy.wait(comfy.queue(graph), timeout=300)
    # The file's 32x32 latent (a 2x VAE made it) decoded by this model's 8x VAE.
    assert Image.open(comfy.output_dir / "xd_00001_.png").size == (256, 256)
