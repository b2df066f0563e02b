"""The pass schema (raiiaf_rs.passes): old files mapped by FORMAT.md's rules, stored
records read back as written, malformed records refused with what is wrong.

The cases in tests/data/passes/*.json (metadata and tensors in, passes out) are the rules'
data; the Rust catalog reads the same files, so both readers map old files alike.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import raiiaf_rs
from raiiaf_rs import passes

CASES = sorted((Path(__file__).parent / "data" / "passes").glob("*.json"))


def test_every_old_file_kind_has_a_case():
    names = {c.stem for c in CASES}
    assert {
        "comfyui_captures_hires",
        "webui_hires",
        "reference_lone_noise",
        "stored_passes",
    } <= names


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_case(case: Path):
    c = json.loads(case.read_text())
    shapes = {k: v["shape"] for k, v in c["latents"].items()}
    dtypes = {k: v["dtype"] for k, v in c["latents"].items()}
    got = passes.to_json(passes.passes_of(c["metadata"], shapes, dtypes))
    assert got == c["passes"]
    for p in got:  # every record has every key, and names point at stored tensors
        assert set(p) == set(passes._FIELDS)
        assert p["noise"] is None or p["noise"] in shapes
        assert p["input_latent"] is None or p["input_latent"] in shapes


def test_written_passes_survive_a_file(tmp_path):
    noise = np.zeros((1, 4, 8, 8), np.float32)
    first = passes.Pass(
        order=0,
        role="txt2img",
        noise="initial_noise",
        seed=4,
        noise_shape=noise.shape,
        noise_dtype="float32",
        settings={"sampler": "euler", "steps": 2},
        source={"host": "diffusers", "pipeline": "StableDiffusionPipeline"},
    )
    path = tmp_path / "a.raiiaf"
    raiiaf_rs.write(
        path, {"initial_noise": noise}, metadata={"prompt": "x", "passes": passes.to_json([first])}
    )
    art = raiiaf_rs.read(path)
    got = passes.passes_of(art.metadata, {k: v.shape for k, v in art.latents.items()})
    assert got == [first]


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"passes": {"order": 0}}, "must be a list"),
        ({"passes": [{"role": "txt2img"}]}, "lacks the key 'order'"),
        ({"passes": [{"order": 0, "role": "upscale"}]}, "pass role 'upscale'"),
        ({"passes": [{"order": -1, "role": "hires"}]}, "order must be an int"),
        ({"passes": [3]}, "must be an object"),
        (
            {"passes": [{"order": 0, "role": "hires", "exact": True, "why_not_exact": ["x"]}]},
            "cannot be exact",
        ),
    ],
)
def test_malformed_records_say_what_is_wrong(bad, message):
    with pytest.raises(ValueError, match=message):
        passes.passes_of(bad, {})
