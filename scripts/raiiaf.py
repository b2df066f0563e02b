"""raiiaf for AUTOMATIC1111 / Forge / reForge: a ``.raiiaf`` beside every saved image (the
exact initial noise of every sampling pass, the settings, the infotext, the environment),
and regeneration from such a file (its noise copied into the sampler's noise tensor).

The webui loads this file (the repository cloned into ``extensions/``) with the repository
root on ``sys.path``; the code is in ``lib_raiiaf/``. Without a fitting ``raiiaf_rs`` (the
wheel ``install.py`` installs) nothing is registered and the console says what to do: the
webui keeps running.
"""

from __future__ import annotations

import importlib.util
import os

from modules import script_callbacks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _version_problem(version: str) -> str | None:
    """requirement.py's verdict on the installed version (loaded under a private name:
    another extension may have a module called ``requirement``)."""
    path = os.path.join(ROOT, "requirement.py")
    if not os.path.isfile(path):
        return None
    spec = importlib.util.spec_from_file_location("_raiiaf_requirement", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        return module.version_problem(version)
    except Exception as e:  # an unreadable requirements.txt must not break the webui
        return f"the version range could not be read ({e})"


def _problem() -> str | None:
    try:
        import raiiaf_rs
    except ImportError as e:
        return f"raiiaf_rs is not installed in the webui's Python ({e})"
    return _version_problem(str(getattr(raiiaf_rs, "__version__", "0")))


_impl = None
_why = _problem()
if _why is None:
    try:
        from lib_raiiaf import script as _impl
    except ImportError as e:
        _why = str(e)
if _impl is None:
    print(
        f"[raiiaf] the extension is not active: {_why}. Restart the webui so that its "
        "install.py installs the raiiaf_rs wheel (see its messages), or put the wheel for "
        "your system into this extension's wheels/ folder (or set RAIIAF_WHEEL to it) and "
        "restart the webui."
    )
else:
    RaiiafScript = _impl.RaiiafScript
    # Module level, once per load (the loader clears the callbacks before loading scripts).
    script_callbacks.on_before_image_saved(_impl.on_before_image_saved)
    script_callbacks.on_image_saved(_impl.on_image_saved)
    script_callbacks.on_after_component(_impl.remember_component)
