"""Writes survive SIGKILL: a writer process killed at any moment leaves either the old state (no
file, or the previous complete file) or the complete new file under the final name, never a
partial one. The only other trace is the killed writer's hidden ``.<name>.<pid>-<n>.tmp`` file,
which the next process writing into that directory removes once it is stale (10 minutes
unchanged, its process gone)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import raiiaf_rs

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="SIGKILL and /proc: Linux")

# 64 MiB of float32: a write takes long enough (hashing, I/O) to be killed in the middle.
WRITER = r"""
import sys, time
import numpy as np
import raiiaf_rs
path, generation, overwrite = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
x = np.arange(16 * 4 * 512 * 512, dtype=np.float32) + generation
x = x.reshape(16, 4, 512, 512)
print("ready", flush=True)
t = time.perf_counter()
raiiaf_rs.write(path, {"initial_noise": x}, metadata={"generation": generation},
                environment=None, overwrite=overwrite)
print("done", time.perf_counter() - t, flush=True)
"""


def spawn(path: Path, generation: int, overwrite: bool) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(generation), "1" if overwrite else "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "ready"
    return proc


def temp_files(d: Path) -> list[Path]:
    return sorted(p for p in d.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp"))


def generation_of(path: Path) -> int:
    raiiaf_rs.verify(path)  # every chunk decoded, every SHA-256 checked
    return raiiaf_rs.read_metadata(path).metadata["generation"]


def test_killed_writers_never_leave_a_partial_file(tmp_path):
    # How long one write takes here, to spread the kills over it.
    proc = spawn(tmp_path / "timing.raiiaf", 0, False)
    out, _ = proc.communicate(timeout=120)
    duration = float(out.split()[-1])
    (tmp_path / "timing.raiiaf").unlink()

    rng = random.Random(8)
    target = tmp_path / "image.raiiaf"
    outcomes = {"absent": 0, "complete": 0, "old kept": 0, "replaced": 0}
    current = None  # generation of the complete file under the final name
    for generation in range(1, 31):
        overwrite = generation % 2 == 0  # replace a complete file, or create a new one
        if overwrite and current is None:
            raiiaf_rs.write(
                target,
                {"n": np.zeros(1, np.float32)},
                metadata={"generation": -generation},
                environment=None,
            )
            current = -generation
        elif not overwrite and current is not None:
            target.unlink()
            current = None
        proc = spawn(target, generation, overwrite)
        time.sleep(rng.uniform(0, 1.3 * duration))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        if not target.exists():
            assert current is None, f"kill #{generation} lost the previous file"
            outcomes["absent"] += 1
            continue
        found = generation_of(target)
        if overwrite:
            assert found in (current, generation)
            outcomes["old kept" if found == current else "replaced"] += 1
        else:
            assert found == generation
            outcomes["complete"] += 1
        current = found
        leftovers = [p for p in tmp_path.iterdir() if p != target and p not in temp_files(tmp_path)]
        assert not leftovers, leftovers
    print(f"\n{outcomes}, {len(temp_files(tmp_path))} temp files left by killed writers")
    # The kills must have landed both before and after the file was in place.
    assert outcomes["absent"] + outcomes["old kept"] > 0, outcomes
    assert outcomes["complete"] + outcomes["replaced"] > 0, outcomes


def test_stale_temp_files_of_dead_writers_are_removed(tmp_path):
    # Leftovers of killed writers: make one real by killing a writer mid-write.
    for attempt in range(20):
        proc = spawn(tmp_path / f"killed{attempt}.raiiaf", attempt, False)
        time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        if temp_files(tmp_path):
            break
    dead_pid = proc.pid
    for p in tmp_path.glob("killed*.raiiaf"):
        p.unlink()
    # Forged leftovers: a dead pid (the killed writer's), the live pytest process, and a name
    # that is not a writer's.
    fake_dead = tmp_path / f".other.raiiaf.{dead_pid}-3.tmp"
    fake_dead.write_bytes(b"partial")
    alive = tmp_path / f".other.raiiaf.{os.getpid()}-0.tmp"
    alive.write_bytes(b"partial")
    unrelated = tmp_path / ".notes.tmp"
    unrelated.write_bytes(b"mine")
    fresh = tmp_path / f".fresh.raiiaf.{dead_pid}-4.tmp"
    fresh.write_bytes(b"partial")
    hour_ago = time.time() - 3600
    for p in [*temp_files(tmp_path)]:
        if p != fresh:
            os.utime(p, (hour_ago, hour_ago))
    stale = [p for p in temp_files(tmp_path) if p not in (alive, unrelated, fresh)]
    assert fake_dead in stale and len(stale) >= 1

    # The next writer process's first write into the directory cleans up.
    proc = spawn(tmp_path / "next.raiiaf", 99, False)
    proc.communicate(timeout=120)
    assert proc.returncode == 0
    remaining = temp_files(tmp_path)
    assert not [p for p in stale if p in remaining], remaining
    assert alive in remaining  # its process (pytest) is alive
    assert unrelated in remaining  # not a writer's temporary name
    assert fresh in remaining  # changed less than 10 minutes ago
    assert generation_of(tmp_path / "next.raiiaf") == 99
