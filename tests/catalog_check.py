"""Checks a catalog row against what the file says through other doors: `raiiaf inspect --json`
(header and manifest) and `raiiaf_rs.read` (the verified environment). Written independently of
the Rust row builder (crates/raiiaf-catalog/src/row.rs) so that a mistake in one is caught by the
other; shared by the catalog tests and the ComfyUI and A1111 tests that index the files their hosts
wrote."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import raiiaf_rs

# The flags string of a LATN record names its dtype (FORMAT.md §3.1).
DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}


# Model roles that name the main model (the first model when none has one of them).
CHECKPOINT_ROLES = ("checkpoint", "ckpt_name", "unet", "unet_name", "model")


def rows_by_path(table: Any) -> dict[str, dict[str, Any]]:
    """A pyarrow table's rows keyed by ``path``."""
    return {r["path"]: r for r in table.to_pylist()}


def inspect_json(path: str | Path) -> dict[str, Any]:
    exe = shutil.which("raiiaf", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "raiiaf_rs.cli"]
    out = subprocess.run([*cmd, "inspect", "--json", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _first(*values: Any) -> Any:
    """The first value the file gives; an empty string is a value (CATALOG.md keeps it)."""
    for v in values:
        if v is not None:
            return v
    return None


def expected_row(path: str | Path) -> dict[str, Any]:
    """The catalog columns that the manifest and environment determine, computed here."""
    doc = inspect_json(path)
    header = doc["header"]
    root = next(iter(doc["manifest"].values()))
    info = root.get("model_info") or {}
    meta = root.get("metadata") or {}
    gs = info.get("generation_settings") or {}
    chunks = root["chunks"]
    latents = [c for c in chunks if c["type"] == "LATN"]
    image = next((c for c in chunks if c["type"] == "DATA"), None)
    models = meta.get("models") or []
    ckpt = next(
        (m for m in models if m.get("role") in CHECKPOINT_ROLES),
        models[0] if models else None,
    )
    host = meta.get("host") or {}
    exp: dict[str, Any] = {
        "flavor": header["magic"],
        "format_version": f"{header['version_major']}.{header['version_minor']}",
        "created": _first(info.get("date")),
        "prompt": _first(info.get("prompt"), meta.get("prompt")),
        "negative_prompt": _first(meta.get("negative_prompt"), info.get("negative_prompt")),
        "model_name": _first(
            info.get("model_name"), meta.get("model_name"), (ckpt or {}).get("name")
        ),
        "model_sha256": _first((ckpt or {}).get("sha256")),
        # the short hash, else the SHA-256's first 10 digits (None: the file gives neither)
        "model_hash": _first(
            ((ckpt or {}).get("short_hash") or "").lower() or None,
            ((ckpt or {}).get("sha256") or "")[:10] or None,
        ),
        "source_kind": "raiiaf",
        "seed": _first(gs.get("seed"), meta.get("seed")),
        "steps": _first(gs.get("steps"), meta.get("steps")),
        "cfg": _first(gs.get("cfg_scale"), gs.get("cfg"), meta.get("cfg_scale"), meta.get("cfg")),
        "sampler": _first(gs.get("sampler"), gs.get("sampler_name"), meta.get("sampler")),
        "scheduler": _first(gs.get("scheduler"), meta.get("scheduler")),
        "denoise": meta.get("denoise"),
        "width": _first(meta.get("width"), (image or {}).get("extra", {}).get("width")),
        "height": _first(meta.get("height"), (image or {}).get("extra", {}).get("height")),
        "batch_index": meta.get("batch_index"),
        "batch_size": meta.get("batch_size"),
        "batch_id": _first(meta.get("batch_id")),
        "has_image": image is not None,
        "image_sha256": image["hash"] if image else None,
        "tensors": [
            {
                "name": c["extra"].get("key", f"latent_{c['index']}"),
                "shape": c["extra"]["shape"],
                "dtype": DTYPES[c["flags"]],
                "sha256": c["hash"].lower(),
                "bytes": c["uncompressed_size"],
                "stored_bytes": c["compressed_size"],
            }
            for c in latents
        ],
        "noise_sha256": next(
            (c["hash"].lower() for c in latents if c["extra"].get("key") == "initial_noise"), None
        ),
        "loras": [
            {
                "name": lo["name"],
                "sha256": lo.get("sha256"),
                "strength_model": _first(lo.get("strength_model"), lo.get("strength")),
                "strength_clip": lo.get("strength_clip"),
            }
            for lo in meta.get("loras") or []
            if lo.get("name") is not None
        ],
    }
    if host:
        exp["host_app"] = _first(host.get("app"))
        exp["host_version"] = _first(host.get("version"))
    env = raiiaf_rs.read_metadata(path).environment
    exp["environment"] = env
    return exp


def assert_row_matches(row: dict[str, Any], path: str | Path) -> None:
    """Every column the file determines equals what inspect/read say."""
    exp = expected_row(path)
    env = exp.pop("environment")
    for key, want in exp.items():
        got = row[key]
        if key == "tensors":
            got = [{k: v for k, v in t.items() if k != "codec"} for t in got]
            assert {t["codec"] for t in row[key]} <= {"raw", "zfp", "shuffle-zstd", "zstd"}
        if key == "seed" and want is not None:
            want = int(want)
            got = int(got)
        assert got == want, f"{path}: column {key}: catalog {got!r}, file {want!r}"
    assert row["error"] is None, f"{path}: {row['error']}"
    comps = (env or {}).get("components", [])
    assert [c["canonical"] for c in row["environment"]] == [c["cononical_str"] for c in comps]
    for c in comps:
        cid = c["component_id"]
        col = f"env_{cid}"
        if col in row and cid != "gpu":
            value = row[col]
            fields = c["cononical_str"].removeprefix(f"name={cid}").removeprefix(";")
            assert value is not None and fields in value.split(" | "), (path, col, value)
