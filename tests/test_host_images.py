"""raiiaf_rs.host's embedded-image check, which every host runs before decoding a file's
image: the size comes from the header alone, and the decoded size counts against the same
limit as the tensors."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image
from raiiaf_rs import host


def _png_header(width: int, height: int) -> bytes:
    """A PNG's signature and IHDR only: enough for a size, no pixels at all."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + crc


def _encoded(fmt: str, size=(40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(out, fmt)
    return out.getvalue()


def test_the_size_comes_from_the_header():
    assert host.image_header(_png_header(12000, 9000)) == host.ImageHeader("PNG", 12000, 9000)
    assert host.image_header(_encoded("PNG")) == host.ImageHeader("PNG", 40, 30)
    assert host.image_header(_encoded("JPEG")) == host.ImageHeader("JPEG", 40, 30)
    for bad in (b"", b"not an image", _png_header(1, 1)[:20], _png_header(0, 5)):
        with pytest.raises(ValueError):
            host.image_header(bad)


def test_a_huge_image_is_refused_from_its_header(monkeypatch):
    monkeypatch.delenv("RAIIAF_MAX_DECODED_BYTES", raising=False)
    check = host.check_image(_png_header(12000, 12000), max_decoded_bytes=256 << 20)
    assert check.header == host.ImageHeader("PNG", 12000, 12000)
    assert check.decoded_bytes == 576_000_000
    assert "(PNG, 12000x12000)" in check.refused and "576,000,000 bytes" in check.refused
    assert "limit of 268,435,456" in check.refused and "RAIIAF_MAX_DECODED_BYTES" in check.refused
    # The default limit (1 GiB) takes it at 4 bytes a pixel, not at 16 (a float32 RGB image).
    assert host.check_image(_png_header(12000, 12000)).refused is None
    as_float = host.check_image(_png_header(12000, 12000), bytes_per_pixel=16)
    assert "2,304,000,000" in as_float.refused


def test_the_tensors_count_with_the_image():
    png = _png_header(100, 100)  # 40,000 bytes decoded
    assert host.check_image(png, max_decoded_bytes=50_000, decoded_already=10_000).refused is None
    refused = host.check_image(png, max_decoded_bytes=50_000, decoded_already=10_001).refused
    assert "with the tensors' 10,001" in refused


def test_the_limit_follows_the_environment(monkeypatch):
    monkeypatch.setenv("RAIIAF_MAX_DECODED_BYTES", "1G")
    assert host.decode_limit() == 1 << 30
    assert host.decode_limit(5) == 5
    assert host.check_image(_png_header(12000, 12000)).refused is None  # 576 MB < 1 GiB
    monkeypatch.setenv("RAIIAF_MAX_DECODED_BYTES", "100MiB")
    assert "limit of 104,857,600" in host.check_image(_png_header(12000, 12000)).refused


@pytest.mark.parametrize(
    "text,value",
    [("1073741824", 1 << 30), ("512MiB", 512 << 20), ("4G", 4 << 30), ("2 kb", 2048), ("7b", 7)],
)
def test_byte_sizes_as_the_library_reads_them(text, value):
    assert host.parse_byte_size(text) == value


@pytest.mark.parametrize("text", ["", "G", "1.5G", "4X", "-1", "ib"])
def test_bad_byte_sizes_are_errors(text):
    with pytest.raises(ValueError, match="byte count"):
        host.parse_byte_size(text)


def test_an_unreadable_image_is_refused_with_the_reason():
    check = host.check_image(b"GIF89a garbage")
    assert check.header is None and check.refused.startswith("the embedded image is not shown")
