"""Structure of .github/workflows/release.yml, which cannot run here (GitHub-hosted runners).

Checks what a release depends on: abi3 wheels for the five platform targets (manylinux2014
x86_64 and aarch64, Windows x86_64, macOS x86_64 and arm64) each on a runner of its own OS,
an sdist, a smoke test of every wheel on the oldest and newest CPython, and a publish job that
runs only on `v*` tags, after everything else, with trusted publishing (`id-token: write`,
pypa/gh-action-pypi-publish, no token or password anywhere).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml  # PyYAML, in .venv through huggingface_hub and transformers

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"
TARGETS = {
    "x86_64-unknown-linux-gnu": "ubuntu-",
    "aarch64-unknown-linux-gnu": "ubuntu-",
    "x86_64-pc-windows-msvc": "windows-",
    "x86_64-apple-darwin": "macos-",
    "aarch64-apple-darwin": "macos-",
}


@pytest.fixture(scope="module")
def wf() -> dict:
    doc = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    # YAML 1.1 reads the bare key `on` as the boolean True.
    doc["on"] = doc.pop(True, doc.get("on"))
    return doc


def steps_using(job: dict, action: str) -> list[dict]:
    return [s for s in job["steps"] if s.get("uses", "").split("@")[0] == action]


def run_text(job: dict) -> str:
    return "\n".join(s.get("run", "") for s in job["steps"])


def test_triggers_and_default_permissions(wf):
    assert "v*" in wf["on"]["push"]["tags"]
    assert wf["permissions"] == {"contents": "read"}


def test_wheels_cover_the_five_platform_targets(wf):
    include = wf["jobs"]["wheels"]["strategy"]["matrix"]["include"]
    targets = {e["target"]: e for e in include}
    assert set(targets) == set(TARGETS), sorted(targets)
    assert len(include) == len(TARGETS)
    for target, runner_prefix in TARGETS.items():
        entry = targets[target]
        assert entry["runner"].startswith(runner_prefix), entry
        if "linux" in target:
            assert str(entry["manylinux"]) == "2014", entry
            # a native runner, so the smoke test can run the wheel where it was built
            assert ("arm" in entry["runner"]) == target.startswith("aarch64"), entry


def test_wheels_are_abi3_release_builds(wf):
    job = wf["jobs"]["wheels"]
    (build,) = steps_using(job, "PyO3/maturin-action")
    args = build["with"]["args"].split()
    assert "--release" in args
    assert build["with"]["manylinux"] == "${{ matrix.manylinux || 'auto' }}"
    # no interpreter named: the abi3 feature (pyproject.toml) makes one wheel for all CPythons
    assert not {"-i", "--interpreter", "--find-interpreter"} & set(args)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "abi3" in pyproject["tool"]["maturin"]["features"]
    assert "tests/wheel/check_wheel.py" in run_text(job)
    (upload,) = steps_using(job, "actions/upload-artifact")
    assert upload["with"]["name"] == "wheel-${{ matrix.name }}"


def test_sdist_is_built_and_installed(wf):
    job = wf["jobs"]["sdist"]
    (build,) = steps_using(job, "PyO3/maturin-action")
    assert build["with"]["command"] == "sdist"
    text = run_text(job)
    assert "pip install dist/raiiaf_rs-*.tar.gz" in text
    assert "tests/wheel/roundtrip.py" in text
    (upload,) = steps_using(job, "actions/upload-artifact")
    assert upload["with"]["name"] == "sdist"


def test_every_wheel_is_smoke_tested_on_old_and_new_python(wf):
    wheels = {e["name"]: e for e in wf["jobs"]["wheels"]["strategy"]["matrix"]["include"]}
    job = wf["jobs"]["smoke"]
    assert job["needs"] == "wheels"
    seen: dict[str, set[str]] = {}
    for e in job["strategy"]["matrix"]["include"]:
        assert e["runner"] == wheels[e["name"]]["runner"], e
        seen.setdefault(e["name"], set()).add(str(e["python"]))
    assert set(seen) == set(wheels)
    for name, versions in seen.items():
        assert "3.13" in versions, name
        assert versions & {"3.9", "3.10"}, name
    text = run_text(job)
    assert "--no-index" in text and "--find-links dist" in text
    assert "tests/wheel/roundtrip.py" in text
    assert (ROOT / "tests" / "wheel" / "roundtrip.py").is_file()


def test_publish_uses_trusted_publishing_on_tags_only(wf):
    job = wf["jobs"]["publish"]
    assert set(job["needs"]) == {"wheels", "sdist", "smoke"}
    assert re.fullmatch(r"startsWith\(github\.ref, 'refs/tags/v'\)", job["if"].strip())
    assert job["permissions"] == {"id-token": "write"}
    (publish,) = steps_using(job, "pypa/gh-action-pypi-publish")
    assert not {"password", "user"} & set(publish.get("with", {}))
    assert job["environment"]["name"] == "pypi"
    (download,) = steps_using(job, "actions/download-artifact")
    assert download["with"]["merge-multiple"] is True
    text = WORKFLOW.read_text(encoding="utf-8")
    assert "secrets." not in text and "PYPI_API_TOKEN" not in text


def test_every_action_is_pinned(wf):
    for name, job in wf["jobs"].items():
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@[\w./-]+", step["uses"]), (name, step)
