"""Tests of the AUTOMATIC1111 / Forge extension (root scripts/, lib_raiiaf/, install.py) in a

``webui/`` is a from-scratch reproduction of the parts of stable-diffusion-webui the
extension touches (module names, signatures and call order as documented in
shared/docs/a1111.md), with real k-diffusion samplers over a tiny deterministic
model. This package makes ``conftest.py`` here ``a1111.conftest``, so it does not
shadow tests/conftest.py.
"""
