"""The read/replay layer every host uses (raiiaf_rs.replay): one size policy, one set of
read messages, the shape hint, passes of every file kind (the committed vectors of the
reference package included), the typed differences and the cross-host reasons."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import raiiaf_rs
from raiiaf_rs import replay
from raiiaf_rs.passes import Pass

DATA = Path(__file__).parent / "data"
VECTORS = sorted((DATA / "vectors").glob("*/*.raiiaf")) + sorted(
    (DATA / "vectors").glob("*/*.gen5")
)


def _file(tmp_path: Path, metadata: dict, latents: dict | None = None) -> Path:
    path = tmp_path / "f.raiiaf"
    noise = np.ones((1, 4, 8, 8), np.float32)
    raiiaf_rs.write(path, latents or {"initial_noise": noise}, metadata=metadata)
    return path


# --- size policy and messages ---------------------------------------------------------------
def test_one_size_policy_and_its_override(monkeypatch):
    monkeypatch.delenv(replay.ENV_MAX_DECODED_BYTES, raising=False)
    assert replay.max_decoded_bytes() == replay.HOST_MAX_DECODED_BYTES == 256 << 20
    monkeypatch.setenv(replay.ENV_MAX_DECODED_BYTES, "1G")
    assert replay.max_decoded_bytes() is None  # the library reads the variable itself


def test_too_large_names_the_limit_and_the_override(tmp_path):
    path = _file(tmp_path, {"prompt": "p"})
    with pytest.raises(replay.ReadError) as e:
        replay.read(path, "mine.raiiaf", limit=100)
    msg = str(e.value)
    assert msg.startswith("mine.raiiaf: too large: it would decode to ")
    assert "RAIIAF_MAX_DECODED_BYTES" in msg and str(tmp_path) not in msg


def test_damaged_junk_missing_and_paths_hidden(tmp_path):
    path = _file(tmp_path, {"prompt": "p"})
    data = bytearray(path.read_bytes())
    data[-40] ^= 0xFF  # inside the last chunk: its SHA-256 fails
    (tmp_path / "bad.raiiaf").write_bytes(bytes(data))
    with pytest.raises(replay.ReadError) as e:
        replay.read(tmp_path / "bad.raiiaf", "bad.raiiaf", hide={str(tmp_path): "<dir>"})
    assert "altered or damaged" in str(e.value) or "not a readable" in str(e.value)
    assert str(tmp_path) not in str(e.value)
    with pytest.raises(replay.ReadError, match=r"^junk: not a readable \.raiiaf file \("):
        replay.read(b"not a raiiaf file", "junk")
    with pytest.raises(replay.ReadError, match=r"^gone: could not be read \("):
        replay.read(tmp_path / "nope.raiiaf", "gone")


def test_hash_mismatch_message():
    err = replay.read_error(
        raiiaf_rs.HashMismatchError("chunk 2 /srv/x/f.raiiaf"), "f", {"/srv/x/": ""}
    )
    assert (
        str(err)
        == "f: the file was altered or damaged: it fails its integrity check (chunk 2 f.raiiaf)"
    )
    assert err.name == "f" and err.reason.startswith("the file was altered")


def test_bytes_and_paths_read_alike(tmp_path):
    path = _file(tmp_path, {"prompt": "p"})
    a = replay.read(path, "a")
    b = replay.read(path.read_bytes(), "b")
    assert np.array_equal(a.latents["initial_noise"], b.latents["initial_noise"])


# --- shapes -------------------------------------------------------------------------------
def test_shape_hint():
    assert (
        replay.shape_text([1, 4, 64, 96]) == "[1, 4, 64, 96] (about 768x512 pixels for an 8x VAE)"
    )
    assert replay.shape_text((4, 8, 8)) == "[4, 8, 8] (about 64x64 pixels for an 8x VAE)"
    assert replay.shape_text([7]) == "[7]"
    msg = replay.shape_mismatch("f.raiiaf", [1, 4, 8, 8], [1, 4, 16, 8], "the latent", "set it")
    assert msg == (
        "f.raiiaf: the stored noise has shape [1, 4, 8, 8] (about 64x64 pixels for an 8x VAE) "
        "but the latent needs [1, 4, 16, 8] (about 64x128 pixels for an 8x VAE); set it"
    )


# --- passes of every file kind ----------------------------------------------------------------
@pytest.mark.parametrize("vector", VECTORS, ids=lambda p: p.name)
def test_committed_vectors_have_one_pass(vector):
    art = replay.read(vector, vector.name)
    found = replay.passes(art)
    assert [(p.order, p.role, p.noise, p.host) for p in found] == [
        (0, "txt2img", "initial_noise", None)
    ]
    assert found[0].noise_shape == tuple(art.latents["initial_noise"].shape)
    gen = art.metadata["generation_settings"]
    settings = replay.first_settings(art.metadata, found)
    assert settings["seed"] == gen["seed"] and settings["steps"] == gen["steps"]


@pytest.mark.parametrize("case", sorted((DATA / "passes").glob("*.json")), ids=lambda p: p.stem)
def test_fixture_kinds_load_from_real_files(case, tmp_path):
    """Each rule's case written as a real file and read back through the layer."""
    c = json.loads(case.read_text())
    latents = {
        k: np.zeros(v["shape"], dtype=np.float32 if v["dtype"] == "float32" else np.float16)
        for k, v in c["latents"].items()
    }
    path = tmp_path / "case.raiiaf"
    raiiaf_rs.write(path, latents, metadata=c["metadata"])
    art = replay.read(path, "case")
    assert [p.to_json() for p in replay.passes(art)] == c["passes"]


