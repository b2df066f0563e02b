"""Environment capture, drift detection, model fingerprints and privacy."""

from __future__ import annotations

import contextlib
import getpass
import io
import json
import os
import re
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import raiiaf_rs
import zstandard
from conftest import noise
from raiiaf_rs import environment

NO_NVIDIA = not Path("/proc/driver/nvidia").exists()


def components(doc):
    return {c["component_id"]: c["cononical_str"] for c in doc["components"]}


@pytest.mark.skipif(not NO_NVIDIA, reason="checks the GPU-less path")
def test_capture_without_a_gpu():
    env = environment.capture()
    assert "gpu" not in components(env)
    info = environment.hardware_info()
    assert info["gpu"] == [] and info["cpu_cores"] >= 1 and info["ram_gb"] > 0
    assert info["machine_name"] == ""


def test_components_and_digests():
    torch = pytest.importorskip("torch")
    env = environment.capture(
        host={"app": "ComfyUI", "version": "0.3.75"},
        attention="sdpa",
        dtypes={"unet": "float16"},
        noise_device="cpu",
    )
    comps = components(env)
    version = torch.__version__.split("+")[0]
    assert comps["torch"] == f"name=torch;version={version};cuda={torch.version.cuda}"
    assert comps["python"] == f"name=python;version={sys.version.split()[0]}"
    assert comps["host"] == "name=host;app=ComfyUI;version=0.3.75"
    assert comps["attention"] == "name=attention;backend=sdpa"
    assert comps["dtype"] == "name=dtype;unet=float16"
    assert comps["noise_device"] == "name=noise_device;device=cpu"
    # Fields are sorted by name, so the string does not depend on call order.
    assert comps["determinism"] == (
        "name=determinism;cudnn_benchmark=False;cudnn_deterministic=False;"
        f"deterministic_algorithms={torch.are_deterministic_algorithms_enabled()}"
    )
    import hashlib

    for c in env["components"]:
        assert (
            c["component_sha256_digest"] == hashlib.sha256(c["cononical_str"].encode()).hexdigest()
        )
    assert [c["component_id"] for c in env["components"]][:5] == [
        "torch",
        "numpy",
        "python",
        "cuda",
        "os",
    ]


def test_files_record_the_environment_and_identical_ones_do_not_drift(tmp_path):
    path = tmp_path / "e.raiiaf"
    raiiaf_rs.write(path, {"initial_noise": noise((1, 4, 8, 8))})
    art = raiiaf_rs.read(path)
    assert art.environment == environment.capture()
    assert art.metadata["hardware_info"] == environment.hardware_info()
    assert raiiaf_rs.drift(art) == []
    assert raiiaf_rs.drift(path) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        raiiaf_rs.read(path, warn_drift=True)


def test_synthetic_drift_is_classified_and_warned(tmp_path):
    now = environment.capture(attention="sdpa")
    old = {"env_version": 1, "components": []}
    for c in now["components"]:
        c = dict(c)
        if c["component_id"] == "attention":
            c["cononical_str"] = "name=attention;backend=xformers"
        if c["component_id"] == "ram":
            c["cononical_str"] = "name=ram;total_gb=1.0"
        if c["component_id"] == "numpy":
            continue
        c["component_sha256_digest"] = (
            __import__("hashlib").sha256(c["cononical_str"].encode()).hexdigest()
        )
        old["components"].append(c)
    old["components"].append(
        raiiaf_rs.environment_document([("gpu", "name=gpu;model=RTX 4090")])["components"][0]
    )
    path = tmp_path / "old.raiiaf"
    raiiaf_rs.write(path, {"n": noise((4,))}, environment=old)

    drifts = {d.component: d for d in raiiaf_rs.drift(path, now)}
    assert set(drifts) == {"attention", "ram", "numpy", "gpu"}
    assert drifts["attention"].kind == "changed" and drifts["attention"].affects_pixels
    assert drifts["ram"].kind == "changed" and not drifts["ram"].affects_pixels
    assert drifts["gpu"].kind == "missing_now" and drifts["gpu"].affects_pixels
    assert drifts["numpy"].kind == "not_in_file"

    with pytest.warns(UserWarning) as record:
        environment.warn_drift(list(drifts.values()))
    messages = [str(w.message) for w in record]
    assert (
        "Environment component 'attention' differs:\n"
        "  File: name=attention;backend=xformers\n"
        "  Current: name=attention;backend=sdpa"
    ) in messages
    assert "Environment component 'gpu' missing in current system" in messages
    assert len(messages) == 3  # nothing about numpy, which the file just did not record


