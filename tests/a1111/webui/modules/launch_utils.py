"""Version facts and the installer helpers (``launch.is_installed`` / ``run_pip``)."""

from __future__ import annotations

import importlib.util

#: What ``git describe --tags`` / ``git rev-parse HEAD`` return; tests set these.
TAG = "v1.10.1"
COMMIT = "82a973c04367123ae98bd9abdf80d9eda9b910e2"
pip_calls: list[tuple[str, str]] = []


def git_tag() -> str:
    return TAG


def commit_hash() -> str:
    return COMMIT


def is_installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def run_pip(command: str, desc: str | None = None, live: bool = False) -> None:
    pip_calls.append((command, desc or ""))
