"""The no-graph-change mode: with the settings panel's "raiiaf.SidecarAll" switch or
RAIIAF_SIDECAR_ALL=1, a .raiiaf lands beside every image core SaveImage (and savers built
on it) writes, with the save node's attribution rules, and regenerates its image through
the pack's reload workflow. Real ComfyUI 0.3.75, tiny SD1.5, CPU.

The shared server's mode is switched through ComfyUI's own /settings route (what the
front end's settings panel calls) and always switched back, so no other test sees it. The
environment variable and the SwarmUI-shaped graph get a server of their own."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import raiiaf_rs
import torch
from PIL import Image

from .harness import REPO, ComfyServer, default_txt2img
from .test_frontend import CURRENT_FRONTEND, browser, open_page, shot  # noqa: F401

sys.path.insert(0, str(REPO / "workflows"))
import graphs

SETTING = "raiiaf.SidecarAll"
STEPS = 3


def set_mode(comfy, on: bool) -> None:
    comfy._request(
        f"/settings/{SETTING}", json.dumps(on).encode(), {"Content-Type": "application/json"}
    )
    assert comfy.get_json(f"/settings/{SETTING}") is on


@contextlib.contextmanager
def sidecar_mode(comfy):
    set_mode(comfy, True)
    try:
        yield
    finally:
        set_mode(comfy, False)


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(path.read_bytes())).convert("RGB"))


def prepare_noise(seed: int, shape) -> np.ndarray:
    """ComfyUI's comfy.sample.prepare_noise for one image: torch.manual_seed, one randn."""
    return torch.randn(shape, generator=torch.manual_seed(seed)).numpy()


def reload(comfy, file: str, prefix: str, batch: bool = False) -> None:
    make = graphs.reload_batch if batch else graphs.reload_ksampler
    comfy.run(graphs.to_api(make(file=file, ckpt=comfy.ckpt, prefix=prefix)), timeout=300)


def test_the_variable_and_the_setting_are_read_strictly(comfy_sample):
    """1/0 (and true/false, yes/no, on/off) or unset; anything else is an error naming the
    variable, never a guess. The panel's value counts only when it is exactly true."""
    del comfy_sample  # puts ComfyUI on the import path, CPU only
    sys.path.insert(0, str(REPO))
    autosave = importlib.import_module("comfy_nodes.autosave")
    for value, want in (("1", True), (" ON ", True), ("0", False), ("off", False), ("", None)):
        assert autosave.parse_env(value) is want, value
    assert autosave.parse_env(None) is None
    with pytest.raises(
        ValueError, match=re.escape("RAIIAF_SIDECAR_ALL='2': use 1 (on) or 0 (off)")
    ):
        autosave.parse_env("2")
    assert autosave.setting_from({SETTING: True}) is True
    for settings in ({SETTING: "true"}, {SETTING: 1}, {}, None, []):
        assert autosave.setting_from(settings) is False, settings


def test_default_graph_gets_a_sidecar_that_regenerates_its_image(comfy):
    """An unmodified txt2img graph (core SaveImage, a preview beside it): the PNG gets a
    sidecar holding the KSampler's noise; the reload workflow regenerates it exactly."""
    g = default_txt2img(comfy.ckpt, seed=4242, steps=STEPS, prefix="auto_default")
    g["8"] = {"class_type": "PreviewImage", "inputs": {"images": ["6", 0]}}
    with sidecar_mode(comfy):
        entry = comfy.run(g, timeout=300)
    # SaveImage's output is SaveImage's alone: nothing added to what the front end gets.
    [saved] = entry["outputs"]["7"]["images"]
    assert saved == {"filename": "auto_default_00001_.png", "subfolder": "", "type": "output"}
    assert set(entry["outputs"]["7"]) == {"images"}
    png = comfy.output_dir / "auto_default_00001_.png"
    side = comfy.output_dir / "auto_default_00001_.raiiaf"
    art = raiiaf_rs.read(side)
    want = prepare_noise(4242, (1, 4, 8, 8))
    assert art.latents["initial_noise"].tobytes() == want.tobytes()
    meta = art.metadata
    assert "warning" not in meta and "missing_passes" not in meta
    assert meta["sidecar_mode"]["node_id"] == "7"
    assert meta["sidecar_mode"]["class_type"] == "SaveImage"
    assert meta["image_file"]["name"] == png.name
    assert art.image == png.read_bytes()  # the very PNG SaveImage wrote
    [rec] = meta["captures"]
    assert (rec["node_id"], rec["seed"]) == ("5", 4242)
    assert meta["prompt"] == "a red cube on a table"
    # The preview (temp directory) gets none.
    previews = list((Path(comfy.base_dir) / "temp").rglob("*"))
    assert any(p.suffix == ".png" for p in previews)
    assert not any(p.suffix == ".raiiaf" for p in previews)

    reload(comfy, "auto_default_00001_.raiiaf [output]", "auto_default_re")
    assert np.array_equal(pixels(comfy.output_dir / "auto_default_re_00001_.png"), pixels(png))


