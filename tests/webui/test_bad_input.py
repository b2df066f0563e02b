"""Bad replay files and paths through the API: each is refused with its reason (HTTP error
naming it) or, with "Proceed without replay", generates the webui's own image with the reason
in the comments; the server keeps running."""

from __future__ import annotations

import shutil

import pytest

from .checks import same, sidecars_of
from .harness import PROCEED, ApiError, b64


@pytest.fixture
def made(webui):
    res = webui.txt2img(raiiaf={}, seed=91, sampler_name="Euler a")
    return res, sidecars_of(res)[0]


def refused(webui, files, expect: str, **payload):
    with pytest.raises(ApiError) as e:
        webui.txt2img(raiiaf={"files": files}, seed=92, sampler_name="Euler a", **payload)
    assert expect in e.value.body, e.value.body
    assert webui.alive()


def test_outside_the_output_folders(webui, made, tmp_path):
    _, side = made
    outside = tmp_path / "elsewhere.raiiaf"
    shutil.copy(side, outside)
    refused(webui, [str(outside)], "not inside the webui's output folders")


def test_not_a_raiiaf_file(webui, made):
    res, _ = made
    refused(webui, [str(res.pngs[0])], "not a .raiiaf file")


def test_damaged_file(webui, made):
    _, side = made
    bad = side.with_name("damaged.raiiaf")
    data = bytearray(side.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(ApiError) as e:
        webui.txt2img(raiiaf={"files": [str(bad)]}, seed=92, sampler_name="Euler a")
    assert "integrity" in e.value.body or "not a readable .raiiaf" in e.value.body, e.value.body


def test_neither_path_nor_base64(webui):
    # Not base64 (it does not start as every file does), so a path: refused by its text, before
    # anything looks at the disk, with the same answer as for an outside path that exists.
    refused(webui, ["no such file, and not base64 either"], "not inside the webui's output folders")


def test_wrong_number_of_files(webui, made):
    _, side = made
    with pytest.raises(ApiError) as e:
        webui.txt2img(raiiaf={"files": [str(side), str(side)]}, seed=92, sampler_name="Euler a")
    assert "raiiaf" in e.value.body.lower() or "file" in e.value.body, e.value.body


def test_base64_contents_replay(webui, made):
    res, side = made
    rep = webui.txt2img(raiiaf={"files": [b64(side)]}, seed=93, sampler_name="Euler a")
    same(rep.images[0], res.images[0], "replay from base64 contents")


def test_proceed_uses_the_webuis_own_noise_and_says_why(webui, made, tmp_path):
    _, side = made
    outside = tmp_path / "elsewhere.raiiaf"
    shutil.copy(side, outside)
    rep = webui.txt2img(
        raiiaf={"files": [str(outside)], "on_mismatch": PROCEED}, seed=94, sampler_name="Euler a"
    )
    own = webui.txt2img(seed=94, sampler_name="Euler a")
    same(rep.images[0], own.images[0], "proceed without replay vs the webui's own")
    assert "not inside the webui's output folders" in rep.comments, rep.comments
    # And the server still generates normally.
    assert webui.txt2img(seed=95).images
