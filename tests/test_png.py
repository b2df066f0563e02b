"""raiiaf_rs.encode_png against ComfyUI's SaveImage PNG path (numpy conversion + Pillow)."""

from __future__ import annotations

import io
import json
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import raiiaf_rs
from PIL import Image
from PIL.PngImagePlugin import PngInfo

SPECIALS = np.array(
    [
        np.nan,
        -np.nan,
        np.inf,
        -np.inf,
        1.0,
        0.999999,
        np.nextafter(np.float32(1), np.float32(0)),
        np.nextafter(np.float32(1), np.float32(2)),
        0.0,
        -0.0,
        -1e-30,
        1e-30,
        -0.5,
        1.5,
        1e30,
        -1e30,
        0.5,
        *(np.arange(256) / 255.0),
        *(np.arange(256) / 255.0 - 1e-7),
    ],
    dtype=np.float32,
)

WORKFLOW = {
    "last_node_id": 9,
    "nodes": [
        {
            "id": 6,
            "type": "CLIPTextEncode",
            "widgets_values": ["a red fox in the snow, 85mm, golden hour — 狐狸 🦊"],
        },
        {"id": 3, "type": "KSampler", "widgets_values": [42, "fixed", 30, 7.0, "euler"]},
    ],
    "links": [[1, 4, 0, 3, 0, "MODEL"]],
    "extra": {"ds": {"scale": 1.1, "offset": [0.5, -2.25]}},
}
PROMPT = {"3": {"class_type": "KSampler", "inputs": {"seed": 42, "steps": 30, "cfg": 7.0}}}


def save_image_bytes(image: np.ndarray) -> np.ndarray:
    """ComfyUI SaveImage's conversion of one IMAGE slice."""
    with np.errstate(invalid="ignore"):
        return np.clip(255.0 * image, 0, 255).astype(np.uint8)


def save_image_png(image: np.ndarray, text: dict[str, str]) -> bytes:
    """ComfyUI SaveImage's PNG file, in memory."""
    img = Image.fromarray(save_image_bytes(image))
    metadata = PngInfo()
    for key, value in text.items():
        metadata.add_text(key, value)
    buf = io.BytesIO()
    img.save(buf, format="PNG", pnginfo=metadata, compress_level=4)
    return buf.getvalue()


def chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of every chunk, CRCs checked."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    out, pos = [], 8
    while pos < len(png):
        (n,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + n]
        (crc,) = struct.unpack(">I", png[pos + 8 + n : pos + 12 + n])
        assert crc == zlib.crc32(kind + data), kind
        out.append((kind, data))
        pos += 12 + n
    assert pos == len(png)
    return out


def decode(png: bytes) -> tuple[Image.Image, np.ndarray]:
    im = Image.open(io.BytesIO(png))
    im.load()
    return im, np.asarray(im)


def random_image(h: int, w: int, c: int, seed: int = 0) -> np.ndarray:
    """Floats spread over [-0.25, 1.25] with the special values scattered in."""
    rng = np.random.default_rng(seed)
    img = rng.uniform(-0.25, 1.25, (h, w, c)).astype(np.float32)
    flat = img.reshape(-1)
    idx = rng.choice(flat.size, size=min(flat.size, SPECIALS.size), replace=False)
    flat[idx] = SPECIALS[: idx.size]
    return img


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("level", ["fast", "balanced", "high"])
def test_float_pixels_match_save_image(channels: int, level: str) -> None:
    img = random_image(37, 53, channels, seed=channels)
    im, px = decode(raiiaf_rs.encode_png(img, level=level))
    assert im.mode == {1: "L", 3: "RGB", 4: "RGBA"}[channels]
    assert im.size == (53, 37)
    want = save_image_bytes(img)
    np.testing.assert_array_equal(px.reshape(want.shape), want)


def test_special_values_bit_exact() -> None:
    img = SPECIALS.reshape(1, -1, 1)
    _, px = decode(raiiaf_rs.encode_png(img))
    want = save_image_bytes(img)[..., 0]
    np.testing.assert_array_equal(px, want)
    # What numpy gives on x86-64 / aarch64, and what the Rust core is tested against.
    assert list(want[0, :17]) == [0, 0, 255, 0, 255, 254, 254, 255, 0, 0, 0, 0, 0, 255, 255, 0, 127]


def test_same_file_as_save_image_but_idat() -> None:
    """Every chunk but the compressed pixels is byte-identical to SaveImage's file."""
    img = random_image(64, 96, 3, seed=7)
    text = {
        "prompt": json.dumps(PROMPT),
        "workflow": json.dumps(WORKFLOW),
        "latin1": "café crème, ½ size",
        "unicode": "猫 and 🦊",
        "empty": "",
    }
    ours = raiiaf_rs.encode_png(img, text)
    pillow = save_image_png(img, text)
    assert [c for c in chunks(ours) if c[0] != b"IDAT"] == [
        c for c in chunks(pillow) if c[0] != b"IDAT"
    ]
    kinds = [k for k, _ in chunks(ours)]
    assert kinds[:6] == [b"IHDR", b"tEXt", b"tEXt", b"tEXt", b"iTXt", b"tEXt"]
    assert kinds[-1] == b"IEND"
    im, px = decode(ours)
    assert im.text == text
    assert json.loads(im.text["workflow"]) == WORKFLOW
    np.testing.assert_array_equal(px, decode(pillow)[1])


