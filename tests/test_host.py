"""raiiaf_rs.host, the layer the ComfyUI nodes and the A1111 extension share: the
environment a host records, the sidecar write that never overwrites, the normalised
metadata, the drift text."""

from __future__ import annotations

import getpass
import hashlib
import importlib.util
import json
import os
import re
import socket
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import raiiaf_rs
from conftest import noise, repo_on_path
from raiiaf_rs import host

ROOT = Path(__file__).resolve().parents[1]
HOST = host.Host("TestHost", "1.2.3", "0123abcd")
REFERENCE_KEYS = {"model_name", "model_version", "date", "prompt", "tags", "generation_settings"}


def _image(tmp_path: Path, png_bytes: bytes, name: str = "cat.png") -> Path:
    path = tmp_path / name
    path.write_bytes(png_bytes)
    return path


def _latents(seed: int = 0) -> dict:
    return {"initial_noise": noise((1, 4, 4, 6), seed)}


# --- environment -------------------------------------------------------------------------
def test_environment_records_what_the_host_passes():
    env = host.capture_environment(
        HOST, attention="sdpa", dtypes={"unet": "float16"}, noise_device="cpu"
    )
    comps = {c["component_id"]: c["cononical_str"] for c in env["components"]}
    assert comps["host"] == "name=host;app=TestHost;commit=0123abcd;version=1.2.3"
    assert comps["attention"] == "name=attention;backend=sdpa"
    assert comps["dtype"] == "name=dtype;unet=float16"
    assert comps["noise_device"] == "name=noise_device;device=cpu"
    for wanted in ("python", "os", "cpu", "ram"):
        assert wanted in comps
    # Unknown facts are left out, not recorded as empty.
    bare = host.capture_environment(host.Host("Bare"))
    ids = {c["component_id"] for c in bare["components"]}
    assert "attention" not in ids and "dtype" not in ids and "noise_device" not in ids
    bare_host = next(c for c in bare["components"] if c["component_id"] == "host")
    assert bare_host["cononical_str"] == "name=host;app=Bare"


def test_environment_names_no_user_host_or_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = host.capture_environment(HOST, attention="sdpa", noise_device="cuda")
    text = json.dumps(env)
    assert "name=os;" in text  # the machine was really described
    paths = {str(Path.home()), os.getcwd(), str(tmp_path), sys.prefix, sys.executable, str(ROOT)}
    for secret in paths:
        assert secret not in text, secret
    for name in {getpass.getuser(), socket.gethostname()}:
        # Whole words only: a short user or host name may be a piece of a version string.
        assert not re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w.-])", text), name


# --- writing -----------------------------------------------------------------------------
def test_sidecar_beside_the_image_records_it(tmp_path, png_bytes):
    image = _image(tmp_path, png_bytes)
    meta = host.build_metadata(HOST, prompt="a cat")
    path = host.write_sidecar(image, _latents(), metadata=meta, environment=None)
    assert path == str(tmp_path / "cat.raiiaf")
    art = raiiaf_rs.read(path)
    assert art.image == png_bytes
    assert art.metadata["image_file"] == {
        "name": "cat.png",
        "sha256": hashlib.sha256(png_bytes).hexdigest(),
    }
    assert art.metadata["prompt"] == "a cat"
    assert art.environment is None
    assert (art.latents["initial_noise"] == _latents()["initial_noise"]).all()


def test_an_existing_sidecar_is_never_overwritten(tmp_path, png_bytes):
    image = _image(tmp_path, png_bytes)
    (tmp_path / "cat.raiiaf").write_bytes(b"someone else's")
    (tmp_path / "cat-1.raiiaf").write_bytes(b"another one")
    meta = host.build_metadata(HOST)
    first = host.write_sidecar(image, _latents(1), metadata=meta, environment=None)
    second = host.write_sidecar(image, _latents(2), metadata=meta, environment=None)
    assert (first, second) == (str(tmp_path / "cat-2.raiiaf"), str(tmp_path / "cat-3.raiiaf"))
    assert (tmp_path / "cat.raiiaf").read_bytes() == b"someone else's"
    assert (tmp_path / "cat-1.raiiaf").read_bytes() == b"another one"
    for path, seed in ((first, 1), (second, 2)):
        art = raiiaf_rs.read(path)
        assert art.metadata["image_file"]["name"] == "cat.png"
        assert (art.latents["initial_noise"] == _latents(seed)["initial_noise"]).all()
    # No temporary files are left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cat-1.raiiaf",
        "cat-2.raiiaf",
        "cat-3.raiiaf",
        "cat.png",
        "cat.raiiaf",
    ]


