"""Smoke test of an *installed* raiiaf_rs wheel: import, round trips, reference files, CLI.

    python tests/wheel/roundtrip.py [VECTORS_DIR]   (default: tests/data/vectors/reference-1.1.0
                                                      beside this file)

Run by the interpreter of a venv the wheel was installed into (tests/test_wheel_install.py,
tests/wheel/other_pythons.sh, dev/build_wheels.sh's aarch64 check under qemu, the release
workflow's smoke tests). Needs only numpy and the wheel: no pytest, no repository on sys.path
(it refuses to test the in-place build of a checkout instead of the wheel). Checks:
  1. write + read with every codec: the tensors come back bit for bit (float32, float16,
     a non-contiguous view), the image bytes and the metadata unchanged, verify() passes;
  2. the reference raiiaf 1.1.0 files decode to the SHA-256s the reference recorded;
  3. the catalog of those files (raiiaf_rs.catalog, raiiaf_rs.index), twice: the second run
     reuses every row;
  4. the `raiiaf` console script of this environment: --help, inspect, verify (with --no-cli,
     where no console script can be started, e.g. under qemu-user or with a --target install:
     the CLI's entry point in this process, inspect and verify).
Prints `roundtrip: N passed, 0 failed` and exits 0, or raises.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import numpy as np
import raiiaf_rs

HERE = Path(__file__).resolve().parent
DEFAULT_VECTORS = HERE.parent / "data" / "vectors" / "reference-1.1.0"
PNG_1x1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201ff2b33d6"
    "e30000000049454e44ae426082"
)


def check_installed() -> str:
    """The package must be an installed one, not a checkout's python/raiiaf_rs (in-place build)."""
    where = Path(raiiaf_rs.__file__).resolve().parent
    if where.parent.name == "python" and (where.parent.parent / "pyproject.toml").is_file():
        raise SystemExit(f"roundtrip: raiiaf_rs comes from the checkout {where}, not a wheel")
    return str(where)


def round_trips(tmp: Path) -> int:
    rng = np.random.default_rng(1234)
    noise = rng.standard_normal((1, 4, 64, 64), dtype=np.float32)
    noise.flat[:4] = [np.nan, -0.0, np.inf, np.float32(1e-45)]  # bit patterns that must survive
    latent16 = rng.standard_normal((1, 4, 32, 48)).astype(np.float16)
    strided = rng.standard_normal((2, 4, 16, 32), dtype=np.float32)[:, :, :, ::2]
    metadata = {
        "prompt": "a lighthouse at dusk, caf\u00e9 \u2615",
        "generation_settings": {"seed": 42, "steps": 30, "sampler": "euler", "cfg": 7.5},
        "sigmas": [14.6, 7.1, 0.0],
    }
    count = 0
    for codec in ("raw", "compact", "zfp"):
        tensors = {"initial_noise": noise}
        if codec != "zfp":  # the reference's zfp mode is float32 only
            tensors.update(final_latent=latent16, strided=strided)
        path = tmp / f"rt-{codec}.raiiaf"
        raiiaf_rs.write(str(path), tensors, image=PNG_1x1, metadata=metadata, codec=codec)
        raiiaf_rs.verify(str(path))
        art = raiiaf_rs.read(str(path))
        assert set(art.latents) == set(tensors), (codec, sorted(art.latents))
        for name, want in tensors.items():
            got = art.latents[name]
            assert got.dtype == want.dtype and got.shape == want.shape, (codec, name, got.dtype)
            assert got.tobytes() == np.ascontiguousarray(want).tobytes(), (codec, name)
        assert bytes(art.image) == PNG_1x1, codec
        for key, value in metadata.items():
            assert art.metadata[key] == value, (codec, key, art.metadata.get(key))
        count += 1
    return count


def reference_files(vectors: Path) -> int:
    expected = json.loads((vectors / "expected.json").read_text(encoding="utf-8"))
    for name, exp in expected.items():
        art = raiiaf_rs.read(str(vectors / name))
        for lat in exp["decoded_latents"]:
            a = art.latents[lat["key"]]
            assert list(a.shape) == lat["shape"] and str(a.dtype) == lat["dtype"], (name, lat)
            assert hashlib.sha256(a.tobytes()).hexdigest() == lat["sha256"], (name, lat["key"])
        image = None if art.image is None else hashlib.sha256(bytes(art.image)).hexdigest()
        assert image == exp["image_sha256"], name
    return len(expected)


def catalog(vectors: Path, tmp: Path) -> int:
    """The catalog (Arrow table and Parquet file) without pyarrow, DuckDB or polars installed."""
    files = sorted(vectors.glob("*.raiiaf"))
    table = raiiaf_rs.catalog(str(vectors))
    assert table.num_rows == len(files) and "noise_sha256" in table.column_names, table
    out = tmp / "catalog.parquet"
    report = raiiaf_rs.index(str(vectors), str(out))
    assert report["files"] == report["read"] == len(files) and report["errors"] == 0, report
    assert raiiaf_rs.index(str(vectors), str(out))["reused"] == len(files)
    assert out.read_bytes()[:4] == b"PAR1"
    return 1


def cli(vectors: Path) -> int:
    scripts = Path(sysconfig.get_paths()["scripts"])
    exe = scripts / ("raiiaf.exe" if os.name == "nt" else "raiiaf")
    assert exe.is_file(), f"no console script {exe}"
    sample = str(vectors / "v2_f16_raw_png.raiiaf")
    runs = [
        ([str(exe), "--help"], "inspect"),
        ([str(exe), "inspect", sample], "initial_noise"),
        ([str(exe), "inspect", sample, "--json"], '"manifest"'),
        ([str(exe), "verify", sample], ""),
    ]
    for argv, needle in runs:
        out = subprocess.run(argv, capture_output=True, text=True, check=False)
        assert out.returncode == 0, (argv, out.returncode, out.stderr)
        assert needle in out.stdout, (argv, out.stdout[:500])
    return len(runs)


def cli_in_process(vectors: Path) -> int:
    """The CLI's entry point called in this process (where no console script can be started)."""
    from raiiaf_rs import cli as raiiaf_cli

    sample = str(vectors / "v2_f16_raw_png.raiiaf")
    for argv in (["inspect", sample], ["verify", sample]):
        assert raiiaf_cli.main(argv) == 0, argv
    return 2


def main(argv: list[str]) -> int:
    no_cli = "--no-cli" in argv
    args = [a for a in argv if a != "--no-cli"]
    vectors = Path(args[0]) if args else DEFAULT_VECTORS
    where = check_installed()
    print(f"roundtrip: Python {sys.version.split()[0]}, numpy {np.__version__}, {where}")
    with tempfile.TemporaryDirectory() as tmp:
        passed = round_trips(Path(tmp))
        passed += catalog(vectors, Path(tmp))
    passed += reference_files(vectors)
    passed += cli_in_process(vectors) if no_cli else cli(vectors)
    print(f"roundtrip: {passed} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
