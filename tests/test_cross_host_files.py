"""Files of every host load in every other host (issue 22): the committed files of
tests/data/hosts (README.md there: each written by the real host; tests/diffusers checks the
diffusers one against the capture), read through the shared layer, and the diffusers file
read by the webui's replay. The ComfyUI loader's side: tests/comfyui/test_cross_host_load.py;
diffusers replaying the others: tests/diffusers/test_cross_host.py."""

from __future__ import annotations

import pytest
from conftest import HOSTS
from raiiaf_rs import replay

FILES = {
    "comfyui-0.3.75-txt2img.raiiaf": ("comfyui", "euler"),
    "a1111-1.10.1-txt2img.raiiaf": ("webui", "Euler"),
    "diffusers-txt2img.raiiaf": ("diffusers", "EulerDiscreteScheduler"),
}


@pytest.mark.parametrize("name", sorted(FILES))
def test_each_hosts_file_reads_with_its_host_and_roles(name):
    art = replay.read(HOSTS / name, name)
    [p] = replay.passes(art)
    host, sampler = FILES[name]
    assert (p.host, p.role, p.noise, p.adds_noise) == (host, "txt2img", "initial_noise", True)
    assert p.settings["sampler"] == sampler
    assert replay.comfyui_sampler(sampler) == "euler"
    assert tuple(art.latents["initial_noise"].shape) == tuple(p.noise_shape)
    others = {"comfyui", "webui", "diffusers"} - {host}
    for here in others:
        reasons = replay.cross_host_differences([p], art.metadata, here)
        assert reasons and all(d.kind == "host" and d.stored == host for d in reasons)
    assert replay.cross_host_differences([p], art.metadata, host) == []


def test_diffusers_scheduler_classes_count_as_per_step_samplers():
    """An ancestral or SDE diffusers scheduler draws at every step: a reason of its own."""
    p = replay.passes(replay.read(HOSTS / "diffusers-txt2img.raiiaf", "d"))[0]
    for cls, per_step in (
        ("EulerDiscreteScheduler", False),
        ("EulerAncestralDiscreteScheduler", True),
        ("DPMSolverSDEScheduler", True),
    ):
        q = type(p)(**{**p.__dict__, "settings": {**p.settings, "sampler": cls}})
        keys = [d.key for d in replay.cross_host_differences([q], {}, "webui")]
        assert ("pass 0 (txt2img) noise device" in keys) is per_step, cls


def test_the_webui_reads_a_diffusers_file_in_its_names(lib_replay):
    name = "diffusers-txt2img.raiiaf"
    src = lib_replay._decode(name, (HOSTS / name).read_bytes())
    assert src.noise("first").shape == (4, 32, 32)
    a = src.a1111
    assert (a["mode"], a["seed"], a["steps"], a["sampler"]) == ("txt2img", 3, 3, "Euler")
    assert (a["width"], a["height"]) == (64, 64)
    ui = lib_replay.stored_settings(src)
    assert (ui["sampler"], ui["steps"], ui["prompt"]) == ("Euler", 3, "a cat")
    reasons = [d.key for d in src.not_exact_here()]
    assert "prompt weighting" in reasons and "pass 0 (txt2img) sampler implementation" in reasons
