"""The extension installed as a user does: a git clone in extensions/, its install.py run by
the webui's installer step putting the raiiaf_rs wheel into the webui's Python, then loaded
by the webui at start."""

from __future__ import annotations

import subprocess

from userenv import local_wheel

from .harness import env_for


def test_installer_put_the_wheel_into_the_webuis_python(webui):
    wheel = local_wheel()
    version = wheel.name.split("-")[1]
    out = subprocess.run(
        [str(webui.spec.python), "-c", "import raiiaf_rs; print(raiiaf_rs.__version__)"],
        capture_output=True,
        text=True,
        env=env_for(webui.spec),
    )
    assert out.returncode == 0, f"installer output:\n{webui.install_log}\n{out.stderr}"
    assert out.stdout.strip() == version, webui.install_log
    assert (webui.ext / ".git").is_dir(), "the extension is not a git clone"


def test_the_webui_loaded_the_extension(webui):
    scripts = webui.get("/sdapi/v1/scripts")
    assert "raiiaf" in scripts["txt2img"] and "raiiaf" in scripts["img2img"], scripts
    log = webui.log()
    assert "extension is not active" not in log, log[-4000:]