def test_large_workflow_text() -> None:
    workflow = json.dumps({"nodes": [WORKFLOW["nodes"][0]] * 400})
    assert len(workflow) > 20_000
    im, _ = decode(raiiaf_rs.encode_png(np.zeros((8, 8, 3), np.float32), {"workflow": workflow}))
    assert im.text == {"workflow": workflow}


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_uint8_stored_as_is(channels: int) -> None:
    img = np.random.default_rng(channels).integers(0, 256, (19, 23, channels), dtype=np.uint8)
    _, px = decode(raiiaf_rs.encode_png(img))
    np.testing.assert_array_equal(px.reshape(img.shape), img)


def test_two_dimensional_is_grayscale() -> None:
    img = np.linspace(0, 1, 12 * 10, dtype=np.float32).reshape(12, 10)
    im, px = decode(raiiaf_rs.encode_png(img))
    assert im.mode == "L"
    np.testing.assert_array_equal(px, save_image_bytes(img))


def test_layouts_and_other_float_dtypes() -> None:
    img = random_image(16, 24, 3, seed=3)
    want = save_image_bytes(img)
    # Non-contiguous view and big-endian floats.
    view = np.ascontiguousarray(img.transpose(1, 0, 2)).transpose(1, 0, 2)
    assert not view.flags.c_contiguous
    for arr in (view, img.astype(">f4")):
        np.testing.assert_array_equal(decode(raiiaf_rs.encode_png(arr))[1], want)
    # float16 / float64 go through SaveImage's own numpy expression.
    for dtype in (np.float16, np.float64):
        with np.errstate(over="ignore"):  # float16: 1e30 becomes inf
            arr = img.astype(dtype)
        np.testing.assert_array_equal(decode(raiiaf_rs.encode_png(arr))[1], save_image_bytes(arr))


def test_torch_tensors() -> None:
    torch = pytest.importorskip("torch")
    img = random_image(20, 30, 3, seed=5)
    t = torch.from_numpy(img).requires_grad_(True)
    np.testing.assert_array_equal(
        decode(raiiaf_rs.encode_png(t))[1], save_image_bytes(t.detach().cpu().numpy())
    )
    # A batch slice, as ComfyUI passes images[i]; non-contiguous permuted view.
    batch = torch.from_numpy(np.stack([img, img[::-1].copy()]))
    np.testing.assert_array_equal(
        decode(raiiaf_rs.encode_png(batch[1]))[1], save_image_bytes(img[::-1])
    )
    permuted = batch.permute(0, 2, 1, 3)[0].permute(1, 0, 2)
    np.testing.assert_array_equal(decode(raiiaf_rs.encode_png(permuted))[1], save_image_bytes(img))
    u8 = torch.from_numpy(save_image_bytes(img))
    np.testing.assert_array_equal(decode(raiiaf_rs.encode_png(u8))[1], u8.numpy())
    if torch.cuda.is_available():
        np.testing.assert_array_equal(
            decode(raiiaf_rs.encode_png(t.cuda()))[1], save_image_bytes(img)
        )
    bf16 = t.detach().to(torch.bfloat16)
    np.testing.assert_array_equal(
        decode(raiiaf_rs.encode_png(bf16))[1], save_image_bytes(bf16.float().numpy())
    )


def test_threads() -> None:
    images = [random_image(64, 64, 3, seed=s) for s in range(8)]
    with ThreadPoolExecutor(4) as pool:
        pngs = list(pool.map(raiiaf_rs.encode_png, images))
    for img, png in zip(images, pngs):
        np.testing.assert_array_equal(decode(png)[1], save_image_bytes(img))


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((1, 8, 8, 3), np.float32), r"\(H, W, C\).*images\[0\]"),
        (np.zeros(8, np.float32), r"\(H, W, C\)"),
        (np.zeros((8, 8, 2), np.float32), "2 channels"),
        (np.zeros((8, 8, 5), np.uint8), "5 channels"),
        (np.zeros((0, 8, 3), np.float32), "8 wide and 0 high"),
        (np.zeros((8, 0, 3), np.uint8), "0 wide and 8 high"),
        (np.zeros((8, 8, 3), np.int32), "int32"),
        (np.zeros((8, 8, 3), bool), "bool"),
    ],
)
def test_bad_images(image: np.ndarray, match: str) -> None:
    with pytest.raises(raiiaf_rs.InvalidArgumentError, match=match):
        raiiaf_rs.encode_png(image)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ({"": "v"}, "keyword"),
        ({"k" * 80: "v"}, "keyword"),
        ({"a\0b": "v"}, "keyword"),
        ({"猫": "v"}, "Latin-1"),
        ({"k": 1}, "str"),
        ({1: "v"}, "str"),
    ],
)
def test_bad_text(text: dict, match: str) -> None:
    with pytest.raises(raiiaf_rs.InvalidArgumentError, match=match):
        raiiaf_rs.encode_png(np.zeros((2, 2, 3), np.float32), text)


def test_bad_level() -> None:
    with pytest.raises(raiiaf_rs.InvalidArgumentError, match="fastest"):
        raiiaf_rs.encode_png(np.zeros((2, 2, 3), np.float32), level="fastest")
    assert issubclass(raiiaf_rs.InvalidArgumentError, ValueError)