def test_malformed_passes_is_a_read_error(tmp_path):
    art = replay.read(_file(tmp_path, {"prompt": "p", "passes": {"order": 0}}), "f")
    with pytest.raises(
        replay.ReadError, match="malformed passes: metadata 'passes' must be a list"
    ):
        replay.passes(art)


# --- differences ------------------------------------------------------------------------------
def test_compare_is_typed_and_numbers_compare_as_numbers():
    diffs = replay.compare(
        {"steps": 20, "cfg": 7, "sampler": "euler", "eta": None},
        {"steps": 20.0, "cfg": 7.5, "sampler": "euler", "eta": 1.0},
        labels={"cfg": "CFG scale"},
    )
    assert diffs == [replay.Difference("cfg", "setting", 7, 7.5, label="CFG scale")]
    assert diffs[0].text("this webui") == "CFG scale: file 7, this webui 7.5"
    assert replay.compare({"a": True}, {"a": 1}) != []  # a bool is not the number 1


def test_environment_differences_keep_affects_pixels():
    from raiiaf_rs.environment import Drift

    d = replay.environment_differences([Drift("torch", "changed", "2.1", "2.2", True)])
    assert d == [replay.Difference("torch", "environment", "2.1", "2.2", affects_pixels=True)]


def _webui_passes(sampler="Euler"):
    return [
        Pass(
            0,
            "txt2img",
            noise="initial_noise",
            seed=1,
            settings={"sampler": sampler},
            source={"host": "webui", "pass": "first"},
        ),
        Pass(1, "hires", noise="hires_noise", source={"host": "webui", "pass": "hires"}),
    ]


def test_cross_host_reasons_are_listed_not_pretended():
    found = _webui_passes("Euler a")
    diffs = replay.cross_host_differences(found, {"prompt": "a (cat:1.2)"}, "comfyui")
    keys = [d.key for d in diffs]
    assert all(d.kind == "host" and d.stored == "webui" and d.current == "comfyui" for d in diffs)
    assert keys[0] == "prompt weighting"
    assert "pass 0 (txt2img) sampler implementation" in keys
    assert "pass 0 (txt2img) scheduler" in keys  # no sigmas stored
    assert "pass 0 (txt2img) noise device" in keys  # Euler a draws per step
    assert "pass 1 (hires) input" in keys  # the upscaled first pass is not stored
    euler = replay.cross_host_differences(_webui_passes("Euler"), {}, "comfyui")
    assert "pass 0 (txt2img) noise device" not in [d.key for d in euler]
    # a file of this host, or of an unknown writer, has no host differences
    assert replay.cross_host_differences(found, {"prompt": "x"}, "webui") == []
    assert replay.cross_host_differences([Pass(0, "txt2img")], {"prompt": "x"}, "webui") == []


