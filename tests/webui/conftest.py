"""One real webui server per webui per session (the ``webui`` fixture is parametrised over
A1111 1.10.1 and Forge Classic; pytest runs one webui's tests, then the other's), with the
extension cloned and installed at its start. A webui that is not set up fails every test
that needs it (never a skip)."""

from __future__ import annotations

import os
import time

import pytest
from userenv import local_wheel

from .harness import WEBUIS, Server

os.environ.setdefault("OMP_NUM_THREADS", "1")
TIMES: dict[str, dict[str, float]] = {}
#: The webui settings that change the noise or the sampler (put back after each test).
NOISE_OPTS = {
    "eta_noise_seed_delta",
    "randn_source",
    "sgm_noise_multiplier",
    "eta_ddim",
    "eta_ancestral",
    "s_churn",
    "s_tmin",
    "s_tmax",
    "s_noise",
    "s_min_uncond",
    "no_dpmpp_sde_batch_determinism",
    "CLIP_stop_at_last_layers",
    "forge_try_reproduce",
}


@pytest.fixture(scope="session", params=list(WEBUIS))
def webui(request, tmp_path_factory):
    spec = WEBUIS[request.param]
    t = time.monotonic()
    server = Server(spec, tmp_path_factory.mktemp(spec.name), local_wheel())
    print(f"\n[{spec.name}] extension: git clone of {server.cloned}; log {server.log_path}")
    # Where saved images go: a folder of this session (set through the API, as a user's
    # settings would be; the path allow-list reads the same settings).
    outdirs = {
        "outdir_txt2img_samples": str(server.out / "txt2img"),
        "outdir_img2img_samples": str(server.out / "img2img"),
        "outdir_txt2img_grids": str(server.workdir / "grids"),
        "outdir_img2img_grids": str(server.workdir / "grids"),
    }
    server.post("/sdapi/v1/options", outdirs)
    server.baseline = {k: v for k, v in server.get("/sdapi/v1/options").items() if k in NOISE_OPTS}
    TIMES[spec.name] = {"install": server.install_s, "start": server.start_s}
    yield server
    TIMES[spec.name]["session"] = time.monotonic() - t
    alive = server.alive()
    server.stop()
    assert alive, f"{spec.name} died during the tests:\n{server.log()[-4000:]}"


@pytest.fixture(autouse=True)
def _noise_settings_back(webui):
    """Each test starts from the session's noise settings: a replay that leaves its restored
    settings behind (failure B, tested by test_settings_leak.py) fails that test, not every
    later one."""
    yield
    now = webui.get("/sdapi/v1/options")
    changed = {k: v for k, v in webui.baseline.items() if now.get(k) != v}
    if changed:
        webui.post("/sdapi/v1/options", changed)


def pytest_terminal_summary(terminalreporter):
    for name, t in TIMES.items():
        parts = ", ".join(f"{k} {v:.0f}s" for k, v in t.items())
        terminalreporter.write_line(f"webui {name}: {parts}")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    # test_settings_leak.py needs the webui's settings as a fresh install has them: first.
    items.sort(key=lambda item: "test_settings_leak.py" not in item.nodeid)
