"""What the install paths read, checked against the rules of the tools that read it.

ComfyUI-Manager, `comfy node install` and the Comfy registry read pyproject.toml's
[project] and [tool.comfy] tables and install requirements.txt (never [project]
dependencies); the webui's install.py and the pack's start-up check read the same
requirements.txt line through requirement.py.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import raiiaf_rs
import tomllib

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import requirement  # noqa: E402  (the repository root's requirement.py)

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
COMFY = PYPROJECT["tool"]["comfy"]
WORKSPACE = tomllib.loads((ROOT / "Cargo.toml").read_text(encoding="utf-8"))["workspace"]
# Version and licence are set once for the Cargo workspace; every crate inherits them.
CARGO = WORKSPACE["package"]
CRATES = {
    member: tomllib.loads((ROOT / member / "Cargo.toml").read_text(encoding="utf-8"))["package"]
    for member in WORKSPACE["members"]
}


def test_registry_node_id_follows_the_registry_rules():
    name = PROJECT["name"]
    assert len(name) < 100
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9._-]*", name), "alphanumerics, - _ . only"
    assert not re.search(r"[._-]{2}", name), "no consecutive special characters"
    assert "comfyui" not in name.lower()


def test_one_version_everywhere():
    version = PROJECT["version"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), "the registry wants X.Y.Z"
    assert CARGO["version"] == version
    for member, package in CRATES.items():
        assert package["version"] == {"workspace": True}, member
    assert raiiaf_rs.__version__ == version
    # The pack's requirement admits the wheel built from the same commit.
    assert requirement.version_problem(version) is None


def test_registry_fields():
    assert PROJECT["description"].strip()
    assert PROJECT["license"] == {"file": "LICENSE"}
    assert "MIT License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert CARGO["license"] == "MIT"
    for member, package in CRATES.items():
        assert package["license"] == {"workspace": True}, member
    assert PROJECT["urls"]["Repository"].startswith("https://github.com/")
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", COMFY["PublisherId"])
    assert COMFY["DisplayName"].strip()
    # The icon URL names a file of this repository's main branch.
    prefix = PROJECT["urls"]["Repository"].replace("github.com", "raw.githubusercontent.com")
    icon = COMFY["Icon"]
    assert icon.startswith(prefix + "/main/"), icon
    assert (ROOT / icon.removeprefix(prefix + "/main/")).is_file()


def test_requirements_txt_names_only_the_wheel():
    lines = [
        line.split("#", 1)[0].strip()
        for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    ]
    lines = [line for line in lines if line]
    # Only this project's own wheel: the hosts already have numpy (its one dependency)
    # and torch; anything else listed here would be installed into users' ComfyUI.
    assert lines == [requirement.requirement_line()]
    assert lines[0].startswith(PROJECT["name"])
    # A range with an upper bound: a future incompatible wheel is never picked up.
    assert "<" in lines[0] and ">=" in lines[0]


@pytest.mark.parametrize(
    ("installed", "ok"),
    [("0.1.0", True), ("0.1.7", True), ("0.0.9", False), ("0.2.0", False), ("1.0.0", False)],
)
def test_version_check(installed, ok):
    problem = requirement.version_problem(installed, "raiiaf-rs>=0.1.0,<0.2")
    assert (problem is None) is ok
    if not ok:
        assert installed in problem and "raiiaf-rs>=0.1.0,<0.2" in problem


def test_missing_wheel_message_says_what_to_run(monkeypatch):
    monkeypatch.setitem(sys.modules, "raiiaf_rs", None)  # import raiiaf_rs -> ImportError
    message = requirement.problem()
    assert message is not None
    assert sys.executable in message
    assert "-m pip install -r" in message and str(ROOT / "requirements.txt") in message
