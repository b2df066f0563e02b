"""Small JPEG thumbnails of the images embedded in ``.raiiaf`` files, made once per image and
kept in a bounded disk cache, so a browser listing thousands of files never decodes a full
image per request.

The cache is keyed by the embedded image's SHA-256 (the catalog's ``image_sha256``): equal
images share one thumbnail, and a file rewritten with another image gets a new one. Making a
thumbnail reads only the file's header, manifest and image chunk (no tensor is decoded), checks
the image's declared size against the decoded-size limit from its header first
(:func:`raiiaf_rs.host.check_image`), and lets PIL decode it reduced where it can. When the
cache grows past its bound, the least recently used thumbnails go first.

>>> cache = ThumbnailCache("~/.cache/raiiaf-rs/thumbs", max_bytes=256 << 20)
>>> jpeg = cache.get("/archive/cat.raiiaf", image_sha256)   # decoded once, then read from disk
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import threading

import raiiaf_rs
from raiiaf_rs import host

#: Longest side of a thumbnail, pixels.
SIZE = 256
#: Default bound of the cache on disk.
DEFAULT_MAX_BYTES = 256 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")


class ThumbnailError(ValueError):
    """The file has no image a thumbnail can be made of; the message says why."""


class ThumbnailCache:
    """Thumbnails on disk under ``folder``, at most ``max_bytes`` in all (module docstring).
    Thread-safe; several processes may share a folder (files are written atomically)."""

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_decoded_bytes: int | None = None,
    ) -> None:
        self.folder = os.path.abspath(os.path.expanduser(os.fspath(folder)))
        self.max_bytes = int(max_bytes)
        self.max_decoded_bytes = max_decoded_bytes
        #: How many images were decoded by this object (a cache hit decodes none).
        self.decodes = 0
        self._lock = threading.Lock()
        self._making: dict[str, threading.Lock] = {}
        os.makedirs(self.folder, exist_ok=True)
        self._bytes = sum(size for _path, size, _t in self._entries())

    def _file(self, key: str) -> str:
        return os.path.join(self.folder, key[:2], key + ".jpg")

    def get(self, path: str, image_sha256: str | None) -> bytes:
        """The JPEG thumbnail of the image embedded in the file at ``path`` (already checked
        to be an allowed file), whose SHA-256 is ``image_sha256``; ThumbnailError when the
        file has no image or it cannot be shown."""
        if not image_sha256 or not _SHA256.fullmatch(image_sha256):
            raise ThumbnailError("the file holds no image")
        target = self._file(image_sha256)
        with self._lock:
            making = self._making.setdefault(image_sha256, threading.Lock())
        with making:  # one decode per image, however many requests ask at once
            try:
                with open(target, "rb") as f:
                    data = f.read()
                os.utime(target)  # recently used: evicted last
                return data
            except FileNotFoundError:
                pass
            data = self._make(path)
            self._store(target, data)
        with self._lock:
            self._making.pop(image_sha256, None)
        return data

    def _make(self, path: str) -> bytes:
        """Decode the file's embedded image, reduced, into a JPEG."""
        from PIL import Image

        try:
            art = raiiaf_rs.read(
                path, names=[], image=True, max_decoded_bytes=self.max_decoded_bytes
            )
        except (raiiaf_rs.RaiiafError, OSError) as e:
            raise ThumbnailError(f"the file cannot be read ({type(e).__name__})") from None
        if not art.image:
            raise ThumbnailError("the file holds no image")
        check = host.check_image(art.image, max_decoded_bytes=self.max_decoded_bytes)
        if check.refused:
            raise ThumbnailError(check.refused)
        with self._lock:
            self.decodes += 1
        try:
            with Image.open(io.BytesIO(art.image)) as img:
                img.draft("RGB", (SIZE, SIZE))  # JPEG: decoded at a reduced scale
                img.thumbnail((SIZE, SIZE))
                if img.mode not in ("RGB", "L"):
                    img = img.convert("RGBA")
                    flat = Image.new("RGB", img.size, (32, 32, 32))
                    flat.paste(img, mask=img.getchannel("A"))
                    img = flat
                out = io.BytesIO()
                img.save(out, "JPEG", quality=85)
        except Exception as e:  # an image PIL cannot decode: the listing still shows
            raise ThumbnailError(f"the embedded image is not shown ({type(e).__name__})") from None
        return out.getvalue()

    def _store(self, target: str, data: bytes) -> None:
        folder = os.path.dirname(target)
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".part")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
        with self._lock:
            self._bytes += len(data)
            over = self._bytes > self.max_bytes
        if over:
            self._evict()

    def _entries(self) -> list[tuple[str, int, float]]:
        """(path, size, last use) of every thumbnail on disk."""
        out = []
        for sub in os.scandir(self.folder):
            if not sub.is_dir(follow_symlinks=False):
                continue
            for e in os.scandir(sub.path):
                if e.name.endswith(".jpg"):
                    try:
                        st = e.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    out.append((e.path, st.st_size, st.st_mtime))
        return out

    def _evict(self) -> None:
        """Remove the least recently used thumbnails until the cache holds at most 90 % of
        its bound (so that it is not swept again at the next one)."""
        with self._lock:
            entries = sorted(self._entries(), key=lambda e: e[2])
            total = sum(size for _p, size, _t in entries)
            for path, size, _t in entries:
                if total <= self.max_bytes * 0.9:
                    break
                try:
                    os.unlink(path)
                    total -= size
                except OSError:
                    pass
            self._bytes = total

    @property
    def bytes(self) -> int:
        """The bytes the thumbnails take on disk."""
        return self._bytes
