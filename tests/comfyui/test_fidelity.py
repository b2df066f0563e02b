"""Every file holds the noise of its own image, in the graphs users build: two saves
on two branches, re-queues served partly from ComfyUI's cache (hires and refiner, for
saving and for replaying), batches with ancestral and SDE samplers regenerated image by
image and whole, list runs, pre-noised latents. Real ComfyUI (0.3.75, and 0.33.0 in
`make comfyui-latest-test`), tiny SD1.5, CPU."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import raiiaf_rs
import torch
from PIL import Image

SIZE = 64
STEPS = 3


# --- graphs (API format) -----------------------------------------------------------------
def base(ckpt: str, batch: int = 1) -> dict:
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red cube", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["1", 1]}},
        "4": {
            "class_type": "EmptyLatentImage",
            "inputs": {"width": SIZE, "height": SIZE, "batch_size": batch},
        },
    }


def ksampler(latent, seed, sampler="euler", denoise=1.0, model=("1", 0)) -> dict:
    return {
        "class_type": "KSampler",
        "inputs": {
            "model": list(model),
            "positive": ["2", 0],
            "negative": ["3", 0],
            "latent_image": list(latent),
            "seed": seed,
            "steps": STEPS,
            "cfg": 7.0,
            "sampler_name": sampler,
            "scheduler": "normal",
            "denoise": denoise,
        },
    }


def decode(samples) -> dict:
    return {"class_type": "VAEDecode", "inputs": {"samples": list(samples), "vae": ["1", 2]}}


def save(images, prefix, raiiaf=True) -> dict:
    inputs = {"images": list(images), "filename_prefix": prefix}
    if raiiaf:
        inputs.update(codec="raw", save_final_latent=False)
    return {"class_type": "RaiiafSaveImage" if raiiaf else "SaveImage", "inputs": inputs}


def two_pass(ckpt, seed1, seed2, prefix, upscale=True, sampler="euler", ids=("10", "14")):
    """Hires fix (latent upscale between the passes) or a same-size refiner."""
    g = base(ckpt)
    first, second = ids
    g[first] = ksampler(("4", 0), seed1, sampler)
    src = (first, 0)
    if upscale:
        g["13"] = {
            "class_type": "LatentUpscaleBy",
            "inputs": {"samples": [first, 0], "upscale_method": "nearest-exact", "scale_by": 1.5},
        }
        src = ("13", 0)
    g[second] = ksampler(src, seed2, sampler, denoise=0.5)
    g["15"] = decode((second, 0))
    g["16"] = save(("15", 0), prefix)
    return g


def with_replay(g: dict, file: str, samplers) -> dict:
    """``g`` with its samplers' model patched to replay ``file``."""
    g = {k: {"class_type": v["class_type"], "inputs": dict(v["inputs"])} for k, v in g.items()}
    g["90"] = {"class_type": "RaiiafLoad", "inputs": {"file": file}}
    g["91"] = {
        "class_type": "RaiiafReplayNoise",
        "inputs": {"model": ["1", 0], "raiiaf": ["90", 0]},
    }
    for s in samplers:
        g[s]["inputs"]["model"] = ["91", 0]
    return g


# --- helpers -------------------------------------------------------------------------------
def run(comfy, g) -> dict:
    return comfy.wait(comfy.queue(g), timeout=300)


def out(comfy, name: str) -> Path:
    return Path(comfy.base_dir) / "output" / name


def pixels(comfy, name: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(out(comfy, name).read_bytes())).convert("RGB"))


def noise(comfy_sample, seed, shape) -> np.ndarray:
    return comfy_sample.prepare_noise(torch.zeros(shape), seed).numpy()


def regenerated(comfy, g, prefix) -> np.ndarray:
    run(comfy, g)
    return pixels(comfy, f"{prefix}_00001_.png")