def toast_for_a_failed_sidecar(server, page, tag: str) -> None:
    """Queued as the page's client (the page queues prompts with its clientId)."""
    client = page.evaluate("window.comfyAPI.api.api.clientId")
    prefix = "t" * (255 - len("_00001_.png"))
    g = default_txt2img(server.ckpt, seed=78, steps=STEPS, prefix=prefix)
    body = json.dumps({"prompt": g, "client_id": client}).encode()
    raw = server._request("/prompt", body, {"Content-Type": "application/json"})
    server.wait(json.loads(raw)["prompt_id"], timeout=300)
    assert (server.output_dir / f"{prefix}_00001_.png").is_file()
    page.get_by_text("was saved without its .raiiaf", exact=False).first.wait_for(timeout=30_000)
    text = page.get_by_text("was saved without its .raiiaf", exact=False).first.inner_text()
    assert str(server.base_dir) not in text  # no server paths in the page
    shot(page, f"autosave-toast-{tag}.png")


def switch_in_the_panel(server, browser, tag: str) -> None:  # noqa: F811
    """In ``server``'s settings panel (search "raiiaf"), click the switch on, queue the
    default graph, click it off, queue again: the server goes by each click."""
    context, page = open_page(browser, server)
    value = "window.comfyAPI.app.app.extensionManager.setting.get('raiiaf.SidecarAll')"
    try:
        page.evaluate(
            "window.comfyAPI.app.app.extensionManager.command.execute('Comfy.ShowSettingsDialog')"
        )
        page.get_by_placeholder("Search", exact=False).first.fill("raiiaf")
        row = page.get_by_text("Write a .raiiaf beside every saved image", exact=False)
        row.wait_for(timeout=15_000)
        switch = page.get_by_role("switch").first
        for on in (True, False):
            prefix = f"auto_panel_{tag}_{'on' if on else 'off'}"
            switch.click()
            page.wait_for_function(f"{value} === {json.dumps(on)}", timeout=15_000)
            shot(page, f"autosave-setting-{tag}-{'on' if on else 'off'}.png")
            assert server.get_json(f"/settings/{SETTING}") is on
            g = default_txt2img(server.ckpt, seed=77, steps=STEPS, prefix=prefix)
            server.run(g, timeout=300)
            assert (server.output_dir / f"{prefix}_00001_.png").is_file()
            assert (server.output_dir / f"{prefix}_00001_.raiiaf").is_file() is on
            if on:  # a sidecar that cannot be written: a toast in the page that queued it
                toast_for_a_failed_sidecar(server, page, tag)
        assert page.errors == []
    finally:
        set_mode(server, False)
        context.close()


def test_the_settings_panel_switch_turns_the_mode_on_and_off(comfy, browser):  # noqa: F811
    """The front end ComfyUI 0.3.75 ships (1.32.9)."""
    switch_in_the_panel(comfy, browser, "shipped")


def test_the_switch_in_the_newest_front_end(browser, tmp_path_factory):  # noqa: F811
    """The newest front end (tests/comfyui/frontend-current.txt), on a server of its own."""
    root = ("--front-end-root", str(CURRENT_FRONTEND))
    with ComfyServer(tmp_path_factory.mktemp("autosave_fe"), extra_args=root) as server:
        switch_in_the_panel(server, browser, "current")


def test_hires_graph_with_core_save_image_regenerates_both_passes(comfy):
    """The example hires graph with core SaveImage in place of the pack's save node: the
    file holds both passes, as the save node's would, and the hires reload workflow
    regenerates the image exactly (euler_ancestral: the stored seeds count too)."""
    kw = {"ckpt": comfy.ckpt, "steps": STEPS, "sampler": "euler_ancestral"}
    g = graphs.to_api(graphs.save_hires(width=64, height=64, prefix="auto_hires", **kw))
    [save_id] = [k for k, v in g.items() if v["class_type"] == "RaiiafSaveImage"]
    g[save_id] = {
        "class_type": "SaveImage",
        "inputs": {"images": g[save_id]["inputs"]["images"], "filename_prefix": "auto_hires"},
    }
    with sidecar_mode(comfy):
        comfy.run(g, timeout=300)
    art = raiiaf_rs.read(comfy.output_dir / "auto_hires_00001_.raiiaf")
    assert "warning" not in art.metadata
    first, second = art.metadata["captures"]
    assert first["name"] == "initial_noise" and second["name"].startswith("noise_1")
    file = "auto_hires_00001_.raiiaf [output]"
    re_g = graphs.reload_hires(file=file, prefix="auto_hires_re", **kw)
    comfy.run(graphs.to_api(re_g), timeout=300)
    again = pixels(comfy.output_dir / "auto_hires_re_00001_.png")
    assert np.array_equal(again, pixels(comfy.output_dir / "auto_hires_00001_.png"))


