"""Pass attribution on API-prompt dicts, without a ComfyUI server: captures and recorded
inputs found by signature whatever id the node has now (re-created, pasted, subgraph
ids), the true reason for a missing pass, settings and prompts as they ran (never a
guessed or empty one), and the rows a batch picker takes.

The node pack's modules are loaded as a package without its ``__init__`` (which needs
ComfyUI); graph.py, inputs.py and capture.py import nothing of ComfyUI at module level.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

import pytest
import torch

PACK = Path(__file__).resolve().parents[1] / "comfy_nodes"
NAME = "raiiaf_pack_under_test"


def _module(name: str):
    if NAME not in sys.modules:
        spec = importlib.machinery.ModuleSpec(NAME, None, is_package=True)
        pkg = importlib.util.module_from_spec(spec)
        pkg.__path__ = [str(PACK)]
        sys.modules[NAME] = pkg
    return importlib.import_module(f"{NAME}.{name}")


graph = _module("graph")
inputs = _module("inputs")
capture = _module("capture")
passes = _module("passes")


def txt2img(sampler_id: str = "21", text=("a red cube",)) -> dict:
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "m.safetensors"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": text[0], "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["1", 1]}},
        "4": {
            "class_type": "EmptyLatentImage",
            "inputs": {"width": 64, "height": 64, "batch_size": 1},
        },
        sampler_id: {
            "class_type": "KSampler",
            "inputs": {
                "model": ["1", 0],
                "positive": ["2", 0],
                "negative": ["3", 0],
                "latent_image": ["4", 0],
                "seed": 5,
                "steps": 3,
                "cfg": 7.0,
                "sampler_name": "euler",
                "scheduler": "normal",
                "denoise": 1.0,
            },
        },
        "6": {"class_type": "VAEDecode", "inputs": {"samples": [sampler_id, 0], "vae": ["1", 2]}},
        "7": {"class_type": "RaiiafSaveImage", "inputs": {"images": ["6", 0]}},
    }


def with_string_prompt(g: dict) -> dict:
    g["30"] = {
        "class_type": "StringConcatenate",
        "inputs": {"string_a": "a red cube", "string_b": "on a table", "delimiter": ", "},
    }
    g["2"]["inputs"]["text"] = ["30", 0]
    return g


# --- settings and prompts ------------------------------------------------------------------
def test_literal_settings_and_prompts():
    s = graph.sampler_settings(txt2img(), "21")
    assert (s["seed"], s["steps"], s["cfg"], s["sampler_name"], s["scheduler"]) == (
        5,
        3,
        7.0,
        "euler",
        "normal",
    )
    assert (s["positive_prompt"], s["negative_prompt"]) == ("a red cube", "blurry")
    assert "unknown" not in s


def test_prompt_from_a_string_node_is_unknown_without_a_record_never_empty():
    """The old graph guess stored '' here; now it is unknown, with the node named."""
    s = graph.sampler_settings(with_string_prompt(txt2img()), "21")
    assert "positive_prompt" not in s
    assert "text of node 2 (CLIPTextEncode) came through a link" in s["unknown"]["positive_prompt"]
    assert s["negative_prompt"] == "blurry"


def test_prompt_from_a_string_node_is_the_text_the_encoder_ran_with():
    g = with_string_prompt(txt2img())
    inputs.record(g, "2", {"text": ["a red cube, on a table"], "clip": [object()]})
    s = graph.sampler_settings(g, "21", inputs.getter(g))
    assert s["positive_prompt"] == "a red cube, on a table"
    # Found by signature: the same encoder under another id (pasted, in a subgraph).
    moved = {("40:2" if k == "2" else k): v for k, v in g.items()}
    for node in moved.values():
        for name, v in node["inputs"].items():
            if v == ["2", 0]:
                node["inputs"][name] = ["40:2", 0]
    assert graph.sampler_settings(moved, "21", inputs.getter(moved))["positive_prompt"] == (
        "a red cube, on a table"
    )


def test_list_items_get_their_own_recorded_values():
    g = with_string_prompt(txt2img())
    g["30"]["inputs"]["string_b"] = "list"  # another signature than the test above
    inputs.record(g, "2", {"text": ["one", "two"]})
    assert graph.sampler_settings(g, "21", inputs.getter(g, 1))["positive_prompt"] == "two"
    assert graph.sampler_settings(g, "21", inputs.getter(g, 5))["positive_prompt"] == "two"


def test_linked_seed_is_unknown_without_a_record_and_known_with_one():
    g = txt2img()
    g["31"] = {"class_type": "SomePackSeed", "inputs": {"mode": "random"}}
    g["21"]["inputs"]["seed"] = ["31", 0]
    s = graph.sampler_settings(g, "21")
    assert "seed" not in s and "input seed of node 21" in s["unknown"]["seed"]
    inputs.record(g, "21", {"seed": [991], "steps": [3], "model": [object()]})
    assert graph.sampler_settings(g, "21", inputs.getter(g))["seed"] == 991


def test_combined_conditioning_is_not_one_prompt():
    g = txt2img()
    g["32"] = {"class_type": "CLIPTextEncode", "inputs": {"text": "a ball", "clip": ["1", 1]}}
    g["33"] = {
        "class_type": "ConditioningCombine",
        "inputs": {"conditioning_1": ["2", 0], "conditioning_2": ["32", 0]},
    }
    g["21"]["inputs"]["positive"] = ["33", 0]
    s = graph.sampler_settings(g, "21")
    assert "2 text encoders (nodes 2, 32)" in s["unknown"]["positive_prompt"]


def test_controlnet_advanced_follows_each_side():
    g = txt2img()
    g["34"] = {
        "class_type": "ControlNetApplyAdvanced",
        "inputs": {"positive": ["2", 0], "negative": ["3", 0], "strength": 1.0},
    }
    g["21"]["inputs"]["positive"] = ["34", 0]
    g["21"]["inputs"]["negative"] = ["34", 1]
    s = graph.sampler_settings(g, "21")
    assert (s["positive_prompt"], s["negative_prompt"]) == ("a red cube", "blurry")


def test_sampler_custom_advanced_settings_come_from_its_feeding_nodes():
    g = txt2img()
    del g["21"]
    g.update(
        {
            "40": {"class_type": "RandomNoise", "inputs": {"noise_seed": 77}},
            "41": {
                "class_type": "CFGGuider",
                "inputs": {
                    "model": ["1", 0],
                    "positive": ["2", 0],
                    "negative": ["3", 0],
                    "cfg": 5.0,
                },
            },
            "42": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "dpmpp_2m"}},
            "43": {
                "class_type": "BasicScheduler",
                "inputs": {"model": ["1", 0], "scheduler": "karras", "steps": 6, "denoise": 1.0},
            },
            "44": {
                "class_type": "SamplerCustomAdvanced",
                "inputs": {
                    "noise": ["40", 0],
                    "guider": ["41", 0],
                    "sampler": ["42", 0],
                    "sigmas": ["43", 0],
                    "latent_image": ["4", 0],
                },
            },
        }
    )
    s = graph.sampler_settings(g, "44")
    assert (s["seed"], s["cfg"], s["sampler_name"], s["scheduler"], s["steps"]) == (
        77,
        5.0,
        "dpmpp_2m",
        "karras",
        6,
    )
    assert s["positive_prompt"] == "a red cube" and "unknown" not in s


# --- captures found by signature -----------------------------------------------------------
def _cap(exec_id: str, prompt_id: str, seed: int, shape=(1, 4, 8, 8)):
    return capture.Capture(
        exec_id=exec_id,
        prompt_id=prompt_id,
        list_index=0,
        call=0,
        seq=next(capture._seq),
        noise=torch.randn(shape, generator=torch.Generator().manual_seed(seed)),
        seed=seed,
        sigmas=[1.0, 0.0],
        sampler="euler",
        cfg=7.0,
        is_zero=False,
    )


@pytest.mark.parametrize("new_id", ["33", "40:11"])
def test_recreated_sampler_finds_the_capture_of_the_cached_run(new_id):
    old = txt2img("21")
    old["21"]["inputs"]["seed"] = 4100 + len(new_id)
    cap = _cap("21", "prompt-a", 4100)
    capture._keep(graph.signature(old, "21"), cap)
    new = txt2img(new_id)
    new[new_id]["inputs"]["seed"] = old["21"]["inputs"]["seed"]
    found = capture.lookup(new, new_id, 0, "prompt-b")
    assert found == [cap] and found[0].exec_id == "21"  # the old id: a label only
    other = txt2img(new_id)
    other[new_id]["inputs"]["seed"] = 1  # another sampler: nothing
    assert capture.lookup(other, new_id, 0, "prompt-b") == []


def test_expanded_runs_keep_their_part_of_the_id():
    g = txt2img("50")
    g["50"]["inputs"]["seed"] = 4200
    sig = graph.signature(g, "50")
    a, b = _cap("50.0.0.5", "p", 1), _cap("50.0.0.9", "p", 2)
    capture._keep(sig, a)
    capture._keep(sig, b)
    moved = txt2img("60")
    moved["60"]["inputs"]["seed"] = 4200
    assert capture.lookup(moved, "60", 0, "q") == [a, b]
    assert capture.rel_id("50.0.0.5") == ".0.0.5" and capture.rel_id("40:11") == ""


def test_true_reasons_for_missing_passes(monkeypatch):
    g = txt2img("21")
    g["21"]["inputs"]["seed"] = 4300
    sig = graph.signature(g, "21")
    with capture._lock:
        capture._note(sig, "no_save")
    assert "in a prompt without a raiiaf save node" in capture.why_missing(g, "21")
    # Dropped by the byte bound: the bound is the reason, and it is named.
    monkeypatch.setattr(capture, "MAX_BYTES", 1536)  # one 1x4x8x8 float32 capture
    capture._keep(sig, _cap("21", "p", 1))
    other = txt2img("22")
    other["22"]["inputs"]["seed"] = 4301
    capture._keep(graph.signature(other, "22"), _cap("22", "p", 2))
    assert capture.lookup(g, "21", 0, "x") == []
    why = capture.why_missing(g, "21")
    assert "dropped" in why and "RAIIAF_CAPTURE_MAX_MB" in why, why
    assert "without a raiiaf save node" not in why
    # Larger than the whole bound alone.
    big = txt2img("23")
    big["23"]["inputs"]["seed"] = 4302
    capture._keep(graph.signature(big, "23"), _cap("23", "p", 3, shape=(2, 4, 8, 8)))
    assert "larger than the whole" in capture.why_missing(big, "23")


# --- batch pickers ---------------------------------------------------------------------------
def _picked(batch_index, length=1) -> dict:
    g = txt2img("21")
    g["22"] = {
        "class_type": "LatentFromBatch",
        "inputs": {"samples": ["21", 0], "batch_index": batch_index, "length": length},
    }
    g["6"]["inputs"]["samples"] = ["22", 0]
    return g


def test_picked_rows():
    get = graph.literal_getter
    g = _picked(2)
    assert graph.picked_rows(g, "21", "7", 4, 1, get(g)) == (2, "")
    g = _picked(9)  # ComfyUI clamps the index to the last image
    assert graph.picked_rows(g, "21", "7", 4, 1, get(g)) == (3, "")
    g = _picked(["99", 0])  # linked and not recorded: unknown, said so
    row, why = graph.picked_rows(g, "21", "7", 4, 1, get(g))
    assert row is None and "node 22 is not known" in why
    g = txt2img("21")  # no picker: same batch or unknown
    assert graph.picked_rows(g, "21", "7", 2, 2, get(g)) == (0, "")
    assert graph.picked_rows(g, "21", "7", 2, 4, get(g))[0] is None


# --- one numbering: save side and replay side ----------------------------------------------
def _is_sampler(prompt):
    return lambda n: graph.class_of(prompt, n) in graph.SAMPLER_CLASSES


def two_pass(ids=("10", "14"), upscale=True) -> dict:
    """Hires fix (latent upscale between the passes) or a same-size refiner."""
    first, second = ids
    g = txt2img(first)
    g[first]["inputs"]["seed"] = 1
    src = [first, 0]
    if upscale:
        g["13"] = {"class_type": "LatentUpscaleBy", "inputs": {"samples": src, "scale_by": 1.5}}
        src = ["13", 0]
    g[second] = {
        "class_type": "KSampler",
        "inputs": {**g[first]["inputs"], "latent_image": src, "seed": 2, "denoise": 0.5},
    }
    g["6"]["inputs"]["samples"] = [second, 0]
    return g


def samplers_on_path(g: dict, save_id: str = "7") -> list[str]:
    return [n for n in passes.path_nodes(g, save_id) if _is_sampler(g)(n)]


@pytest.mark.parametrize("upscale", [True, False])
def test_hires_and_refiner_numbering(upscale):
    g = two_pass(upscale=upscale)
    assert samplers_on_path(g) == ["10", "14"]
    assert [passes.pass_name(i, n) for i, n in enumerate(samplers_on_path(g))] == [
        "initial_noise",
        "noise_1_node_14",
    ]


def test_two_branches_each_save_gets_its_own_sampler():
    g = txt2img("10")
    g["20"] = {"class_type": "KSampler", "inputs": {**g["10"]["inputs"], "seed": 9}}
    g["26"] = {"class_type": "VAEDecode", "inputs": {"samples": ["20", 0], "vae": ["1", 2]}}
    g["27"] = {"class_type": "RaiiafSaveImage", "inputs": {"images": ["26", 0]}}
    assert samplers_on_path(g, "7") == ["10"] and samplers_on_path(g, "27") == ["20"]


def _replay(g: dict, patched: tuple[str, ...]) -> dict:
    g = {k: {"class_type": v["class_type"], "inputs": dict(v["inputs"])} for k, v in g.items()}
    g["90"] = {"class_type": "RaiiafLoad", "inputs": {"file": "f.raiiaf"}}
    g["91"] = {
        "class_type": "RaiiafReplayNoise",
        "inputs": {"model": ["1", 0], "raiiaf": ["90", 0]},
    }
    for n in patched:
        g[n]["inputs"]["model"] = ["91", 0]
    return g


def test_replay_gets_the_same_numbering_as_the_save():
    saved = samplers_on_path(two_pass())  # ["10", "14"]
    # The saved graph reloaded: by id, both patched or only the second.
    for patched in (("10", "14"), ("14",)):
        g = _replay(two_pass(), patched)
        got = [passes.replay_pass(g, n, 0, saved, "91", _is_sampler(g)) for n in ("10", "14")]
        assert got == [0, 1]
    # Another graph (re-created samplers, a subgraph): by place along the path. The
    # second pass is pass 1 even when the first is served from the cache (no call).
    for ids in (("30", "31"), ("40:10", "40:14")):
        g = _replay(two_pass(ids), ids)
        assert passes.replay_pass(g, ids[1], 0, saved, "91", _is_sampler(g)) == 1
        assert passes.replay_pass(g, ids[0], 0, saved, "91", _is_sampler(g)) == 0
    # A file with one pass has nothing for a second sampler.
    g = _replay(two_pass(("30", "31")), ("30", "31"))
    assert passes.replay_pass(g, "31", 0, ["21"], "91", _is_sampler(g)) is None


def test_seed_contract():
    args = (None, None, False, 5)
    assert passes.seed_of(args, {}) == 5 and passes.seed_of((), {"seed": 6}) == 6
    assert passes.seed_of((None,), {}) is None
    assert passes.with_seed(args, {}, 9) == ((None, None, False, 9), {})
    assert passes.with_seed((), {"x": 1}, 9) == ((), {"x": 1, "seed": 9})