# --- 1. two saves on two branches ------------------------------------------------------------
def test_final_latent_only_when_asked(comfy):
    g = base(comfy.ckpt)
    g["10"] = ksampler(("4", 0), 12)
    g["11"] = decode(("10", 0))
    g["12"] = save(("11", 0), "final_on")
    g["12"]["inputs"]["save_final_latent"] = True
    g["13"] = save(("11", 0), "final_off")
    run(comfy, g)
    on = raiiaf_rs.read(out(comfy, "final_on_00001_.raiiaf"))
    off = raiiaf_rs.read(out(comfy, "final_off_00001_.raiiaf"))
    assert on.latents["final_latent"].shape == (1, 4, SIZE // 8, SIZE // 8)
    assert np.any(on.latents["final_latent"]) and "final_latent" not in off.latents
    assert on.latents["initial_noise"].tobytes() == off.latents["initial_noise"].tobytes()


def test_two_branches_each_file_holds_its_own_branch(comfy, comfy_sample):
    g = base(comfy.ckpt)
    g["10"] = ksampler(("4", 0), 101)
    g["11"] = decode(("10", 0))
    g["12"] = save(("11", 0), "branch_a")
    g["20"] = ksampler(("4", 0), 202, "euler_ancestral")
    g["21"] = decode(("20", 0))
    g["22"] = save(("21", 0), "branch_b")
    run(comfy, g)
    for prefix, node, seed in (("branch_a", "10", 101), ("branch_b", "20", 202)):
        art = raiiaf_rs.read(out(comfy, f"{prefix}_00001_.raiiaf"))
        assert list(art.latents) == ["initial_noise"], prefix
        want = noise(comfy_sample, seed, (1, 4, SIZE // 8, SIZE // 8))
        assert art.latents["initial_noise"].tobytes() == want.tobytes(), prefix
        [rec] = art.metadata["captures"]
        assert rec["node_id"] == node and rec["seed"] == seed
        assert art.metadata["generation_settings"]["seed"] == seed
        # Each file regenerates its own branch's image.
        re = with_replay(
            {k: g[k] for k in ("1", "2", "3", "4", node)},
            f"{prefix}_00001_.raiiaf [output]",
            [node],
        )
        re[node]["inputs"]["seed"] = 5
        re["30"] = decode((node, 0))
        re["31"] = save(("30", 0), f"{prefix}_re", raiiaf=False)
        again = regenerated(comfy, re, f"{prefix}_re")
        assert np.array_equal(again, pixels(comfy, f"{prefix}_00001_.png")), prefix


# --- 2. re-queue with a cached first pass: saving and replaying -----------------------------
@pytest.mark.parametrize("upscale", [True, False], ids=["hires", "refiner"])
def test_requeue_with_a_cached_first_pass(comfy, comfy_sample, upscale):
    kind = "hires" if upscale else "refiner"
    run(comfy, two_pass(comfy.ckpt, 5, 6, f"{kind}1", upscale))
    # Only the second pass changes: ComfyUI serves the first KSampler from its cache.
    entry = run(comfy, two_pass(comfy.ckpt, 5, 7, f"{kind}2", upscale))
    cached = [m for m in entry["status"]["messages"] if m[0] == "execution_cached"]
    assert "10" in cached[0][1]["nodes"], "the first pass must come from the cache"
    art = raiiaf_rs.read(out(comfy, f"{kind}2_00001_.raiiaf"))
    small = (1, 4, SIZE // 8, SIZE // 8)
    big = (1, 4, SIZE * 3 // 16, SIZE * 3 // 16) if upscale else small
    assert art.latents["initial_noise"].tobytes() == noise(comfy_sample, 5, small).tobytes()
    assert art.latents["noise_1_node_14"].tobytes() == noise(comfy_sample, 7, big).tobytes()
    first, second = art.metadata["captures"]
    assert (first["node_id"], first["seed"], first.get("cached")) == ("10", 5, True)
    assert (second["node_id"], second["seed"], second.get("cached")) == ("14", 7, None)
    assert "warning" not in art.metadata
    original = pixels(comfy, f"{kind}2_00001_.png")

    # Replay in the same graph (passes matched by node id), other seeds in the widgets.
    file = f"{kind}2_00001_.raiiaf [output]"
    re = with_replay(two_pass(comfy.ckpt, 50, 60, f"{kind}_re1", upscale), file, ["10", "14"])
    re["16"] = save(("15", 0), f"{kind}_re1", raiiaf=False)
    assert np.array_equal(regenerated(comfy, re, f"{kind}_re1"), original)
    # Re-queued with only the second pass edited: the first comes from the cache and
    # the second must still get the second stored pass.
    re["14"]["inputs"]["seed"] = 61
    re["16"] = save(("15", 0), f"{kind}_re2", raiiaf=False)
    entry = run(comfy, re)
    cached = [m for m in entry["status"]["messages"] if m[0] == "execution_cached"]
    assert "10" in cached[0][1]["nodes"]
    assert np.array_equal(pixels(comfy, f"{kind}_re2_00001_.png"), original)

    # A graph with other node ids: passes matched by position along the path.
    g = two_pass(comfy.ckpt, 50, 60, f"{kind}_re3", upscale, ids=("40", "44"))
    re = with_replay(g, file, ["40", "44"])
    re["16"] = save(("15", 0), f"{kind}_re3", raiiaf=False)
    assert np.array_equal(regenerated(comfy, re, f"{kind}_re3"), original)
    # Only the second pass patched (the first samples seed 5 itself, as the original did):
    # it still gets the second stored pass, counted along the path, not among patched ones.
    g = two_pass(comfy.ckpt, 5, 60, f"{kind}_re4", upscale, ids=("40", "44"))
    re = with_replay(g, file, ["44"])
    re["16"] = save(("15", 0), f"{kind}_re4", raiiaf=False)
    assert np.array_equal(regenerated(comfy, re, f"{kind}_re4"), original)


def test_a_pass_that_cannot_be_found_is_named_not_mislabelled(comfy):
    """The first pass ran in a prompt without a raiiaf save node (nothing captured),
    then is served from the cache: the file says which pass is missing and holds no
    initial_noise taken from another pass."""
    g = two_pass(comfy.ckpt, 8, 9, "nosave", upscale=True)
    g["16"] = save(("15", 0), "nosave", raiiaf=False)
    run(comfy, g)
    run(comfy, two_pass(comfy.ckpt, 8, 10, "missing", upscale=True))
    art = raiiaf_rs.read(out(comfy, "missing_00001_.raiiaf"))
    assert "initial_noise" not in art.latents and "noise_1_node_14" in art.latents
    [gone] = art.metadata["missing_passes"]
    assert (gone["name"], gone["node_id"], gone["class_type"]) == (
        "initial_noise",
        "10",
        "KSampler",
    )
    assert "node 10" in art.metadata["warning"] and "cache" in art.metadata["warning"]


def test_replay_shape_mismatch_names_both_sides(comfy):
    run(comfy, two_pass(comfy.ckpt, 5, 6, "mm", upscale=True))
    # The file's passes fed to a same-size refiner graph: pass 2 is 12x12, the latent 8x8.
    re = with_replay(
        two_pass(comfy.ckpt, 1, 2, "mm_re", upscale=False),
        "mm_00001_.raiiaf [output]",
        ["10", "14"],
    )
    with pytest.raises(
        Exception, match=r"stored pass noise_1_node_14 .*sampler node 14 \(KSampler\)"
    ):
        run(comfy, re)
    assert comfy.alive()


# --- 3. batches: each image alone, and the whole batch from its files -----------------------
def replay_graph(ckpt, file, sampler, prefix, loader="RaiiafLoad") -> dict:
    """KSampler on the loader's LATENT, its model patched to replay ``file``."""
    g = base(ckpt)
    del g["4"]
    g["90"] = {"class_type": loader, "inputs": {"file": file}}
    g["91"] = {
        "class_type": "RaiiafReplayNoise",
        "inputs": {"model": ["1", 0], "raiiaf": ["90", 0]},
    }
    g["10"] = ksampler(("90", 2), 999, sampler, model=("91", 0))
    g["11"] = decode(("10", 0))
    g["12"] = save(("11", 0), prefix, raiiaf=False)
    return g


def within_batch_bound(a: np.ndarray, b: np.ndarray) -> tuple[int, float]:
    diff = np.abs(a.astype(int) - b.astype(int))
    return int(diff.max()), float((diff > 0).mean())


@pytest.mark.parametrize("sampler", ["euler_ancestral", "dpmpp_2s_ancestral", "dpmpp_sde"])
def test_batch_images_regenerate_alone_and_whole(comfy, sampler):
    g = base(comfy.ckpt, batch=3)
    g["10"] = ksampler(("4", 0), 31, sampler)
    g["11"] = decode(("10", 0))
    g["12"] = save(("11", 0), f"b3_{sampler}")
    run(comfy, g)
    originals = [pixels(comfy, f"b3_{sampler}_0000{i}_.png") for i in (1, 2, 3)]
    for i in (1, 2, 3):
        file = f"b3_{sampler}_0000{i}_.raiiaf [output]"
        prefix = f"b3_{sampler}_alone{i}"
        again = regenerated(comfy, replay_graph(comfy.ckpt, file, sampler, prefix), prefix)
        # The documented bound: the model itself sums a batch of 3 in another order than
        # a batch of 1 on CPU (plain ComfyUI shows the same for deterministic samplers).
        worst, share = within_batch_bound(again, originals[i - 1])
        print(f"batch of 3, {sampler}, image {i} alone: max {worst}/255, {share:.2%} of values")
        assert worst <= 1 and share < 0.01, f"{sampler} image {i}: {worst}/255 in {share:.1%}"
    # The whole batch from its three files (any one of them names the batch): exact.
    prefix = f"b3_{sampler}_whole"
    file = f"b3_{sampler}_00002_.raiiaf [output]"
    run(comfy, replay_graph(comfy.ckpt, file, sampler, prefix, loader="RaiiafLoadBatch"))
    for i in (1, 2, 3):
        assert np.array_equal(pixels(comfy, f"{prefix}_0000{i}_.png"), originals[i - 1]), i


def test_batch_image_alone_through_sampler_custom_advanced(comfy):
    """The loader's NOISE alone (no model patch) also draws the batch's per-step noise."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "workflows"))
    import graphs

    nodes = graphs.save_custom_advanced(
        ckpt=comfy.ckpt,
        seed=41,
        steps=STEPS,
        width=SIZE,
        height=SIZE,
        batch=3,
        sampler="euler_ancestral",
        prefix="b3sca",
    )
    run(comfy, graphs.to_api(nodes))
    nodes = graphs.reload_custom_advanced(
        file="b3sca_00003_.raiiaf [output]",
        ckpt=comfy.ckpt,
        steps=STEPS,
        sampler="euler_ancestral",
        prefix="b3sca_re",
    )
    again = regenerated(comfy, graphs.to_api(nodes), "b3sca_re")
    worst, share = within_batch_bound(again, pixels(comfy, "b3sca_00003_.png"))
    assert worst <= 1 and share < 0.01, f"{worst}/255 in {share:.1%}"


# --- 5. pre-noised latents ----------------------------------------------------------------
def advanced(latent, model=("1", 0)) -> dict:
    """KSamplerAdvanced that adds no noise: its latent comes in noised."""
    node = ksampler(latent, 0, model=model)
    inputs = node["inputs"]
    del inputs["denoise"]
    inputs.update(add_noise="disable", noise_seed=inputs.pop("seed"), start_at_step=0)
    inputs.update(end_at_step=10000, return_with_leftover_noise="disable")
    return {"class_type": "KSamplerAdvanced", "inputs": inputs}


def test_pre_noised_latent_is_said_and_regenerates(comfy):
    g = base(comfy.ckpt)
    g["5"] = {"class_type": "RandomNoise", "inputs": {"noise_seed": 77}}
    g["6"] = {
        "class_type": "BasicScheduler",
        "inputs": {"model": ["1", 0], "scheduler": "normal", "steps": STEPS, "denoise": 1.0},
    }
    g["7"] = {
        "class_type": "AddNoise",
        "inputs": {
            "model": ["1", 0],
            "noise": ["5", 0],
            "sigmas": ["6", 0],
            "latent_image": ["4", 0],
        },
    }
    g["10"] = advanced(("7", 0))
    g["11"] = decode(("10", 0))
    g["12"] = save(("11", 0), "prenoised")
    run(comfy, g)
    art = raiiaf_rs.read(out(comfy, "prenoised_00001_.raiiaf"))
    [rec] = art.metadata["captures"]
    assert rec["all_zero"] and rec["input_latent"] == "initial_noise_input_latent"
    assert "added no noise" in art.metadata["pre_noised"]
    assert not np.any(art.latents["initial_noise"])
    assert np.any(art.latents["initial_noise_input_latent"])
    [p] = art.metadata["passes"]  # the pass schema (FORMAT.md §4.7) says it too
    assert (p["adds_noise"], p["input_latent"]) == (False, "initial_noise_input_latent")
    assert p["source"]["host"] == "comfyui" and p["source"]["class_type"] == "KSamplerAdvanced"
    original = pixels(comfy, "prenoised_00001_.png")
    file = "prenoised_00001_.raiiaf [output]"

    # The replay patch starts the sampler from the stored latent (here fed an empty one).
    re = base(comfy.ckpt)
    re["90"] = {"class_type": "RaiiafLoad", "inputs": {"file": file}}
    re["91"] = {
        "class_type": "RaiiafReplayNoise",
        "inputs": {"model": ["1", 0], "raiiaf": ["90", 0]},
    }
    re["10"] = advanced(("4", 0), model=("91", 0))
    re["11"] = decode(("10", 0))
    re["12"] = save(("11", 0), "prenoised_re", raiiaf=False)
    assert np.array_equal(regenerated(comfy, re, "prenoised_re"), original)
    # The loader's LATENT is that latent too: no patch needed.
    re["10"] = advanced(("90", 2))
    re["12"] = save(("11", 0), "prenoised_re2", raiiaf=False)
    assert np.array_equal(regenerated(comfy, re, "prenoised_re2"), original)
    # And its summary and the inspect route (the node panels) say so.
    got = comfy.get_json("/raiiaf/inspect?file=prenoised_00001_.raiiaf%20%5Boutput%5D")
    assert "added no noise" in got["summary"]["pre_noised"]
    entry = run(
        comfy,
        {"90": re["90"], "95": {"class_type": "PreviewAny", "inputs": {"source": ["90", 11]}}},
    )
    text = str(entry["outputs"]["95"])
    assert "pre-noised" in text


# --- 6. list-mapped runs ------------------------------------------------------------------
def test_list_run_each_file_holds_its_own_item(comfy, comfy_sample):
    g = base(comfy.ckpt, batch=3)
    g["5"] = {"class_type": "RebatchLatents", "inputs": {"latents": ["4", 0], "batch_size": 1}}
    g["10"] = ksampler(("5", 0), 55)
    g["11"] = decode(("10", 0))
    g["12"] = save(("11", 0), "listrun")
    run(comfy, g)
    shape = (1, 4, SIZE // 8, SIZE // 8)
    for i in range(3):
        art = raiiaf_rs.read(out(comfy, f"listrun_0000{i + 1}_.raiiaf"))
        # Item i sampled with batch_index [i]: ComfyUI's i-th draw of the seed.
        want = comfy_sample.prepare_noise(torch.zeros(shape), 55, [i]).numpy()
        assert art.latents["initial_noise"].tobytes() == want.tobytes(), i
        assert art.metadata["generation_settings"]["seed"] == 55
    file = "listrun_00003_.raiiaf [output]"
    again = regenerated(comfy, replay_graph(comfy.ckpt, file, "euler", "listrun_re"), "listrun_re")
    assert np.array_equal(again, pixels(comfy, "listrun_00003_.png"))


# --- 7. loader list -------------------------------------------------------------------------
def loader_choices(comfy, node="RaiiafLoad") -> list[str]:
    spec = comfy.object_info(node)[node]["input"]["required"]["file"]
    return spec[0] if isinstance(spec[0], list) else spec[1]["options"]


def test_loader_lists_newest_first_and_new_files_without_restart(comfy):
    import os
    import time

    folder = out(comfy, "many")
    folder.mkdir(exist_ok=True)
    try:
        old = time.time() - 86400
        for i in range(10_000):
            f = folder / f"old_{i:05}_.raiiaf"
            f.touch()
            os.utime(f, (old + i, old + i))
        g = base(comfy.ckpt)
        g["10"] = ksampler(("4", 0), 3)
        g["11"] = decode(("10", 0))
        g["12"] = save(("11", 0), "newest")
        run(comfy, g)
        for node in ("RaiiafLoad", "RaiiafLoadBatch"):
            t = time.perf_counter()
            choices = loader_choices(comfy, node)
            took = time.perf_counter() - t
            print(f"/object_info/{node} with {len(choices)} files: {took * 1e3:.0f} ms")
            assert choices[0] == "newest_00001_.raiiaf [output]"
            assert choices.index("many/old_09999_.raiiaf [output]") < choices.index(
                "many/old_00000_.raiiaf [output]"
            )
    finally:
        for f in folder.iterdir():
            f.unlink()
        folder.rmdir()


# --- 6b. nested latents (in-process: the tests have no video + audio model) -----------------
def test_nested_latents_load_back_nested(comfy_sample):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    import comfy.nested_tensor
    import comfy.utils

    from comfy_nodes import load

    video = torch.randn(1, 16, 3, 4, 4)
    audio = torch.randn(1, 8, 10)
    packed, shapes = comfy.utils.pack_latents([video, audio])  # what the sampler sees
    stored = load.Stored(
        name="av.raiiaf",
        passes=[
            load.StoredPass(
                name="initial_noise",
                node_id="3",
                class_type="KSampler",
                noise=packed,
                seed=1,
                latent_shapes=[list(s) for s in shapes],
            )
        ],
        metadata={},
    )
    empty = load.outputs(stored, torch.zeros(1, 8, 8, 3), "").result[2]["samples"]
    assert empty.is_nested and [tuple(t.shape) for t in empty.unbind()] == [
        video.shape,
        audio.shape,
    ]
    got = load.StoredNoise(stored).generate_noise({"samples": empty})
    assert torch.equal(got.unbind()[0], video) and torch.equal(got.unbind()[1], audio)
    wrong = comfy.nested_tensor.NestedTensor([torch.zeros(1, 16, 3, 4, 4), torch.zeros(1, 8, 12)])
    with pytest.raises(ValueError, match="nested shapes"):
        load.StoredNoise(stored).generate_noise({"samples": wrong})


# --- 6c. other packs' samplers: internal runs and expanded node ids --------------------------
def pack_sampler(cls, seed) -> dict:
    node = ksampler(("4", 0), seed, "euler_ancestral")
    inputs = {k: v for k, v in node["inputs"].items() if k not in ("cfg", "scheduler", "denoise")}
    return {"class_type": cls, "inputs": inputs}


def test_other_packs_samplers_internal_and_expanded(tmp_path_factory, comfy_sample):
    from .harness import ComfyServer

    base_dir = tmp_path_factory.mktemp("packs")
    (base_dir / "custom_nodes").mkdir()
    pack = Path(__file__).parent / "packs" / "raiiaf_test_nodes"
    (base_dir / "custom_nodes" / "raiiaf_test_nodes").symlink_to(pack, target_is_directory=True)
    with ComfyServer(base_dir) as server:
        g = base(server.ckpt)
        g["10"] = pack_sampler("TestInternalSampler", 300)
        g["11"] = decode(("10", 0))
        g["12"] = save(("11", 0), "internal")
        g["20"] = pack_sampler("TestExpandingSampler", 400)
        g["21"] = decode(("20", 0))
        g["22"] = save(("21", 0), "expanded")
        run(server, g)

        art = raiiaf_rs.read(out(server, "internal_00001_.raiiaf"))
        first, second = art.metadata["captures"]
        assert [first["name"], second["name"]] == ["initial_noise", "noise_1_node_10"]
        assert (first["node_id"], first["seed"], second["seed"]) == ("10", 300, 301)
        assert first["class_type"] == "TestInternalSampler" and first["settings"]["seed"] == 300
        art = raiiaf_rs.read(out(server, "expanded_00001_.raiiaf"))
        [rec] = art.metadata["captures"]
        assert rec["node_id"] == "20" and rec["exec_id"].startswith("20.")
        assert (
            rec["settings"]["seed"] == 400 and rec["settings"]["sampler_name"] == "euler_ancestral"
        )
        assert art.metadata["generation_settings"]["seed"] == 400

        # A seed list: the KSampler runs once per seed, and so does the save node.
        sl = base(server.ckpt)
        sl["40"] = {"class_type": "TestSeedList", "inputs": {"first": 500, "count": 3}}
        sl["41"] = ksampler(("4", 0), ["40", 0], "euler_ancestral")
        sl["42"] = decode(("41", 0))
        sl["43"] = save(("42", 0), "seedlist")
        run(server, sl)
        for i in range(3):
            art = raiiaf_rs.read(out(server, f"seedlist_0000{i + 1}_.raiiaf"))
            want = noise(comfy_sample, 500 + i, (1, 4, SIZE // 8, SIZE // 8))
            assert art.latents["initial_noise"].tobytes() == want.tobytes(), i
            assert art.metadata["captures"][0]["seed"] == 500 + i
        file = "seedlist_00002_.raiiaf [output]"
        re = replay_graph(server.ckpt, file, "euler_ancestral", "seedlist_re")
        again = regenerated(server, re, "seedlist_re")
        assert np.array_equal(again, pixels(server, "seedlist_00002_.png"))

        # Both regenerate through the replay patch, other seeds in the widgets.
        for prefix, node in (("internal", "10"), ("expanded", "20")):
            re = with_replay(g, f"{prefix}_00001_.raiiaf [output]", [node])
            re = {k: v for k, v in re.items() if k in ("1", "2", "3", "4", "90", "91", node)}
            re[node]["inputs"]["seed"] = 7
            re["30"] = decode((node, 0))
            re["31"] = save(("30", 0), f"{prefix}_re", raiiaf=False)
            again = regenerated(server, re, f"{prefix}_re")
            assert np.array_equal(again, pixels(server, f"{prefix}_00001_.png")), prefix


# --- the example workflows (workflows/) -----------------------------------------------------
def test_example_hires_and_batch_workflows_regenerate(comfy):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "workflows"))
    import graphs

    kw = {"ckpt": comfy.ckpt, "steps": STEPS, "sampler": "euler_ancestral"}
    run(comfy, graphs.to_api(graphs.save_hires(width=SIZE, height=SIZE, prefix="ex_hires", **kw)))
    file = "ex_hires_00001_.raiiaf [output]"
    again = regenerated(
        comfy,
        graphs.to_api(graphs.reload_hires(file=file, prefix="ex_hires_re", **kw)),
        "ex_hires_re",
    )
    assert np.array_equal(again, pixels(comfy, "ex_hires_00001_.png"))

    nodes = graphs.save_ksampler(
        ckpt=comfy.ckpt,
        steps=STEPS,
        width=SIZE,
        height=SIZE,
        batch=3,
        sampler="dpmpp_sde",
        prefix="ex_batch",
    )
    run(comfy, graphs.to_api(nodes))
    file = "ex_batch_00003_.raiiaf [output]"
    run(comfy, graphs.to_api(graphs.reload_batch(file=file, ckpt=comfy.ckpt, prefix="ex_batch_re")))
    for i in (1, 2, 3):
        want = pixels(comfy, f"ex_batch_0000{i}_.png")
        assert np.array_equal(pixels(comfy, f"ex_batch_re_0000{i}_.png"), want), i


# --- 4. the byte bound ----------------------------------------------------------------------
def test_captures_beyond_the_byte_bound_are_named_missing(tmp_path_factory):
    """RAIIAF_CAPTURE_MAX_MB caps what the hook keeps: with room for the first pass's
    noise (1 KiB) but not the second's (2.25 KiB), the file holds the first and names
    the second as missing, with the bound as the reason."""
    from .harness import ComfyServer

    env = {"RAIIAF_CAPTURE_MAX_MB": str(1.5 / 1024)}
    with ComfyServer(tmp_path_factory.mktemp("bound"), env=env) as server:
        run(server, two_pass(server.ckpt, 5, 6, "bound", upscale=True))
        art = raiiaf_rs.read(out(server, "bound_00001_.raiiaf"))
        assert list(art.latents) == ["initial_noise"]
        [gone] = art.metadata["missing_passes"]
        assert (gone["name"], gone["node_id"]) == ("noise_1_node_14", "14")
        assert "RAIIAF_CAPTURE_MAX_MB" in gone["reason"]


def test_subgraph_node_ids(comfy):
    """Samplers inside a subgraph get ids like ``8:10`` in the prompt the front end
    sends: attribution and replay by id work on them alike."""
    ids = ("8:10", "8:14")
    run(comfy, two_pass(comfy.ckpt, 21, 22, "subgraph", upscale=False, ids=ids))
    art = raiiaf_rs.read(out(comfy, "subgraph_00001_.raiiaf"))
    assert [c["node_id"] for c in art.metadata["captures"]] == list(ids)
    assert list(art.latents) == ["initial_noise", "noise_1_node_8:14"]
    re = with_replay(
        two_pass(comfy.ckpt, 1, 2, "subgraph_re", upscale=False, ids=ids),
        "subgraph_00001_.raiiaf [output]",
        ids,
    )
    re["16"] = save(("15", 0), "subgraph_re", raiiaf=False)
    assert np.array_equal(
        regenerated(comfy, re, "subgraph_re"), pixels(comfy, "subgraph_00001_.png")
    )
