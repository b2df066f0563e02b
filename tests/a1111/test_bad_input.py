"""Bad replay input: a clear message, then stop or go on without replay as chosen;
never silently other noise."""

from __future__ import annotations

import base64

import numpy as np
import pytest
import raiiaf_rs

from .harness import files_in, pixels, read_bytes

BASE = {
    "prompt": "a cat",
    "steps": 5,
    "width": 64,
    "height": 64,
    "cfg_scale": 5.0,
    "sampler_name": "Euler",
}
STOP = "Stop with a message"
PROCEED = "Proceed without replay"


@pytest.fixture
def stored(webui):
    res = webui.txt2img(seed=100, outdir="src", **BASE)
    return res.sidecar(res.images[0])


def _stops(webui, files, match, restore=True, **kw):
    from lib_raiiaf.replay import ReplayError

    with pytest.raises(ReplayError, match=match):
        webui.txt2img(
            outdir="stopped",
            raiiaf={"replay_files": files, "on_mismatch": STOP, "restore_seeds": restore},
            **{**BASE, "seed": 1, **kw},
        )
    assert files_in(webui.root / "stopped", ".png") == []
    assert files_in(webui.root / "stopped", ".raiiaf") == []


def _proceeds(webui, files, match, restore=True, **kw):
    res = webui.txt2img(
        outdir="went-on",
        raiiaf={"replay_files": files, "on_mismatch": PROCEED, "restore_seeds": restore},
        **{**BASE, "seed": 1, **kw},
    )
    plain = webui.txt2img(outdir="plain", **{**BASE, "seed": 1, **kw})
    assert res.processed.comments and match in res.processed.comments
    assert "WITHOUT replay" in res.processed.comments
    for a, b in zip(res.images, plain.images):
        assert np.array_equal(pixels(a), pixels(b))  # the webui's own noise, not the file's
    meta = raiiaf_rs.read(res.sidecar(res.images[0])).metadata
    assert "replayed_from" not in meta
    assert any(match in w for w in meta["warnings"])
    return res


def test_size_not_matching_the_file(webui, stored, capsys):
    # With the stored settings the file's size is used; without them it is listed.
    res = webui.txt2img(
        outdir="restored",
        raiiaf={"replay_files": str(stored)},
        **{**BASE, "seed": 1, "width": 128, "height": 128},
    )
    assert pixels(res.images[0]).shape == (64, 64, 3)
    _stops(
        webui,
        str(stored),
        r"width: file 64, this webui 128; height",
        restore=False,
        width=128,
        height=128,
    )
    assert "raiiaf: " in capsys.readouterr().out  # also in the log
    _proceeds(webui, str(stored), "width: file 64", restore=False, width=128, height=128)


def test_file_count_not_matching_the_batch(webui, stored):
    _stops(webui, str(stored), r"1 \.raiiaf file\(s\) given for 2 image", batch_size=2)
    _proceeds(webui, str(stored), "given for 2 image", batch_size=2)


def test_altered_file_fails_its_hash(webui, stored):
    data = bytearray(read_bytes(stored))
    noise = raiiaf_rs.read(stored).latents["initial_noise"].tobytes()
    at = bytes(data).index(noise)
    data[at + 5] ^= 0x01
    bad = webui.root / "altered.raiiaf"
    bad.write_bytes(bytes(data))
    _stops(webui, str(bad), "integrity check")
    _proceeds(webui, str(bad), "integrity check")


def test_corrupt_file(webui, stored):
    bad = webui.root / "corrupt.raiiaf"
    bad.write_bytes(read_bytes(stored)[:200])
    _stops(webui, str(bad), "not a readable .raiiaf")
    _proceeds(webui, str(bad), "not a readable .raiiaf")


def test_not_a_file_at_all(webui):
    _stops(webui, "no such file and no base64 !", "is not inside the webui's output folders")
    _stops(webui, "cmFpaWFm!!", "neither a .raiiaf path nor base64")


def test_uploads_as_bytes_and_base64(webui, stored):
    ref = webui.txt2img(seed=100, outdir="ref", **BASE)
    data = read_bytes(stored)
    by_bytes = webui.txt2img(seed=3, outdir="bytes", raiiaf={"replay_files": [data]}, **BASE)
    b64 = base64.b64encode(data).decode()
    by_b64 = webui.txt2img(seed=3, outdir="b64", raiiaf={"replay_files": b64}, **BASE)
    for res in (by_bytes, by_b64):
        assert np.array_equal(pixels(ref.images[0]), pixels(res.images[0]))


def test_hook_errors_never_reach_the_log_as_crashes(webui, stored):
    webui.txt2img(
        seed=1,
        outdir="x",
        width=128,
        height=128,
        raiiaf={"replay_files": str(stored), "on_mismatch": PROCEED},
        **{k: v for k, v in BASE.items() if k not in ("width", "height")},
    )
    assert webui.errors.reported == []