def test_unnumbered_write_refuses_a_taken_name(tmp_path, png_bytes):
    image = _image(tmp_path, png_bytes)
    (tmp_path / "cat.raiiaf").write_bytes(b"taken")
    with pytest.raises(raiiaf_rs.TargetExistsError):
        host.write_sidecar(image, _latents(), metadata={}, environment=None, numbered=False)
    assert (tmp_path / "cat.raiiaf").read_bytes() == b"taken"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat.png", "cat.raiiaf"]


def test_racing_writers_each_get_their_own_name(tmp_path, png_bytes):
    image = _image(tmp_path, png_bytes)
    written: list[str] = []
    errors: list[BaseException] = []

    def write(seed: int) -> None:
        try:
            meta = host.build_metadata(HOST, prompt=f"writer {seed}")
            written.append(
                host.write_sidecar(image, _latents(seed), metadata=meta, environment=None)
            )
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(written)) == 6
    assert {raiiaf_rs.read(p).metadata["prompt"] for p in written} == {
        f"writer {i}" for i in range(6)
    }


def test_image_bytes_given_and_not_embedded(tmp_path, png_bytes):
    jpeg = _image(tmp_path, b"\xff\xd8\xff not a png", "photo.jpg")
    path = host.write_sidecar(jpeg, _latents(), metadata={}, environment=None)
    art = raiiaf_rs.read(path)
    assert art.image is None  # the format stores PNG only
    assert art.metadata["image_file"]["sha256"] == hashlib.sha256(jpeg.read_bytes()).hexdigest()
    # Bytes given: the file need not exist yet; embed_image=False stores no image.
    ghost = tmp_path / "sub" / "next.png"
    ghost.parent.mkdir()
    path = host.write_sidecar(
        ghost, _latents(), metadata={}, environment=None, image_bytes=png_bytes, embed_image=False
    )
    art = raiiaf_rs.read(path)
    assert path == str(tmp_path / "sub" / "next.raiiaf") and art.image is None
    assert art.metadata["image_file"]["name"] == "next.png"


def test_write_new_file_never_overwrites(tmp_path):
    target = tmp_path / "a.png"
    host.write_new_file(target, b"one")
    with pytest.raises(FileExistsError):
        host.write_new_file(target, b"two")
    assert target.read_bytes() == b"one"
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]


