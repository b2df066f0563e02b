"""A user's Python, for the tests that install this project the way users do.

- :func:`local_wheel`: the wheel built from this tree. ``make test`` builds the release's
  manylinux2014 x86_64 wheel once (its `wheel-test` step) and hands it to every install
  test through ``$RAIIAF_WHEEL_DIR``; run alone, a test builds one with
  ``maturin build --release`` (reusing the release artefacts of ``maturin develop``),
  once per test process.
- :func:`python_without_raiiaf_rs`: a fresh venv standing for a UI's own Python. It sees
  every package of the project's .venv (torch, ComfyUI's and the webui's dependencies)
  through symlinks, but not raiiaf_rs, which the test then installs as users do.
"""

from __future__ import annotations

import atexit
import functools
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@functools.cache
def local_wheel() -> Path:
    """The raiiaf_rs abi3 wheel of this tree for this machine's platform."""
    machine = platform.machine()
    given = os.environ.get("RAIIAF_WHEEL_DIR")
    if given:
        # The folder may hold other platforms' wheels too (`make wheels`).
        found = sorted(Path(given).glob(f"raiiaf_rs-*-abi3-*linux*_{machine}.whl"))
        if not found:
            raise FileNotFoundError(f"no raiiaf_rs wheel for {machine} in RAIIAF_WHEEL_DIR={given}")
        return max(found, key=lambda p: p.stat().st_mtime)
    out = Path(tempfile.mkdtemp(prefix="raiiaf-wheel-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    maturin = str(Path(sys.executable).with_name("maturin"))
    subprocess.run(
        [maturin, "build", "--release", "--quiet", "--out", str(out)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("raiiaf_rs-*-abi3-*.whl")
    return wheel


def site_dirs(python: str | os.PathLike | None) -> list[Path]:
    """The site-packages folders of ``python`` (default: this one), first one first."""
    if python is None:
        return [Path(sysconfig.get_paths()["purelib"])]
    code = "import sys; print('\\n'.join(p for p in sys.path if p.endswith('site-packages')))"
    out = subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True)
    return [Path(line) for line in out.stdout.splitlines() if line]


#: Left out of such a venv: raiiaf_rs (and its editable-install .pth), the venv's own pip, and
#: the .pth with which a host's venv layers .venv's packages (dev/setup_comfyui_latest.sh):
#: the folders it would add are linked in one by one instead, without raiiaf_rs.
SKIPPED = ("raiiaf_rs", "_raiiaf_project_venv", "pip", "_distutils_hack", "distutils-precedence")


def python_without_raiiaf_rs(root: Path, like: str | os.PathLike | None = None) -> Path:
    """A fresh venv at ``root`` (POSIX layout) with the packages of the Python ``like``
    (default: this one, .venv's; a host's own Python may layer its packages on .venv's) but
    raiiaf_rs; returns its python."""
    venv.create(root, with_pip=True, symlinks=True)
    py = root / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # One version of each project: the venv's own (pip), else the first folder's, as imported.
    projects = {e.name.lower().split("-", 1)[0] for e in site.glob("*.dist-info")}
    for ours in site_dirs(like):
        for entry in sorted(ours.iterdir()):
            name = entry.name.lower()
            # raiiaf_rs (and its editable-install .pth) stays out; the venv has its own pip.
            if name.startswith(SKIPPED):
                continue
            project = name.split("-", 1)[0] if name.endswith(".dist-info") else None
            if project in projects or (site / entry.name).exists():
                continue
            if project:
                projects.add(project)
            (site / entry.name).symlink_to(entry)
    probe = subprocess.run([str(py), "-c", "import raiiaf_rs"], capture_output=True)
    assert probe.returncode != 0, "raiiaf_rs is importable in the fresh venv"
    return py
