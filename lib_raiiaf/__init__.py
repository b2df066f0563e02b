"""Helpers of the raiiaf webui extension (AUTOMATIC1111 >= 1.6 and Forge).

Imported by ``scripts/raiiaf.py`` while the webui has this extension's folder at the
front of ``sys.path``. Nothing here imports webui modules at import time except
``webui``, which reads them lazily and defensively (they differ between versions).
"""
