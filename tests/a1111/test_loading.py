"""The extension as the webui loads it: script discovery, callbacks, UI, installer."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import raiiaf_rs
from packaging.tags import sys_tags

from .harness import REPO, Webui

BASE = {"prompt": "a cat", "steps": 5, "width": 64, "height": 64, "cfg_scale": 5.0}


def test_loaded_like_the_webui_does(webui):
    from modules import extensions, script_callbacks, scripts

    (ext,) = extensions.active()
    assert ext.name == "raiiaf-rs" and ext.canonical_name == "raiiaf"
    # Only the root scripts/ folder is loaded: one script file, the extension's.
    ((_cls, path, ext_dir, module),) = scripts.scripts_data
    assert path == str(webui.extension / "scripts" / "raiiaf.py")
    assert module.__name__ == "raiiaf.py"  # spec_from_file_location(basename, path)
    assert ext_dir == str(webui.extension)
    assert str(webui.extension) not in sys.path  # restored after the load
    # One instance per tab, one always-on script each; the callbacks registered once.
    for tab in ("txt2img", "img2img"):
        (script,) = webui.tabs[tab].alwayson_scripts
        assert script.name == "raiiaf"
        assert script.args_to - script.args_from == 7
    assert len(script_callbacks.registered("image_saved")) == 1
    assert webui.errors.reported == []


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
    assert "differ" not in by_id["txt2img_raiiaf_status"]
    # A file made with another ENSD says so in the status line.
    webui.shared.opts.eta_noise_seed_delta = 31337
    status = event["fn"](str(res.sidecar(res.images[0])))[-1]
    assert "ENSD (eta_noise_seed_delta): file 0, this webui 31337" in status
    bad = event["fn"](b"not a raiiaf file")
    assert "not a readable" in bad[-1]


def _walk(component):
    yield component
    for child in getattr(component, "children", []):
        yield from _walk(child)


def _installer(webui, **env) -> tuple[str, list[list[str]]]:
    """Run the webui's installer step (every extension's install.py in a child process)."""
    from modules import launch_utils

    log = webui.root / "pip-calls.jsonl"
    log.unlink(missing_ok=True)
    env = {launch_utils.PIP_LOG_ENV: str(log), **env}
    out = launch_utils.run_extensions_installers(str(webui.root / "extensions"), env)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return out[webui.extension.name], calls


def test_installer_installs_the_given_wheel_through_the_webuis_pip(webui, tmp_path):
    wheel = tmp_path / "raiiaf_rs-0.1.3-cp39-abi3-win_amd64.whl"
    wheel.write_bytes(b"")
    out, calls = _installer(webui, RAIIAF_WHEEL=str(wheel))
    assert calls == [[f'install --upgrade "{wheel}"', "raiiaf_rs 0.1.3 (.raiiaf files)"]], out
    # The version already installed: no reinstall at every start.
    same = tmp_path / f"raiiaf_rs-{importlib.metadata.version('raiiaf-rs')}-cp39-abi3-any.whl"
    same.write_bytes(b"")
    _out, calls = _installer(webui, RAIIAF_WHEEL=str(same))
    assert calls == []


def test_installer_refuses_a_wheel_outside_the_required_range(webui, tmp_path):
    if not (REPO / "requirement.py").exists():
        pytest.fail("requirement.py (the version range reader) is missing")
    wheel = tmp_path / "raiiaf_rs-9.0.0-cp39-abi3-win_amd64.whl"
    wheel.write_bytes(b"")
    out, calls = _installer(webui, RAIIAF_WHEEL=str(wheel))
    assert calls == []
    assert "does not fit" in out and "RAIIAF_WHEEL" in out


def test_installer_without_a_wheel_uses_only_the_requirements_line(webui, tmp_path):
    installed = importlib.metadata.version("raiiaf-rs")
    out, calls = _installer(webui, RAIIAF_WHEEL="")
    line = next(
        ln.split("#")[0].strip()
        for ln in (REPO / "requirements.txt").read_text().splitlines()
        if ln.split("#")[0].strip().startswith("raiiaf-rs")
    )
    # Already installed at a fitting version: nothing; otherwise exactly that line.
    assert calls in ([], [[f'install "{line}"', f"{line} (.raiiaf files)"]]), (installed, out)
    for command, _ in calls:
        assert command == f'install "{line}"'


def test_installer_under_comfyui_manager_does_nothing(tmp_path):
    # ComfyUI-Manager runs `python install.py` in the node pack's folder, without the
    # webui on the path: requirements.txt has done the install.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, str(REPO / "install.py")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "not run by the webui" in out.stdout


def test_git_clone_into_extensions_loads_and_works(tmp_path):
    """The repository's committed HEAD, `git clone`d into the webui's extensions/ folder
    (what "Install from URL" does), found, installed and run the webui's way."""
    target = tmp_path / "extensions" / "raiiaf-rs"
    subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(target)],
        check=True,
        capture_output=True,
    )
    assert not (target / "a1111_extension").exists()
    assert sorted(p.name for p in (target / "scripts").iterdir()) == ["raiiaf.py"]
    webui = Webui(tmp_path, extension=target)
    from modules import scripts

    ((_cls, path, ext_dir, _module),) = scripts.scripts_data
    assert path == str(target / "scripts" / "raiiaf.py") and ext_dir == str(target)
    import lib_raiiaf

    assert Path(lib_raiiaf.__file__).resolve().parent == (target / "lib_raiiaf").resolve()
    # The installer step: the wheel for this system in the clone's wheels/ folder (next to
    # one for another system, written later), through the webui's pip.
    (target / "wheels").mkdir()
    tag = next(iter(sys_tags()))
    wheel = target / "wheels" / f"raiiaf_rs-0.1.9-{tag.interpreter}-{tag.abi}-{tag.platform}.whl"
    wheel.write_bytes(b"")
    foreign = "macosx_11_0_arm64" if sys.platform.startswith("win") else "win_amd64"
    time.sleep(0.01)
    (target / "wheels" / f"raiiaf_rs-0.1.9-cp39-abi3-{foreign}.whl").write_bytes(b"")
    _out, calls = _installer(webui, RAIIAF_WHEEL="")
    assert calls == [[f'install --upgrade "{wheel}"', "raiiaf_rs 0.1.9 (.raiiaf files)"]]
    # Only wheels for other systems: nothing installed, and the console says what to do.
    wheel.unlink()
    out, calls = _installer(webui, RAIIAF_WHEEL="")
    assert "for other systems" in out
    assert all(c[0].startswith('install "raiiaf-rs') for c in calls)
    res = webui.txt2img(seed=7, sampler_name="Euler", raiiaf={"enabled": True}, **BASE)
    art = raiiaf_rs.read(res.sidecar(res.images[0]))
    assert art.latents["initial_noise"].shape == (1, 4, 8, 8)
    assert webui.errors.reported == []


def test_without_raiiaf_rs_the_webui_loads_and_says_why(tmp_path, monkeypatch, capsys):
    # As if the installer could not install the wheel: importing raiiaf_rs fails.
    monkeypatch.setitem(sys.modules, "raiiaf_rs", None)
    webui = Webui(tmp_path)
    from modules import scripts

    assert scripts.scripts_data == []  # no script, no UI, no hooks
    assert webui.errors.reported == []  # the webui's loader saw no error
    out = capsys.readouterr().out
    assert "[raiiaf] the extension is not active" in out and "RAIIAF_WHEEL" in out
    res = webui.txt2img(seed=3, sampler_name="Euler", **BASE)
    assert len(res.images) == 1 and not res.sidecar(res.images[0]).exists()


def test_with_a_raiiaf_rs_outside_the_range_the_webui_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(raiiaf_rs, "__version__", "0.0.1")
    webui = Webui(tmp_path)
    from modules import scripts

    assert scripts.scripts_data == []
    assert webui.errors.reported == []
    out = capsys.readouterr().out
    assert "not active: raiiaf_rs 0.0.1 is installed" in out, out
