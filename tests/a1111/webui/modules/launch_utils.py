"""Version facts and the installer helpers (``launch.is_installed`` / ``run_pip``), and
``run_extensions_installers``: each extension's ``install.py`` run in a child process of
this Python with the webui root on ``PYTHONPATH`` and the webui root as the working
directory, as the webui's launcher does at every start."""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import subprocess
import sys

#: What ``git describe --tags`` / ``git rev-parse HEAD`` return; tests set these.
TAG = "v1.10.1"
COMMIT = "82a973c04367123ae98bd9abdf80d9eda9b910e2"
pip_calls: list[tuple[str, str]] = []
#: A child process (an installer) appends its pip calls here as JSON lines.
PIP_LOG_ENV = "HARNESS_PIP_LOG"
PIP_REAL_ENV = "HARNESS_PIP_REAL"
WEBUI_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def git_tag() -> str:
    return TAG


def commit_hash() -> str:
    return COMMIT


def is_installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def run_pip(command: str, desc: str | None = None, live: bool = False) -> str:
    """Records the call; with ``HARNESS_PIP_REAL=1`` also runs it as the webui does
    (``<this python> -m pip <command> --prefer-binary``; here always with ``--no-index``:
    nothing from the network), a failure raising RuntimeError with pip's output."""
    pip_calls.append((command, desc or ""))
    log = os.environ.get(PIP_LOG_ENV)
    if log:
        with open(log, "a", encoding="utf8") as f:
            f.write(json.dumps([command, desc or ""]) + "\n")
    if os.environ.get(PIP_REAL_ENV) != "1":
        return ""
    args = [sys.executable, "-m", "pip", *shlex.split(command), "--prefer-binary", "--no-index"]
    out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"Couldn't install {desc}.\n{out.stdout}\n{out.stderr}")
    return out.stdout


def run_extension_installer(
    extension_dir: str, env_extra: dict | None = None, python: str | None = None
) -> str:
    installer = os.path.join(extension_dir, "install.py")
    if not os.path.isfile(installer):
        return ""
    env = os.environ.copy()
    env["PYTHONPATH"] = f"{WEBUI_ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}"
    env.update(env_extra or {})
    out = subprocess.run(
        [python or sys.executable, installer],
        cwd=WEBUI_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if out.returncode != 0:
        raise RuntimeError(f"installer of {extension_dir} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout.strip()


def run_extensions_installers(
    extensions_dir: str, env_extra: dict | None = None, python: str | None = None
) -> dict:
    """{extension folder name: installer output} for every folder with an install.py."""
    outputs = {}
    if not os.path.isdir(extensions_dir):
        return outputs
    for name in sorted(os.listdir(extensions_dir)):
        path = os.path.join(extensions_dir, name)
        if os.path.isdir(path):
            outputs[name] = run_extension_installer(path, env_extra, python)
    return outputs