def test_reference_decoder_reads_our_environment_without_false_drift(tmp_path):
    raiiaf = pytest.importorskip("raiiaf")
    import torch  # noqa: F401  (the reference imports it too; we record it like the reference)

    path = tmp_path / "r.raiiaf"
    raiiaf_rs.write(path, {"initial_noise": noise((1, 4, 8, 8))})
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        decoded = raiiaf.raiiafFileHandler().file_decoder(str(path))
    ids = [c["component_id"] for c in decoded["chunks"]["env"].components]
    assert ids[:5] == ["torch", "numpy", "python", "cuda", "os"]
    messages = [str(w.message) for w in record]
    # The five components both sides record are identical: no "differs" warning.
    assert not [m for m in messages if "differs" in m], messages
    assert decoded["metadata"]["raiiaf_metadata"]["model_info"]["hardware_info"]["cpu_cores"] >= 1


def test_fingerprints_are_cached_and_refreshed(tmp_path):
    model = tmp_path / "models" / "v1-5-pruned.safetensors"
    model.parent.mkdir()
    model.write_bytes(os.urandom(3 << 20))
    cache = tmp_path / "cache"
    first = raiiaf_rs.fingerprint(model, cache_dir=cache)
    import hashlib

    assert first.sha256 == hashlib.sha256(model.read_bytes()).hexdigest()
    assert not first.cached and first.short == first.sha256[:10]
    assert first.as_metadata() == {
        "name": "v1-5-pruned.safetensors",
        "sha256": first.sha256,
        "short_hash": first.short,
    }
    assert raiiaf_rs.fingerprint(model, cache_dir=cache).cached
    st = model.stat()
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    again = raiiaf_rs.fingerprint(model, cache_dir=cache)
    assert not again.cached and again.sha256 == first.sha256
    assert raiiaf_rs.fingerprint(model, cache_dir=cache).cached
    with pytest.raises(FileNotFoundError):
        raiiaf_rs.fingerprint(tmp_path / "nope.safetensors", cache_dir=cache)


def _all_text(path: Path) -> bytes:
    """The file's bytes plus every zstd frame in it, decompressed."""
    data = path.read_bytes()
    out = [data]
    d = zstandard.ZstdDecompressor()
    start = 0
    while (i := data.find(b"\x28\xb5\x2f\xfd", start)) >= 0:
        with contextlib.suppress(zstandard.ZstdError):
            out.append(d.decompressobj().decompress(data[i:]))
        start = i + 1
    return b"\n".join(out)


def test_files_leak_no_user_home_host_or_path():
    home = Path.home()
    workdir = home / ".raiiaf-privacy-test"
    workdir.mkdir(exist_ok=True)
    try:
        path = workdir / "shared.raiiaf"
        raiiaf_rs.write(
            path, {"initial_noise": noise((1, 4, 8, 8))}, metadata={"prompt": "p"}, overwrite=True
        )
        text = _all_text(path)
        assert b"name=os;version=" in text  # the ENVC was really decompressed
        art = raiiaf_rs.read(path)
        said = json.dumps([art.metadata, art.environment], ensure_ascii=False).encode()
        for secret in {getpass.getuser(), str(home), socket.gethostname(), str(workdir)}:
            assert secret, "empty user or host name"
            # Anywhere in the bytes, compressed streams decompressed. A short name (a host
            # called "vm") also turns up by chance in binary data (noise, zstd streams), so
            # those are looked for as whole words in what the file says in words.
            if len(secret) >= 6:
                assert secret.encode() not in text, secret
            word = rb"(?<![\w.-])" + re.escape(secret.encode()) + rb"(?![\w.-])"
            assert not re.search(word, said), secret
    finally:
        for p in workdir.iterdir():
            p.unlink()
        workdir.rmdir()


def test_cli_env_and_drift(tmp_path):
    exe = [sys.executable, "-m", "raiiaf_rs.cli"]
    out = subprocess.run([*exe, "env"], capture_output=True, text=True)
    assert out.returncode == 0 and "name=python;version=" in out.stdout and "torch" in out.stdout
    path = tmp_path / "d.raiiaf"
    raiiaf_rs.write(
        path,
        {"n": noise((4,))},
        environment=raiiaf_rs.environment_document(
            [
                ("python", "name=python;version=2.7.18"),
                ("attention", "name=attention;backend=xformers"),
            ]
        ),
    )
    out = subprocess.run([*exe, "drift", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "python differs (does not change pixels)" in out.stdout
    assert "attention missing in current system (can change pixels)" in out.stdout
    assert "File:    name=python;version=2.7.18" in out.stdout
