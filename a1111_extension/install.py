"""Run by the webui (its own Python, PYTHONPATH = webui root) at every launch unless
--skip-install: installs the raiiaf_rs wheel (Rust, abi3: one wheel for CPython >= 3.9).

Looks for a wheel, in order: $RAIIAF_WHEEL, wheels/ in this extension folder, the
repository's target/wheels/ (when the extension is a checkout of raiiaf-rs), then the
package index (``raiiaf-rs``). Nothing happens when raiiaf_rs is already importable
at the wanted version.
"""

from __future__ import annotations

import glob
import os

import launch  # the webui's launch module (webui root on PYTHONPATH)

HERE = os.path.dirname(os.path.abspath(__file__))


def _wheel():
    env = os.environ.get("RAIIAF_WHEEL")
    if env:
        return env
    for pattern in (
        os.path.join(HERE, "wheels", "raiiaf_rs-*.whl"),
        os.path.join(HERE, "..", "target", "wheels", "raiiaf_rs-*.whl"),
    ):
        found = sorted(glob.glob(pattern))
        if found:
            return found[-1]
    return None


def main():
    wheel = _wheel()
    if launch.is_installed("raiiaf_rs") and wheel is None:
        return
    if wheel is not None:
        launch.run_pip(f'install --upgrade "{wheel}"', "raiiaf_rs (.raiiaf files)")
    else:
        launch.run_pip("install raiiaf-rs", "raiiaf_rs (.raiiaf files)")


main()