def test_mode_off_writes_nothing(comfy):
    """Off (the default, and after switching it off again): SaveImage writes its PNG only,
    and the prompt is not even captured."""
    with sidecar_mode(comfy):
        pass
    assert comfy.get_json(f"/settings/{SETTING}") is False
    g = default_txt2img(comfy.ckpt, seed=5151, steps=STEPS, prefix="auto_off")
    comfy.run(g, timeout=300)
    assert (comfy.output_dir / "auto_off_00001_.png").is_file()
    assert not list(comfy.output_dir.glob("auto_off*.raiiaf"))


def test_a_sidecar_that_cannot_be_written_costs_only_a_warning(comfy):
    """A prefix that leaves room for the PNG's name but not the .raiiaf's (255 bytes, the
    file name limit): SaveImage saves and reports its PNG as ever, the log says why there
    is no sidecar, and the next save gets one."""
    prefix = "w" * (255 - len("_00001_.png"))
    with sidecar_mode(comfy):
        entry = comfy.run(default_txt2img(comfy.ckpt, seed=61, steps=STEPS, prefix=prefix))
        [saved] = entry["outputs"]["7"]["images"]
        assert saved["filename"] == f"{prefix}_00001_.png" and set(entry["outputs"]["7"]) == {
            "images"
        }
        assert (comfy.output_dir / saved["filename"]).is_file()
        assert not list(comfy.output_dir.glob("www*.raiiaf"))
        log = comfy.log_text()
        assert f"[raiiaf] WARNING {prefix}_00001_.png was saved without its .raiiaf" in log
        comfy.run(default_txt2img(comfy.ckpt, seed=61, steps=STEPS, prefix="auto_after"))
        assert (comfy.output_dir / "auto_after_00001_.raiiaf").is_file()


def test_env_var_swarm_shaped_graph_and_subclassed_saver(tmp_path_factory):
    """RAIIAF_SIDECAR_ALL=1 on a headless server, the panel setting never touched: a
    sampler that makes its own noise per image (seed + i, SwarmKSampler's scheme) and
    calls CFGGuider itself, saved by core SaveImage and by a SaveImage subclass. Each
    file holds its image's own noise; the batch regenerates exactly from the files."""
    base_dir = tmp_path_factory.mktemp("autosave_env")
    (base_dir / "custom_nodes").mkdir()
    pack = Path(__file__).parent / "packs" / "raiiaf_swarm_like"
    (base_dir / "custom_nodes" / "raiiaf_swarm_like").symlink_to(pack, target_is_directory=True)
    with ComfyServer(base_dir, env={"RAIIAF_SIDECAR_ALL": "1"}) as server:
        assert server.get_json(f"/settings/{SETTING}") is None
        g = default_txt2img(server.ckpt, seed=900, steps=STEPS, batch=2, prefix="swarm")
        g["5"]["class_type"] = "TestSwarmLikeSampler"
        del g["5"]["inputs"]["denoise"]
        g["8"] = {
            "class_type": "TestSubclassSaver",
            "inputs": {"images": ["6", 0], "filename_prefix": "swarm"},
        }
        server.run(g, timeout=300)
        out = server.output_dir
        for prefix in ("swarm", "swarm_sub"):
            for i in (0, 1):
                art = raiiaf_rs.read(out / f"{prefix}_0000{i + 1}_.raiiaf")
                got = art.latents["initial_noise"]
                assert got.tobytes() == prepare_noise(900 + i, (1, 4, 8, 8)).tobytes(), (prefix, i)
                assert "warning" not in art.metadata
                [rec] = art.metadata["captures"]
                assert rec["class_type"] == "TestSwarmLikeSampler" and rec["seed"] == 900
        # Image 2's noise is its own generator's, not ComfyUI's prepare_noise row 1.
        rows = torch.randn((2, 4, 8, 8), generator=torch.manual_seed(900)).numpy()
        art = raiiaf_rs.read(out / "swarm_00002_.raiiaf")
        assert art.latents["initial_noise"].tobytes() != rows[1:2].tobytes()

        reload(server, "swarm_00001_.raiiaf [output]", "swarm_re", batch=True)
        for i in (1, 2):
            again = pixels(out / f"swarm_re_0000{i}_.png")
            assert np.array_equal(again, pixels(out / f"swarm_0000{i}_.png")), i
