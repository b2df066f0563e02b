"""The extension as the webui loads it: script discovery, callbacks, UI, installer."""

from __future__ import annotations

import runpy
import sys

import raiiaf_rs

from .harness import EXTENSION_DIR, WEBUI_DIR

BASE = {"prompt": "a cat", "steps": 5, "width": 64, "height": 64, "cfg_scale": 5.0}


def test_loaded_like_the_webui_does(webui):
    from modules import script_callbacks, scripts

    ((_cls, _path, ext, module),) = scripts.scripts_data
    assert module.__name__ == "raiiaf.py"  # spec_from_file_location(basename, path)
    assert ext == str(EXTENSION_DIR)
    assert str(EXTENSION_DIR) not in sys.path  # restored after the load
    # One instance per tab, one always-on script each; the callback registered once.
    for tab in ("txt2img", "img2img"):
        (script,) = webui.tabs[tab].alwayson_scripts
        assert script.name == "raiiaf"
        assert script.args_to - script.args_from == 7
    assert len(script_callbacks.registered("image_saved")) == 1


def test_accordion_ui_defaults(webui):
    script = webui.script("txt2img")
    enabled, save, embed, latent, files, on_mismatch, restore = script.controls
    assert type(enabled).__name__ == "InputAccordion" and enabled.value is False
    assert save.value is True and embed.value is True and latent.value is False
    assert files.kwargs["type"] == "binary" and files.kwargs["file_count"] == "multiple"
    assert on_mismatch.value == "Stop with a message"
    assert restore.value is True


def test_apply_stored_settings_button(webui):
    res = webui.txt2img(
        seed=4242,
        sampler_name="Euler a",
        scheduler="Karras",
        raiiaf={"enabled": True},
        **{**BASE, "width": 72, "height": 56, "steps": 7},
    )
    script = webui.script("txt2img")
    button = next(
        c for c in _walk(script.controls[0]) if getattr(c, "elem_id", "") == "txt2img_raiiaf_apply"
    )
    (event,) = button.events
    outputs = event["outputs"]
    values = event["fn"](str(res.sidecar(res.images[0])))
    by_id = {o.elem_id: v for o, v in zip(outputs, values)}
    assert by_id["txt2img_seed"]["value"] == 4242
    assert by_id["txt2img_steps"]["value"] == 7
    assert by_id["txt2img_sampling"]["value"] == "Euler a"
    assert by_id["txt2img_scheduler"]["value"] == "Karras"
    assert by_id["txt2img_width"]["value"] == 72 and by_id["txt2img_height"]["value"] == 56
    assert by_id["txt2img_cfg_scale"]["value"] == 5.0
    assert "applied from" in by_id["txt2img_raiiaf_status"]
    bad = event["fn"](b"not a raiiaf file")
    assert "not a readable" in bad[-1]


def _walk(component):
    yield component
    for child in getattr(component, "children", []):
        yield from _walk(child)


def test_installer_installs_the_wheel(webui, tmp_path, monkeypatch):
    from modules import launch_utils

    wheel = tmp_path / "raiiaf_rs-0.1.0-cp39-abi3-linux_x86_64.whl"
    wheel.write_bytes(b"")
    monkeypatch.setenv("RAIIAF_WHEEL", str(wheel))
    monkeypatch.syspath_prepend(str(WEBUI_DIR))
    launch_utils.pip_calls.clear()
    runpy.run_path(str(EXTENSION_DIR / "install.py"), run_name="__main__")
    ((command, _desc),) = launch_utils.pip_calls
    assert command == f'install --upgrade "{wheel}"'
    monkeypatch.delenv("RAIIAF_WHEEL")
    launch_utils.pip_calls.clear()
    runpy.run_path(str(EXTENSION_DIR / "install.py"), run_name="__main__")
    assert launch_utils.pip_calls == [] or "raiiaf" in launch_utils.pip_calls[0][0]
    assert raiiaf_rs.__version__
