"""raiiaf for AUTOMATIC1111 / Forge / reForge: a ``.raiiaf`` beside every saved image (the
exact initial noise of every sampling pass, the settings, the infotext, the environment),
and regeneration from such a file (its noise copied into the sampler's noise tensor).

The webui loads this file (the repository cloned into ``extensions/``) with the repository
root on ``sys.path``; the code is in ``lib_raiiaf/``.
"""

from __future__ import annotations

from modules import script_callbacks

try:
    from lib_raiiaf import script as _impl
except ImportError as e:  # raiiaf_rs not installed: say so, keep the webui running
    _impl = None
    print(
        f"[raiiaf] the extension is not active: {e}. The webui installs the raiiaf_rs wheel "
        "at start (install.py, see its messages); or put the wheel into this extension's "
        "wheels/ folder (or set RAIIAF_WHEEL to it) and restart the webui."
    )

if _impl is not None:
    RaiiafScript = _impl.RaiiafScript
    # Module level, once per load (the loader clears the callbacks before loading scripts).
    script_callbacks.on_before_image_saved(_impl.on_before_image_saved)
    script_callbacks.on_image_saved(_impl.on_image_saved)
    script_callbacks.on_after_component(_impl.remember_component)
