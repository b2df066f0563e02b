"""ComfyUI tests: a package so this conftest.py is imported as comfyui.conftest, not as a
second top-level `conftest` module clobbering tests/conftest.py (which tests import from)."""
