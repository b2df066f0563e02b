"""Installer hook, run by whichever host cloned this repository.

- **stable-diffusion-webui** (AUTOMATIC1111, Forge, reForge: the repository cloned into
  ``extensions/``): the webui runs this file at every start (unless ``--skip-install``) with
  its own Python and its root on ``PYTHONPATH``, so its ``launch`` module is importable.
  The ``raiiaf_rs`` wheel goes into the webui's Python through ``launch.run_pip``: first a
  wheel file for this Python (``$RAIIAF_WHEEL``, else ``wheels/raiiaf_rs-*.whl`` in this
  folder, else ``target/wheels/`` or ``target/wheels-dist/`` of a checkout that built
  them), else the ``raiiaf-rs`` requirement exactly as
  ``requirements.txt`` writes it. Nothing is installed when a fitting version is there.
- **ComfyUI-Manager** (cloned into ``custom_nodes/``): it has already run ``pip install -r
  requirements.txt``; there is nothing left to do.

No other package name is ever handed to pip.
"""

from __future__ import annotations

import glob
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# requirement.py beside this file: the one place the version range is read. The host runs
# this file as a script in its own process, so the plain module name collides with nothing.
sys.path.insert(0, HERE)
import requirement  # noqa: E402

WHEEL_GLOB = "raiiaf_rs-*.whl"
HELP = (
    "raiiaf: to install it by hand, download the raiiaf_rs wheel for your system "
    "(raiiaf_rs-<version>-cp39-abi3-<platform>.whl) from the project's releases page, then "
    "either put it into the wheels/ folder of this extension or set the environment variable "
    "RAIIAF_WHEEL to its path, and restart the webui; or run the webui's own Python with "
    '-m pip install "<the .whl file>".'
)


def webui_launch():
    """The webui's ``launch`` module, or None when another host runs this file."""
    try:
        import launch  # the webui root is on PYTHONPATH when the webui runs installers
    except ImportError:
        return None
    if callable(getattr(launch, "run_pip", None)) and callable(
        getattr(launch, "is_installed", None)
    ):
        return launch
    return None


def requirement_line() -> str | None:
    """The ``raiiaf-rs ...`` line of requirements.txt, or None (with a message)."""
    try:
        return requirement.requirement_line()
    except (OSError, RuntimeError) as e:
        print(f"raiiaf: cannot read the raiiaf-rs requirement: {e}")
        return None


def version_problem(version: str, line: str | None) -> str | None:
    if line is None:
        return None
    try:
        return requirement.version_problem(version, line)
    except RuntimeError as e:
        return str(e)


def installed_version() -> str | None:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # Python < 3.8: not a webui Python
        return None
    try:
        return version(requirement.DISTRIBUTION)
    except PackageNotFoundError:
        return None


def wheel_version(path: str) -> str | None:
    parts = os.path.basename(path).split("-")
    return parts[1] if len(parts) >= 5 and parts[0] == "raiiaf_rs" else None


def find_wheel() -> str | None:
    env = os.environ.get("RAIIAF_WHEEL", "").strip()
    if env:
        if not os.path.isfile(env):
            print(f"raiiaf: RAIIAF_WHEEL names no file: {env}")
            return None
        return env
    folders = [os.path.join(HERE, "wheels")]
    folders += [os.path.join(HERE, "target", sub) for sub in ("wheels", "wheels-dist")]
    for folder in folders:
        found = sorted(glob.glob(os.path.join(folder, WHEEL_GLOB)), key=os.path.getmtime)
        fitting = [w for w in found if wheel_fits_here(w)]
        if fitting:
            return fitting[-1]
        if found:
            print(
                f"raiiaf: the wheels in {folder} are for other systems "
                f"({', '.join(os.path.basename(w) for w in found)})"
            )
    return None


def wheel_fits_here(path: str) -> bool:
    """Whether this Python can install the wheel (its Python, ABI and platform tags)."""
    parts = os.path.basename(path)[: -len(".whl")].split("-")
    if len(parts) < 5:
        return False
    pythons, abis, platforms = parts[-3].split("."), parts[-2].split("."), parts[-1].split(".")
    try:
        from packaging.tags import sys_tags
    except ImportError:  # no packaging: judge the platform by its family
        family = {"win32": "win", "darwin": "macosx"}.get(sys.platform, "linux")
        return any(p == "any" or p.startswith(family) or family in p for p in platforms)
    wanted = {(t.interpreter, t.abi, t.platform) for t in sys_tags()}
    return any((i, a, p) in wanted for i in pythons for a in abis for p in platforms)


def install_for_webui(launch) -> bool:
    """True when raiiaf_rs is (now) installed at a fitting version."""
    line = requirement_line()
    have = installed_version()
    wheel = find_wheel()
    if wheel is not None:
        version = wheel_version(wheel)
        if version is None:
            print(f"raiiaf: {os.path.basename(wheel)} is not a raiiaf_rs wheel; not installed")
            print(HELP)
            return False
        problem = version_problem(version, line)
        if problem is not None:
            print(f"raiiaf: the wheel {os.path.basename(wheel)} does not fit: {problem}")
            print(HELP)
            return False
        if have == version:
            return True
        return _pip(
            launch, f'install --upgrade "{wheel}"', os.path.basename(wheel), f"raiiaf_rs {version}"
        )
    if have is not None and (line is None or version_problem(have, line) is None):
        return True
    if line is None:
        print(HELP)
        return False
    return _pip(launch, f'install "{line}"', line, line)


def _pip(launch, args: str, what: str, label: str) -> bool:
    """``pip <args>`` through the webui's pip; False (with what to do) when it fails."""
    try:
        launch.run_pip(args, f"{label} (.raiiaf files)")
    except Exception as e:  # the webui's run_pip raises RuntimeError with pip's output
        print(f"raiiaf: pip could not install {what}: {e}")
        print(HELP)
        return False
    return True


def main() -> int:
    launch = webui_launch()
    if launch is None:
        # ComfyUI-Manager (or a plain `python install.py`): requirements.txt is the install.
        print("raiiaf: not run by the webui; requirements.txt installs raiiaf-rs here")
        return 0
    install_for_webui(launch)
    return 0  # a failed install must not stop the webui; the script says what is missing


if __name__ == "__main__":
    sys.exit(main())
