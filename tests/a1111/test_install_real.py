"""A user's install into a webui, with the real parts: a fresh Python standing for the
webui's (it sees the webui's dependencies, torch and k-diffusion included, but not
raiiaf_rs), this repository `git clone`d into the webui's extensions/ folder, and the
webui's installer step running the clone's install.py, whose ``launch.run_pip`` really
runs pip (``--no-index``: no network, no compiler). Then the webui, started in that
Python, loads the extension and a generation writes a verified .raiiaf."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from userenv import local_wheel, python_without_raiiaf_rs

from .harness import HERE, REPO, install_paths

GENERATE = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from a1111.harness import Webui
root, ext = Path({root!r}), Path({ext!r})
webui = Webui(root, extension=ext)
res = webui.txt2img(seed=5, sampler_name="Euler", prompt="a cat", steps=4, width=64,
                    height=64, raiiaf={{"enabled": True}}, outdir={outdir!r})
sidecar = res.sidecar(res.images[0])
try:
    import raiiaf_rs
except ImportError:
    raiiaf_rs = None
print("RAIIAF_AT", raiiaf_rs and raiiaf_rs.__file__)
if sidecar.exists():
    art = raiiaf_rs.read(sidecar, verify=True)
    print("SIDECAR", list(art.latents["initial_noise"].shape))
else:
    print("NO SIDECAR")
"""


def _generate(py: Path, root: Path, ext: Path, outdir: str) -> str:
    code = GENERATE.format(tests=str(HERE.parent), root=str(root), ext=str(ext), outdir=outdir)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    out = subprocess.run(
        [str(py), "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_install_from_a_clone_with_the_webuis_pip(tmp_path, monkeypatch):
    if sys.platform.startswith("win"):
        pytest.fail("this test drives a POSIX venv layout (bin/python)")
    install_paths()
    from modules import launch_utils

    # Only the wheel given here may be found: no extra pip sources from the environment.
    for key in [k for k in os.environ if k.startswith("PIP_")]:
        monkeypatch.delenv(key)

    wheel = local_wheel()
    py = python_without_raiiaf_rs(tmp_path / "webui-python")  # raiiaf_rs not installed yet
    root = tmp_path / "webui"
    ext = root / "extensions" / "raiiaf-rs"
    subprocess.run(
        ["git", "clone", "--quiet", str(REPO), str(ext)], check=True, capture_output=True
    )
    env = {launch_utils.PIP_REAL_ENV: "1", "RAIIAF_WHEEL": "", "PYTHONNOUSERSITE": "1"}
    # Started before the install: the extension says what is missing, the webui runs.
    before = _generate(py, root, ext, "before")
    assert "[raiiaf] the extension is not active" in before and "NO SIDECAR" in before
    # No wheel and no package index: pip fails, the console says what to do.
    out = launch_utils.run_extensions_installers(str(root / "extensions"), env, str(py))
    assert "pip could not install raiiaf-rs" in out["raiiaf-rs"]
    assert "wheels/ folder" in out["raiiaf-rs"] and "RAIIAF_WHEEL" in out["raiiaf-rs"]
    # The release wheel in the clone's wheels/ folder: installed through the webui's pip.
    (ext / "wheels").mkdir()
    shutil.copy(wheel, ext / "wheels" / wheel.name)
    launch_utils.run_extensions_installers(str(root / "extensions"), env, str(py))
    after = _generate(py, root, ext, "after")
    (located,) = [line for line in after.splitlines() if line.startswith("RAIIAF_AT")]
    assert str(tmp_path / "webui-python") in located  # the installed wheel, not this tree
    assert "SIDECAR [1, 4, 8, 8]" in after, after
    # The next start: a fitting version is installed, pip is not run again.
    launch_utils.pip_calls.clear()
    log = tmp_path / "calls.jsonl"
    launch_utils.run_extensions_installers(
        str(root / "extensions"), {**env, launch_utils.PIP_LOG_ENV: str(log)}, str(py)
    )
    assert not log.exists() or log.read_text() == ""
