"""The catalog reads the images the real webuis save (CATALOG.md, "Images from other tools"):
the PNG `parameters` chunk and the EXIF UserComment of JPEG and WebP, written by the webui's
own code. Each row's settings equal those of the sidecar the extension wrote for the same
image (a PNG beside its sidecar is one row)."""

from __future__ import annotations

import pyarrow as pa
import pytest
import raiiaf_rs
from catalog_check import rows_by_path

from .checks import sidecars_of

#: The columns an infotext and a sidecar both fill, with the same meaning.
SHARED = ("prompt", "negative_prompt", "seed", "steps", "cfg", "sampler", "width", "height")

PAYLOAD = {
    "prompt": "a cat, 猫 🐱",
    "negative_prompt": "blurry",
    "seed": 4711,
    "steps": 3,
    "cfg_scale": 6.5,
    "sampler_name": "Euler",
}


#: The settings these tests override.
OVERRIDDEN = ("samples_format", "enable_pnginfo")


@pytest.fixture(autouse=True)
def _restore_options(webui):
    """On a fresh install the webui keeps an API request's ``override_settings`` for keys not
    yet in its settings file (it restores only those it had): put these back afterwards, or
    every later test of the session saves JPEGs without infotext."""
    before = webui.get("/sdapi/v1/options")
    yield
    webui.post("/sdapi/v1/options", {k: before[k] for k in OVERRIDDEN if k in before})
    after = webui.get("/sdapi/v1/options")
    assert all(after.get(k) == before.get(k) for k in OVERRIDDEN)


def rows(*paths):
    return rows_by_path(pa.table(raiiaf_rs.catalog(list(paths))))


def test_png_jpeg_and_webp_infotexts(webui):
    res = webui.txt2img(raiiaf={}, **PAYLOAD)
    (side,) = sidecars_of(res)
    (png,) = res.pngs
    # Named together, the PNG is its sidecar's row.
    (pair,) = rows(png, side).values()
    assert (pair["source_kind"], pair["image_path"]) == ("raiiaf", str(png.absolute()))
    (alone,) = rows(png).values()
    assert (alone["source_kind"], alone["error"]) == ("png-a1111", None)
    assert alone["prompt"] == PAYLOAD["prompt"]
    for col in SHARED:
        assert alone[col] == pair[col], f"{col}: png {alone[col]!r}, sidecar {pair[col]!r}"
    assert alone["model_hash"] and alone["model_hash"] == pair["model_hash"]
    assert alone["host_version"]

    for fmt, kind in (("jpg", "jpeg-a1111"), ("webp", "webp-a1111")):
        other = webui.txt2img(override_settings={"samples_format": fmt}, **PAYLOAD)
        (image,) = [p for p in other.saved if p.suffix == f".{fmt}"]
        (row,) = rows(image).values()
        assert (row["source_kind"], row["error"]) == (kind, None), row
        for col in SHARED:
            assert row[col] == pair[col], f"{fmt} {col}: {row[col]!r}, sidecar {pair[col]!r}"
        assert row["model_hash"] == pair["model_hash"]


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_images_without_generation_metadata_are_skipped(webui, fmt, tmp_path):
    """The webui's "save text information" off: an image without an infotext has no row."""
    res = webui.txt2img(
        override_settings={"samples_format": fmt, "enable_pnginfo": False}, **PAYLOAD
    )
    (image,) = [p for p in res.saved if p.suffix == f".{fmt}"]
    assert rows(image) == {}
