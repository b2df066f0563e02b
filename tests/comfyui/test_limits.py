"""The upload and inspect routes refuse files that would decode to more than the server's
limit (256 MiB, tighter than the library's 1 GiB) before allocating anything, with a clear
message, and the server keeps running: the 33 KB file holding a 1 GiB zero tensor, and a
~10 KB one holding 320 MiB (within the library's default, over the server's)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import raiiaf_rs

from .test_frontend import input_dir, inspect, upload

BOMB = (
    Path(__file__).parents[1] / "data" / "adversarial" / "bomb-compact-zeros-1-gib-in-33-kb.raiiaf"
)


@pytest.fixture(scope="module")
def over_server_limit() -> bytes:
    zeros = np.zeros((1, 16, 2560, 2048), dtype=np.float32)  # 320 MiB
    return raiiaf_rs.write_bytes({"initial_noise": zeros}, environment=None, codec="compact")


@pytest.mark.parametrize("which", ["bomb-1-gib", "zeros-320-mib"])
def test_upload_refuses_oversized_declared_tensors(comfy, over_server_limit, which):
    content = BOMB.read_bytes() if which == "bomb-1-gib" else over_server_limit
    assert len(content) < 40_000
    name = f"limits-{which}.raiiaf"
    status, body, text = upload(comfy, name, content)
    assert status == 400, text
    error = body["error"]
    assert error.startswith(f"{name}: too large: it would decode to "), error
    assert "more than this host's limit of 268,435,456" in error
    assert "RAIIAF_MAX_DECODED_BYTES" in error
    assert not (input_dir(comfy) / name).exists()  # never stored
    # The server is alive and still answers.
    assert comfy.alive()
    assert "RaiiafLoad" in comfy.object_info()


def test_inspect_refuses_the_bomb_in_the_input_folder(comfy):
    target = input_dir(comfy) / "limits-inspect-bomb.raiiaf"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(BOMB.read_bytes())
    try:
        status, body, text = inspect(comfy, target.name)
        assert status == 400, text
        assert "too large" in body["error"] and str(target.parent) not in body["error"]
        assert comfy.alive()
    finally:
        target.unlink()


def test_forged_sizes_are_still_called_unreadable(comfy):
    forged = Path(__file__).parents[1] / "data" / "adversarial" / "bomb-compact-shape-4-tib.raiiaf"
    status, body, text = upload(comfy, "limits-forged.raiiaf", forged.read_bytes())
    assert status == 400, text
    assert "not a readable .raiiaf file" in body["error"] and "too large" not in body["error"]
