"""The ``raiiaf`` command, run as an installed console script would be."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import raiiaf_rs
from conftest import VECTORS, noise


def run(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("raiiaf", path=str(__import__("pathlib").Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "raiiaf_rs.cli"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True)


@pytest.fixture()
def sample(tmp_path, png_bytes):
    path = tmp_path / "sample.raiiaf"
    raiiaf_rs.write(
        path,
        {"initial_noise": noise((1, 4, 8, 8), 1), "final_latent": noise((1, 4, 8, 8), 2)},
        png_bytes,
        {"prompt": "a fox", "model_name": "tiny", "generation_settings": {"seed": 5, "steps": 4}},
        environment=raiiaf_rs.environment_document([("python", "name=python;version=3.11.7")]),
        codec="compact",
    )
    return path


def test_inspect(sample):
    out = run("inspect", str(sample))
    assert out.returncode == 0, out.stderr
    for text in (
        "format 1.1",
        "initial_noise",
        "final_latent",
        "shuffle-zstd",
        "48x32 PNG",
        "prompt: a fox",
        "seed=5",
        "name=python;version=3.11.7",
    ):
        assert text in out.stdout, text
    doc = json.loads(run("inspect", "--json", str(sample)).stdout)
    assert doc["header"]["version_minor"] == 1
    assert len(doc["manifest"]["raiiaf_metadata"]["chunks"]) == 4


def test_verify_exit_codes(sample, tmp_path):
    ref = VECTORS / "reference-1.1.0" / "v1_f32_zfp_png.raiiaf"
    ok = run("verify", str(sample), str(ref))
    assert ok.returncode == 0 and ok.stdout.count("OK") == 2, ok.stdout
    data = bytearray(sample.read_bytes())
    data[40] ^= 1
    bad = tmp_path / "bad.raiiaf"
    bad.write_bytes(bytes(data))
    res = run("verify", str(sample), str(bad))
    assert res.returncode == 1
    assert "FAIL" in res.stdout and "bad.raiiaf" in res.stdout
    assert run("verify").returncode == 2  # usage error


def test_extract(sample, tmp_path, png_bytes):
    out_dir = tmp_path / "out"
    res = run("extract", str(sample), "-o", str(out_dir))
    assert res.returncode == 0, res.stderr
    assert np.load(out_dir / "initial_noise.npy").tobytes() == noise((1, 4, 8, 8), 1).tobytes()
    assert (out_dir / "image.png").read_bytes() == png_bytes
    assert json.loads((out_dir / "metadata.json").read_text())["prompt"] == "a fox"
    assert (out_dir / "environment.json").exists()
    again = run("extract", str(sample), "-o", str(out_dir))
    assert again.returncode == 1 and "overwrite" in again.stderr
    assert run("extract", str(sample), "-o", str(out_dir), "--overwrite").returncode == 0


def test_extract_never_lets_one_latent_replace_another(tmp_path):
    # "a/b", "a_b" and "A_B" sanitise to the same file name (the last only on
    # case-insensitive file systems); each gets its own file, also with --overwrite.
    latents = {"a/b": noise((4,), 1), "a_b": noise((4,), 2), "A_B": noise((4,), 3)}
    src = tmp_path / "c.raiiaf"
    raiiaf_rs.write(src, latents, environment=None)
    out_dir = tmp_path / "o"
    for extra in ([], ["--overwrite"]):
        res = run("extract", str(src), "-o", str(out_dir), *extra)
        assert res.returncode == 0, res.stderr
    files = {"a_b.npy": "a/b", "a_b-2.npy": "a_b", "A_B-3.npy": "A_B"}
    assert sorted(p.name for p in out_dir.glob("*.npy")) == sorted(files)
    for file, name in files.items():
        assert np.load(out_dir / file).tobytes() == latents[name].tobytes()
        assert f"{file} (latent {name!r})".replace("'", '"') in res.stdout or name + ".npy" == file
    # An existing target stops the extraction before anything is written.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "manifest.json").write_text("mine")
    again = run("extract", str(src), "-o", str(fresh))
    assert again.returncode == 1 and "overwrite" in again.stderr
    assert sorted(p.name for p in fresh.iterdir()) == ["manifest.json"]


def test_extract_widens_bfloat16(tmp_path):
    import ml_dtypes  # a test dependency: missing, the test fails

    a = noise((2, 3)).astype(ml_dtypes.bfloat16)
    raiiaf_rs.write(tmp_path / "b.raiiaf", {"n": a})
    assert run("extract", str(tmp_path / "b.raiiaf"), "-o", str(tmp_path / "o")).returncode == 0
    back = np.load(tmp_path / "o" / "n.npy")
    assert back.dtype == np.float32 and np.array_equal(back, a.astype(np.float32))


def test_convert_keeps_contents(sample, tmp_path):
    raw = tmp_path / "raw.raiiaf"
    res = run("convert", str(sample), "--codec", "raw", "-o", str(raw))
    assert res.returncode == 0, res.stderr
    a, b = raiiaf_rs.read(sample), raiiaf_rs.read(raw)
    assert b.version == "1.0"
    assert {k: v.tobytes() for k, v in a.latents.items()} == {
        k: v.tobytes() for k, v in b.latents.items()
    }
    assert (a.image, a.metadata, a.environment) == (b.image, b.metadata, b.environment)
    bad = run("convert", str(sample), "--codec", "nope", "-o", str(tmp_path / "x.raiiaf"))
    assert bad.returncode == 1 and "unknown codec" in bad.stderr


def test_errors_are_one_clear_line(tmp_path):
    junk = tmp_path / "junk.raiiaf"
    junk.write_bytes(b"hello world")
    res = run("inspect", str(junk))
    assert res.returncode == 1
    assert res.stderr.strip().startswith("raiiaf: not a .raiiaf file")
    missing = run("inspect", str(tmp_path / "nope.raiiaf"))
    assert missing.returncode == 1 and "No such file" in missing.stderr


def test_help_lists_the_python_commands_too():
    """`query` and `serve` run in Python; `raiiaf --help` (clap, in Rust) lists them with the
    rest, and the Python entry point runs them."""
    out = run("--help")
    assert out.returncode == 0
    commands = [line.split()[0] for line in out.stdout.splitlines() if line.startswith("  ")]
    assert {"index", "query", "serve", "convert"} <= set(commands), out.stdout
    serve = run("serve", "--help")
    assert serve.returncode == 0 and "--port" in serve.stdout, serve.stdout + serve.stderr
