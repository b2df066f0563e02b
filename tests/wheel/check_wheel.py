"""Checks one built artefact of raiiaf-rs: a wheel's tags and contents, or an sdist's contents.

Used by dev/build_wheels.sh (and usable alone). Standard library only, so it runs under any
Python >= 3.9, the tools venv of build_wheels.sh included.

    python tests/wheel/check_wheel.py WHEEL --platform manylinux_2_17_x86_64
    python tests/wheel/check_wheel.py WHEEL --platform win_amd64
    python tests/wheel/check_wheel.py SDIST.tar.gz

A wheel must be tagged cp39-abi3-<platform> (one binary for every CPython >= 3.9), both in its
file name and in its WHEEL metadata, hold the extension module (`_raiiaf_rs.abi3.so`, or
`_raiiaf_rs.pyd` on Windows), the pure-Python package, `py.typed`, the `raiiaf` console script
and numpy as its only requirement. An sdist must hold what `pip install` needs to build it.
Exits 1 with every problem listed; prints one summary line when all is well.
"""

from __future__ import annotations

import argparse
import re
import sys
import tarfile
import zipfile
from pathlib import PurePosixPath

PYTHON_FILES = ("__init__.py", "cli.py", "py.typed")
SDIST_FILES = (
    "pyproject.toml",
    "Cargo.toml",
    "Cargo.lock",
    "bindings/python/Cargo.toml",
    "bindings/python/build.rs",
    "bindings/python/src/lib.rs",
    "crates/raiiaf/src/lib.rs",
    "python/raiiaf_rs/__init__.py",
    "python/raiiaf_rs/py.typed",
    "PKG-INFO",
)


def check_wheel(path: str, platform: str) -> list[str]:
    problems = []
    name = PurePosixPath(path).name
    # {dist}-{version}-{python}-{abi}-{platform}.whl; the platform part may hold several
    # tags joined by dots (manylinux2014_x86_64.manylinux_2_17_x86_64).
    m = re.fullmatch(r"raiiaf_rs-([^-]+)-([^-]+)-([^-]+)-([^-]+)\.whl", name)
    if not m:
        return [f"{name}: not a raiiaf_rs wheel file name"]
    version, py_tag, abi_tag, plat_tags = m.groups()
    if (py_tag, abi_tag) != ("cp39", "abi3"):
        problems.append(f"file name tag {py_tag}-{abi_tag}, expected cp39-abi3")
    if platform not in plat_tags.split("."):
        problems.append(f"file name platform {plat_tags}, expected {platform}")

    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        dist_info = f"raiiaf_rs-{version}.dist-info"
        wheel_meta = zf.read(f"{dist_info}/WHEEL").decode()
        tags = re.findall(r"^Tag: (\S+)$", wheel_meta, re.M)
        if f"cp39-abi3-{platform}" not in tags:
            problems.append(f"WHEEL Tag lines {tags}, expected cp39-abi3-{platform}")
        if not re.search(r"^Root-Is-Purelib: false$", wheel_meta, re.M):
            problems.append("WHEEL: Root-Is-Purelib is not false")
        ext = (
            "raiiaf_rs/_raiiaf_rs.pyd"
            if platform.startswith("win")
            else ("raiiaf_rs/_raiiaf_rs.abi3.so")
        )
        if ext not in names:
            binaries = sorted(n for n in names if "_raiiaf_rs" in n and not n.endswith(".pyi"))
            problems.append(f"no {ext} (found {binaries})")
        problems += [f"no raiiaf_rs/{f}" for f in PYTHON_FILES if f"raiiaf_rs/{f}" not in names]
        entry_points = zf.read(f"{dist_info}/entry_points.txt").decode()
        if not re.search(r"^raiiaf\s*=\s*raiiaf_rs\.cli:main$", entry_points, re.M):
            problems.append("entry_points.txt has no `raiiaf = raiiaf_rs.cli:main`")
        metadata = zf.read(f"{dist_info}/METADATA").decode()
        requires = [
            r for r in re.findall(r"^Requires-Dist: (.+)$", metadata, re.M) if "extra ==" not in r
        ]
        if [r.replace(" ", "") for r in requires] != ["numpy>=1.21"]:
            problems.append(f"Requires-Dist (without extras) {requires}, expected numpy>=1.21")
        if not re.search(r"^Requires-Python: >=3\.9$", metadata, re.M):
            problems.append("METADATA: Requires-Python is not >=3.9")
    if not problems:
        print(f"ok: {name}: cp39-abi3-{platform}, {len(names)} files, {ext.split('/')[1]}")
    return problems


def check_sdist(path: str) -> list[str]:
    with tarfile.open(path) as tf:
        members = tf.getnames()
    if not members:
        return [f"{path}: empty"]
    root = members[0].split("/")[0]
    present = {m[len(root) + 1 :] for m in members}
    problems = [f"sdist lacks {f}" for f in SDIST_FILES if f not in present]
    if not problems:
        print(f"ok: {PurePosixPath(path).name}: {len(members)} entries, builds from {root}/")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("artefact")
    ap.add_argument("--platform", help="expected platform tag of a wheel")
    args = ap.parse_args(argv)
    if args.artefact.endswith(".tar.gz"):
        problems = check_sdist(args.artefact)
    elif args.platform:
        problems = check_wheel(args.artefact, args.platform)
    else:
        ap.error("a wheel needs --platform")
    for p in problems:
        print(f"FAIL: {args.artefact}: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
