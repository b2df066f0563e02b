"""The adversarial corpus (tests/data/adversarial, made by its make.py): every file must raise
the expected exception, in a child process per file (an abort or a crash cannot take pytest
down, and shows as a signal), with the child's peak memory within a bound.

Memory bound, per file: the child's peak RSS after the read may exceed its peak RSS before it
(interpreter, numpy and raiiaf_rs imported) by at most
    BASE_MIB (16 MiB) + 64 x file size + 2 x inflates,
where ``inflates`` (expected.json) is what the format lets the file make a reader hold before
its error can be found: a zstd frame inflating within ``limit(c) = 32768 x c`` (one buffer, plus
a copy), or JSON within ``json_limit(c) = max(1 MiB, 64 x c)``, counted at 64x its text because
it is parsed. For every other file it is 0: forged sizes must be refused before anything is
allocated. (Measured: other files grow 4-7 MiB; the 1.6 KB META holding 1 MiB of JSON ~60-85 MiB;
the 1.7 KB DATA RLE bomb inflating to 48 MiB ~55 MiB.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

CORPUS = Path(__file__).parent / "data" / "adversarial"
EXPECTED = json.loads((CORPUS / "expected.json").read_text())
BASE_MIB = 16

CHILD = r"""
import json, resource, sys
import raiiaf_rs
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    raiiaf_rs.read(sys.argv[1])
    out = {"error": None, "message": ""}
except Exception as e:
    out = {"error": type(e).__name__, "message": str(e)}
out["before_kb"] = before
out["peak_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(out))
"""


def _read_in_child(name: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(CORPUS / name)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        return {"crashed": proc.returncode, "stderr": proc.stderr[-2000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def results() -> dict[str, dict]:
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        return dict(zip(EXPECTED, pool.map(_read_in_child, EXPECTED)))


def test_corpus_matches_its_manifest():
    files = sorted(p.name for p in CORPUS.glob("*.raiiaf"))
    assert files == sorted(EXPECTED), "run tests/data/adversarial/make.py again"
    assert len(files) >= 100
    assert sum(p.stat().st_size for p in CORPUS.glob("*.raiiaf")) < 1 << 20  # small files only


def test_every_file_raises_the_expected_error(results):
    wrong = {}
    for name, exp in EXPECTED.items():
        got = results[name]
        if "crashed" in got:
            wrong[name] = f"child process died (exit {got['crashed']}): {got['stderr']}"
        elif got["error"] != exp["error"] or exp["message"] not in got["message"]:
            want = f"{exp['error']} ~ {exp['message']!r}"
            wrong[name] = f"expected {want}, got {got['error']}: {got['message']}"
    assert not wrong, json.dumps(wrong, indent=1)


def test_memory_stays_within_the_bound(results):
    over, worst = {}, ("", 0)
    for name, exp in EXPECTED.items():
        got = results[name]
        if "crashed" in got:
            continue  # reported by the test above
        grew = (got["peak_kb"] - got["before_kb"]) * 1024
        size = (CORPUS / name).stat().st_size
        bound = BASE_MIB * 2**20 + 64 * size + 2 * exp["inflates"]
        if grew > bound:
            over[name] = f"grew {grew / 2**20:.1f} MiB, bound {bound / 2**20:.1f} MiB"
        worst = max(worst, (name, grew), key=lambda w: w[1])
    print(f"\nworst peak RSS growth: {worst[0]} {worst[1] / 2**20:.1f} MiB")
    assert not over, json.dumps(over, indent=1)
