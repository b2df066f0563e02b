"""ComfyUI entry point: this repository is also a ComfyUI custom node pack.

Clone it into ``ComfyUI/custom_nodes/`` (any folder name except
``raiiaf_rs``, the Python package's name) and install the ``raiiaf_rs``
wheel into ComfyUI's Python; see README.md. The nodes live in comfy_nodes/.
"""

try:
    import comfy_api  # noqa: F401  (importable only inside ComfyUI)
except ImportError:
    # Imported outside ComfyUI (pytest collects the repository root as a
    # package): there is nothing to register.
    __all__: list = []
else:
    from .comfy_nodes import comfy_entrypoint

    # The front-end extension (plain JavaScript, served under /extensions/<folder>/).
    # ComfyUI resolves it against the directory of the module it loaded: this one.
    WEB_DIRECTORY = "./comfy_nodes/web"

    __all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]
