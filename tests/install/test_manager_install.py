"""A user's install through ComfyUI-Manager, simulated with the real parts.

ComfyUI-Manager (and `comfy node install`) `git clone`s the pack into custom_nodes/ and
runs `pip install -r requirements.txt` in ComfyUI's Python. Here: a fresh venv stands
for the user's ComfyUI Python (it sees ComfyUI's dependencies, torch included, but not
this project's raiiaf_rs), the pack is a `git clone` of this repository's committed
HEAD, and pip installs the wheel built from this tree, from a local folder
(`--find-links`, `--no-index`: no compiler, no sdist, nothing from the network).

Before the install, the real ComfyUI loads the pack without nodes and logs the exact
command; after it, the nodes are there and a generation writes its .raiiaf file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from userenv import local_wheel, python_without_raiiaf_rs

REPO = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("manager_driver.py")
RAIIAF_NODES = {"RaiiafCaptureNoise", "RaiiafLoad", "RaiiafReplayNoise", "RaiiafSaveImage"}


def run_driver(py: Path, base: Path, pack: Path, *extra: str) -> dict:
    proc = subprocess.run(
        [str(py), str(DRIVER), str(base), str(pack), *extra],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_manager_install_from_requirements(tmp_path):
    wheel = local_wheel()
    # The pack as the Manager gets it: a clone of the committed repository.
    pack = tmp_path / "clone" / "raiiaf-rs"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(pack)], check=True)
    # The user's ComfyUI Python: the one the ComfyUI under test runs with (COMFYUI_PYTHON).
    py = python_without_raiiaf_rs(tmp_path / "user-venv", like=os.environ.get("COMFYUI_PYTHON"))

    # 1. Cloned, requirements not installed yet: no nodes, one clear line, ComfyUI fine.
    before = run_driver(py, tmp_path / "base1", pack)
    assert before["raiiaf_nodes"] == [] and before["core_nodes"] and before["alive"]
    assert "IMPORT FAILED" not in before["log"]
    hint = [line for line in before["log"].splitlines() if "[raiiaf] nodes not loaded" in line]
    assert len(hint) == 1, before["log"][-3000:]
    # The command names this Python and the pack's requirements.txt where ComfyUI loaded it.
    installed_at = tmp_path / "base1" / "custom_nodes" / "raiiaf-rs" / "requirements.txt"
    assert f'"{py}" -m pip install -r "{installed_at}"' in hint[0], hint[0]

    # 2. What the Manager runs. No compiler may be needed: CC points nowhere.
    wheels = tmp_path / "index"
    wheels.mkdir()
    shutil.copy(wheel, wheels)
    requirements = str(pack / "requirements.txt")
    pip = subprocess.run(
        [
            str(py),
            "-m",
            "pip",
            "install",
            "--no-index",
            "--find-links",
            str(wheels),
            "-r",
            requirements,
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, CC="/nonexistent/cc", CXX="/nonexistent/c++"),
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert wheel.name in pip.stdout or "raiiaf-rs" in pip.stdout.lower()
    where = subprocess.run(
        [str(py), "-c", "import raiiaf_rs; print(raiiaf_rs.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(tmp_path / "user-venv") in where, where  # the wheel, not the tree's package

    # 3. Restarted: the nodes are there and a generation writes its .raiiaf.
    after = run_driver(py, tmp_path / "base2", pack, "generate")
    assert set(after["raiiaf_nodes"]) >= RAIIAF_NODES, after["log"][-3000:]
    assert "nodes not loaded" not in after["log"] and "IMPORT FAILED" not in after["log"]
    assert any(f.endswith(".raiiaf") for f in after["files"]), after["files"]
    assert after["alive"]
    (sidecar,) = (tmp_path / "base2" / "output").glob("mgr_*.raiiaf")
    checked = subprocess.run(
        [str(py), "-m", "raiiaf_rs.cli", "verify", str(sidecar)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-v"]))
