"""Files across hosts, on the diffusers side (issue 22): the diffusers vector of
tests/data/hosts is what the real capture writes (RAIIAF_WRITE_VECTORS=1 rewrites it), and
``replay`` runs the ComfyUI and webui vectors from their stored noise and says why that is
not exact."""

from __future__ import annotations

import functools
import inspect
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import raiiaf_rs
from raiiaf_rs import diffusers as rd
from raiiaf_rs import replay as raiiaf_replay
from tiny_pipes import call_args, gens, pipeline

HOSTS = Path(__file__).resolve().parent.parent / "data" / "hosts"
VECTOR = HOSTS / "diffusers-txt2img.raiiaf"
OTHERS = ["comfyui-0.3.75-txt2img.raiiaf", "a1111-1.10.1-txt2img.raiiaf"]


def test_the_diffusers_vector_is_what_the_capture_writes(models, tmp_path):
    pipe = pipeline(models, "sd", "txt2img", "euler")
    run = rd.generate(pipe, tmp_path / "v.png", generator=gens(3), **call_args("txt2img"))
    made = run.saved[0].sidecar
    if os.environ.get("RAIIAF_WRITE_VECTORS") == "1":
        shutil.copy(made, VECTOR)
    new, old = raiiaf_rs.read(made), raiiaf_rs.read(VECTOR)
    assert np.array_equal(old.latents["initial_noise"], new.latents["initial_noise"])
    [p_old], [p_new] = raiiaf_replay.passes(old), raiiaf_replay.passes(new)
    assert (p_old.host, p_old.role, p_old.seed) == ("diffusers", "txt2img", 3)
    assert p_old.settings == p_new.settings
    assert p_old.settings["sampler"] == "EulerDiscreteScheduler"


def _recording(pipe, monkeypatch) -> list:
    """Record the latents the pipeline's ``prepare_latents`` gets and the scheduler then."""
    got = []
    orig = pipe.prepare_latents

    @functools.wraps(orig)  # its signature: the replay tells txt2img from img2img by it
    def prepare(*args, **kwargs):
        bound = inspect.signature(orig).bind(*args, **kwargs).arguments
        got.append((bound["latents"].clone(), type(pipe.scheduler).__name__))
        return orig(*args, **kwargs)

    monkeypatch.setattr(pipe, "prepare_latents", prepare)
    return got


@pytest.mark.parametrize("name", OTHERS)
def test_a_file_of_another_host_runs_from_its_stored_noise(models, monkeypatch, name):
    path = HOSTS / name
    art = raiiaf_rs.read(path)
    [stored] = raiiaf_replay.passes(art)
    pipe = pipeline(models, "sd", "txt2img", "euler_a")
    got = _recording(pipe, monkeypatch)
    # The tiny VAE scales by 2, the files' models by 8: at the stored 64x64 the shapes differ.
    with pytest.raises(ValueError, match=r"\[1, 4, 8, 8\].*\[1, 4, 32, 32\].*height= and width="):
        rd.replay(path, pipe)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = rd.replay(path, pipe, height=16, width=16)
    assert len(again.images) == 1 and again.images[0].size == (16, 16)
    [(latents, scheduler)] = got
    assert latents.numpy().tobytes() == art.latents["initial_noise"].tobytes()
    assert scheduler == "EulerDiscreteScheduler"  # the file's Euler, not the pipeline's
    assert type(pipe.scheduler).__name__ == "EulerAncestralDiscreteScheduler"  # put back
    kinds = {d.kind for d in again.differences}
    assert kinds == {"host", "setting"}
    assert all(isinstance(d, raiiaf_replay.Difference) for d in again.differences)
    texts = [d.text() for d in again.differences]
    assert any("sampler implementation" in t and stored.host in t for t in texts)
    assert any(d.key == "size" and d.stored == (64, 64) for d in again.differences)
    warned = [str(w.message) for w in caught if "raiiaf replay" in str(w.message)]
    assert len(warned) == len(again.differences)


def test_a_sampler_without_a_diffusers_class_is_a_difference(models, tmp_path, monkeypatch):
    """A file whose sampler has no diffusers scheduler runs with the pipeline's own, and
    says so."""
    src = HOSTS / OTHERS[0]
    pipe = pipeline(models, "sd", "txt2img", "euler")
    got = _recording(pipe, monkeypatch)
    art = raiiaf_rs.read(src)
    meta = dict(art.metadata)
    meta["passes"] = [dict(meta["passes"][0], settings={"sampler": "res_multistep"})]
    path = tmp_path / "other.raiiaf"
    raiiaf_rs.write(path, dict(art.latents), metadata=meta)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = rd.replay(path, pipe, height=16, width=16)
    [d] = [d for d in again.differences if d.key == "sampler"]
    assert d.stored == "res_multistep" and "no diffusers scheduler class" in d.text()
    assert got[0][1] == "EulerDiscreteScheduler"


def test_files_a_pipeline_cannot_run_are_refused_clearly(models, tmp_path):
    """A two-pass (hires) file of another host: refused, naming its passes."""
    art = raiiaf_rs.read(HOSTS / OTHERS[1])
    meta = dict(art.metadata)
    first = meta["passes"][0]
    meta["passes"] = [first, {**first, "order": 1, "role": "hires", "noise": "hires_noise"}]
    path = tmp_path / "hires.raiiaf"
    latents = {
        "initial_noise": art.latents["initial_noise"],
        "hires_noise": art.latents["initial_noise"],
    }
    raiiaf_rs.write(path, latents, metadata=meta)
    pipe = pipeline(models, "sd", "txt2img", "euler")
    with pytest.raises(
        ValueError, match=r"by webui with txt2img, hires passes; .*one-pass txt2img"
    ):
        rd.replay(path, pipe, height=16, width=16)
