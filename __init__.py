"""ComfyUI entry point: this repository is also a ComfyUI custom node pack.

Clone it into ``ComfyUI/custom_nodes/`` (any folder name except ``raiiaf_rs``, the
Python package's name); ComfyUI-Manager and the Comfy registry install the ``raiiaf_rs``
wheel from requirements.txt. The nodes live in comfy_nodes/.

Without a usable ``raiiaf_rs`` the pack registers no nodes and logs one line saying
what to install: the rest of ComfyUI keeps working.
"""

import logging

try:
    import comfy_api  # noqa: F401  (importable only inside ComfyUI)
except ImportError:
    # Imported outside ComfyUI (pytest collects the repository root as a
    # package): there is nothing to register.
    __all__: list = []
else:
    from .requirement import problem

    _problem = problem()
    if _problem is not None:
        logging.warning("[raiiaf] nodes not loaded: %s", _problem)
        # An empty mapping: ComfyUI loads the pack without nodes instead of failing it.
        NODE_CLASS_MAPPINGS: dict = {}
        __all__ = ["NODE_CLASS_MAPPINGS"]
    else:
        from .comfy_nodes import comfy_entrypoint

        # The front-end extension (plain JavaScript, served under /extensions/<folder>/).
        # ComfyUI resolves it against the directory of the module it loaded: this one.
        WEB_DIRECTORY = "./comfy_nodes/web"

        __all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]
