"""Failure B: settings a replay restores (ENSD, the noise source) must not stay in the webui
for the user's next plain generation. On a fresh install (no config.json) the webui puts back
only override keys already in its settings, so the extension has to put them back itself.

conftest.py runs this file first for each webui, while the session's settings file holds
nothing but the output folders (checked below), as on a fresh install.

The file replayed says it was made with ENSD 31337 and the NV noise source, as a file from
another user's webui would. It is made here from a plain generation's sidecar with those two
settings changed, not by a generation with ``override_settings``: on a fresh install the webui
itself keeps such a request's overrides afterwards (its own behaviour, with or without this
extension), which would hide whether the replay leaks."""

from __future__ import annotations

import json

import raiiaf_rs

from .checks import same, sidecars_of

LEAKY = {"eta_noise_seed_delta": 31337, "randn_source": "NV"}


def test_replay_leaves_the_users_settings_alone(webui):
    config = json.loads((webui.workdir / "config.json").read_text())
    assert not set(LEAKY) & set(config), f"not a fresh settings file: {sorted(config)}"
    defaults = {k: webui.get("/sdapi/v1/options")[k] for k in LEAKY}
    assert defaults != LEAKY
    try:
        plain = webui.txt2img(raiiaf={}, seed=81, sampler_name="Euler a")
        (side,) = sidecars_of(plain)
        art = raiiaf_rs.read(side)
        meta = dict(art.metadata)
        opts = {**meta["a1111"]["opts"], **LEAKY}
        meta["a1111"] = {**meta["a1111"], "opts": opts, "rng_device_type": "nv"}
        other = side.with_name("made-elsewhere.raiiaf")
        raiiaf_rs.write(other, art.latents, art.image, meta, environment=art.environment)
        replay = webui.txt2img(raiiaf={"files": [str(other)]}, seed=2, sampler_name="Euler a")
        assert "31337" in replay.comments or "ENSD" in replay.comments, (
            "the replay did not restore the file's settings: " + replay.comments
        )
        after = {k: webui.get("/sdapi/v1/options")[k] for k in LEAKY}
        again = webui.txt2img(seed=81, sampler_name="Euler a")
        assert after == defaults, f"the replay left its settings in the webui: {after}"
        same(again.images[0], plain.images[0], "the next plain generation after a replay")
    finally:
        # Later tests start from the defaults even when this one failed.
        webui.post("/sdapi/v1/options", defaults)