# --- metadata ----------------------------------------------------------------------------
def _load_file(name: str, path: Path):
    """A module by file path (the ComfyUI pack's package needs ComfyUI to import)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def comfyui_like() -> dict:
    """What the ComfyUI save node passes, from a graph with both LoRA loaders."""
    graph = _load_file("_raiiaf_test_comfy_graph", ROOT / "comfy_nodes" / "graph.py")
    prompt = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd/v15.ckpt"}},
        "10": {
            "class_type": "LoraLoader",
            "inputs": {
                "model": ["4", 0],
                "clip": ["4", 1],
                "lora_name": "style.safetensors",
                "strength_model": ["12", 0],
                "strength_clip": 0.5,
            },
        },
        "11": {
            "class_type": "LoraLoaderModelOnly",
            "inputs": {
                "model": ["10", 0],
                "lora_name": "x/detail.safetensors",
                "strength_model": 1,
            },
        },
        "12": {"class_type": "PrimitiveFloat", "inputs": {"value": 0.8}},
        "3": {"class_type": "KSampler", "inputs": {"model": ["11", 0], "seed": 5}},
    }
    loras = graph.loras(prompt, "3")
    assert loras == [
        {"name": "style.safetensors", "strength_model": 0.8, "strength_clip": 0.5},
        {"name": "x/detail.safetensors", "strength_model": 1.0, "strength_clip": None},
    ]
    return host.build_metadata(
        host.Host("ComfyUI", "0.3.75"),
        prompt="a lighthouse",
        negative_prompt="blurry",
        model_name="v15.ckpt",
        tags=["comfyui"],
        generation=host.Generation(5, 20, "euler", 7.0, "normal"),
        denoise=1.0,
        width=512,
        height=768,
        batch_index=1,
        batch_size=2,
        batch_id="ab" * 16,
        models=[host.model_entry("checkpoint", "sd/v15.ckpt", "f" * 64, input="ckpt_name")],
        loras=[host.lora_entry(sha256=None, **lo) for lo in loras],
        extra={"sigmas": [1.0, 0.0], "comfyui": {"version": "0.3.75"}},
    )


def a1111_like() -> dict:
    """What the A1111 extension's builder makes of a (webui-less) processing object."""
    with repo_on_path():
        from lib_raiiaf import run_state, sidecar
    p = SimpleNamespace(
        all_seeds=[7, 8],
        all_subseeds=[0, 0],
        iteration=0,
        batch_size=2,
        n_iter=1,
        width=512,
        height=768,
        steps=20,
        sampler_name="Euler a",
        scheduler="Karras",
        cfg_scale=6.5,
        all_prompts=["a cat", "a dog <lora:style:0.8> <lora:detail:te=0.25:unet=1.5>"],
        all_negative_prompts=["", "blurry"],
        sd_model_name="v15",
        sd_model_hash="abcdef0123",
        sd_vae_name="vae-ft",
        extra_generation_params={},
    )
    run = run_state.Run(options=run_state.Options(enabled=True))
    import torch

    run.noise[("first", 1)] = torch.from_numpy(noise((4, 8, 8)))
    infotext = 'a dog\nSteps: 20, Seed: 8, Lora hashes: "style: 0123456789ab, detail: ba98"'
    latents, meta = sidecar.build(p, run, 1, infotext, (1024, 1536))
    assert list(latents) == ["initial_noise"]
    assert meta["loras"] == [
        {
            "name": "style",
            "sha256": None,
            "strength_model": 0.8,
            "strength_clip": 0.8,
            "short_hash": "0123456789ab",
        },
        {
            "name": "detail",
            "sha256": None,
            "strength_model": 1.5,
            "strength_clip": 0.25,
            "short_hash": "ba98",
        },
    ]
    assert meta["models"] == [
        {"role": "checkpoint", "name": "v15", "sha256": None, "short_hash": "abcdef0123"},
        {"role": "vae", "name": "vae-ft", "sha256": None},
    ]
    assert (meta["width"], meta["height"]) == (1024, 1536)  # the saved image's size
    assert (meta["batch_index"], meta["batch_size"]) == (1, 2)
    assert meta["generation_settings"] == {
        "seed": 8,
        "steps": 20,
        "sampler": "Euler a",
        "scheduler": "Karras",
        "cfg_scale": 6.5,
    }
    assert meta["prompt"].startswith("a dog") and meta["negative_prompt"] == "blurry"
    assert meta["a1111"]["seed"] == 8 and meta["infotext"] == infotext
    (first,) = meta["passes"]  # the pass schema (FORMAT.md §4.7), as every host writes it
    assert (first["order"], first["role"], first["noise"], first["seed"]) == (
        0,
        "txt2img",
        "initial_noise",
        8,
    )
    assert first["settings"] == {
        "sampler": "Euler a",
        "scheduler": "Karras",
        "steps": 20,
        "cfg": 6.5,
        "denoise": 1.0,
    }
    assert (
        first["source"]["host"] == "webui"
        and first["exact"]
        and first["noise_shape"]
        == [
            1,
            4,
            8,
            8,
        ]
    )
    return meta


@pytest.mark.parametrize("make", [comfyui_like, a1111_like])
def test_every_host_writes_the_normalised_keys(make, tmp_path, png_bytes):
    meta = make()
    image = _image(tmp_path, png_bytes)
    art = raiiaf_rs.read(host.write_sidecar(image, _latents(), metadata=meta, environment=None))
    got = art.metadata
    own = (
        {"comfyui", "sigmas"}
        if "comfyui" in got
        else {"a1111", "infotext", "infotext_fields", "passes"}
    )
    keys = set(host.NORMALISED_KEYS) - ({"batch_id"} if "a1111" in got else set())
    assert set(got) == keys | REFERENCE_KEYS | own
    assert set(got["generation_settings"]) == {"seed", "steps", "sampler", "scheduler", "cfg_scale"}
    assert isinstance(got["generation_settings"]["seed"], int)
    assert isinstance(got["generation_settings"]["cfg_scale"], float)
    for m in got["models"]:
        assert {"role", "name", "sha256"} <= set(m) and "/" not in m["name"]
    for lo in got["loras"]:
        assert {"name", "sha256", "strength_model", "strength_clip"} <= set(lo)
        assert "/" not in lo["name"]
    assert set(got["host"]) == {"app", "version"}
    assert got["image_file"]["name"] == "cat.png"
    assert isinstance(got["width"], int) and isinstance(got["height"], int)