def _comfy(classes, **kw):
    graph = {str(i): {"class_type": c, "inputs": {}} for i, c in enumerate(classes)}
    p = Pass(
        0,
        "txt2img",
        noise="initial_noise",
        source={"host": "comfyui", "class_type": "KSampler"},
        **kw,
    )
    return [p], {"comfyui": {"prompt": graph}}


def test_plain_graph_refusal():
    plain = [
        "CheckpointLoaderSimple",
        "CLIPTextEncode",
        "EmptyLatentImage",
        "KSampler",
        "VAEDecode",
        "RaiiafSave",
    ]
    assert replay.plain_graph_refusal(*_comfy(plain)) is None
    why = replay.plain_graph_refusal(*_comfy([*plain, "ControlNetApply"]))
    assert "not a plain txt2img/img2img/hires graph" in why and "ControlNetApply" in why
    assert "pre-noised" in replay.plain_graph_refusal(*_comfy(plain, adds_noise=False))
    three = [
        Pass(i, "txt2img" if i == 0 else "hires", noise="n", source={"host": "comfyui"})
        for i in range(3)
    ]
    assert "3 sampler passes" in replay.plain_graph_refusal(three, {})
    assert replay.plain_graph_refusal(_webui_passes(), {}) is None  # not a ComfyUI file


# --- the webui's side of cross-host replay (lib_raiiaf; the lib_replay fixture: conftest) ---
def _comfy_file(tmp_path: Path, sampler_class: str = "KSampler") -> bytes:
    from raiiaf_rs.passes import to_json

    graph = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {}},
        "5": {"class_type": sampler_class, "inputs": {}},
    }
    first = Pass(
        0,
        "txt2img",
        noise="initial_noise",
        seed=5,
        noise_shape=(1, 4, 8, 8),
        settings={"sampler": "euler_ancestral", "scheduler": "karras", "steps": 4, "cfg": 7.0},
        source={"host": "comfyui", "node_id": "5", "class_type": sampler_class},
    )
    path = _file(
        tmp_path,
        {
            "prompt": "a cat",
            "width": 64,
            "height": 64,
            "passes": to_json([first]),
            "generation_settings": {"seed": 5, "steps": 4, "sampler": "euler_ancestral"},
            "comfyui": {"prompt": graph},
        },
    )
    return path.read_bytes()


def test_a_comfyui_file_is_read_by_the_webui_in_its_names(lib_replay, tmp_path):
    src = lib_replay._decode("c.raiiaf", _comfy_file(tmp_path))
    assert src.noise_name("first") == "initial_noise" and src.noise_name("hires") is None
    assert src.noise("first").shape == (4, 8, 8)
    a = src.a1111
    assert (a["mode"], a["seed"], a["steps"], a["cfg_scale"]) == ("txt2img", 5, 4, 7.0)
    assert (a["sampler"], a["scheduler"], a["width"]) == ("Euler a", "Karras", 64)
    reasons = [d.key for d in src.not_exact_here()]
    assert "prompt weighting" in reasons and "pass 0 (txt2img) noise device" in reasons


def test_a_comfyui_graph_the_webui_cannot_run_is_refused(lib_replay, tmp_path):
    with pytest.raises(lib_replay.ReplayError) as e:
        lib_replay._decode("c.raiiaf", _comfy_file(tmp_path, "SamplerCustomAdvanced"))
    assert str(e.value).startswith("c.raiiaf cannot be replayed in the webui: its ComfyUI graph")
    assert "SamplerCustomAdvanced" in str(e.value)


def test_the_webui_reads_under_the_host_limit(lib_replay, tmp_path, monkeypatch):
    monkeypatch.setattr(replay, "HOST_MAX_DECODED_BYTES", 64)
    with pytest.raises(lib_replay.ReplayError, match=r"^c\.raiiaf: too large: it would decode"):
        lib_replay._decode("c.raiiaf", _comfy_file(tmp_path))