def test_metadata_defaults_and_refusals():
    meta = host.build_metadata(HOST)
    assert "generation_settings" not in meta and "batch_id" not in meta
    assert meta["host"] == {"app": "TestHost", "version": "1.2.3"}
    assert (meta["models"], meta["loras"], meta["image_file"]) == ([], [], None)
    assert (meta["batch_index"], meta["batch_size"]) == (0, 1)
    # A setting that is not a number is unknown, not an error (a save must not fail on it).
    odd = host.build_metadata(HOST, denoise="0.5", width=float("nan"), height=512.0)
    assert (odd["denoise"], odd["width"], odd["height"]) == (None, None, 512)
    with pytest.raises(ValueError, match="normalised keys"):
        host.build_metadata(HOST, extra={"prompt": "again"})
    with pytest.raises(ValueError, match="needs"):
        host.build_metadata(HOST, models=[{"name": "x"}])
    entry = host.model_entry("vae", "C:\\models\\vae\\kl.safetensors", "")
    assert entry == {"role": "vae", "name": "kl.safetensors", "sha256": None}


# --- drift -------------------------------------------------------------------------------
def _stored(now: dict, changes: dict[str, str | None]) -> dict:
    """``now`` with components replaced (None: dropped)."""
    out = []
    for c in now["components"]:
        cid = c["component_id"]
        if cid in changes and changes[cid] is None:
            continue
        text = changes.get(cid, c["cononical_str"])
        out.append((cid, text))
    return raiiaf_rs.environment_document(out)


def test_drift_pixel_changes_first_and_unknowns_left_out():
    now = host.capture_environment(HOST, attention="sdpa", dtypes={"unet": "float16"})
    stored = _stored(
        now,
        {"ram": "name=ram;total_gb=1.0", "attention": "name=attention;backend=xformers"},
    )
    drifts = host.environment_drift(stored, now)
    assert [d.component for d in drifts] == ["attention", "ram"]  # pixels first
    text = host.drift_summary(drifts)
    assert text.splitlines() == [
        "environment drift [CAN CHANGE PIXELS] attention: name=attention;backend=xformers"
        " -> name=attention;backend=sdpa",
        "environment drift [harmless] ram: name=ram;total_gb=1.0 -> " + _comp(now, "ram"),
    ]
    assert host.drift_summary(drifts, pixels_only=True) == text.splitlines()[0]
    # A component missing now is drift, unless the host cannot know it yet.
    without_dtype = _stored(now, {"dtype": None})
    missing = host.environment_drift(now, without_dtype)
    assert [(d.component, d.kind) for d in missing] == [("dtype", "missing_now")]
    assert host.environment_drift(now, without_dtype, unknown_now=("dtype",)) == []
    # What the file did not record is no drift.
    assert host.environment_drift(without_dtype, now) == []


def test_drift_summary_when_nothing_differs_or_nothing_was_recorded(tmp_path):
    now = host.capture_environment(HOST)
    assert host.drift_summary(host.environment_drift(now, now)) == (
        "environment: matches this machine"
    )
    assert host.drift_summary([], recorded=False) == "environment: not recorded"
    assert host.drift_summary([], recorded=False, pixels_only=True) == ""
    harmless = host.environment_drift(_stored(now, {"ram": "name=ram;total_gb=1.0"}), now)
    assert harmless and host.drift_summary(harmless, pixels_only=True) == ""
    # A file without an environment has no drift.
    path = tmp_path / "bare.raiiaf"
    raiiaf_rs.write(path, _latents(), environment=None)
    assert host.environment_drift(raiiaf_rs.read(path), now) == []


def _comp(env: dict, cid: str) -> str:
    return next(c["cononical_str"] for c in env["components"] if c["component_id"] == cid)


def test_json_safe_gives_strict_json_for_the_servers():
    import datetime
    import decimal
    import json

    value = {
        "seed": decimal.Decimal(2**64 - 1),
        "cfg": float("nan"),
        "x": [float("inf"), (1.5, -float("inf"))],
        "day": datetime.date(2026, 12, 6),
    }
    safe = host.json_safe(value)
    want = {"seed": str(2**64 - 1), "cfg": None, "x": [None, [1.5, None]], "day": "2026-12-06"}
    assert safe == want
    json.dumps(safe, allow_nan=False)  # strict JSON: no NaN, no Infinity
