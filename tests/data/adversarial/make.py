"""Generates the adversarial corpus: hostile .raiiaf files, each with its expected error.

    .venv/bin/python tests/data/adversarial/make.py     # rewrites *.raiiaf and expected.json here

Every file starts from a small valid file written by raiiaf_rs (raw, compact or zfp codec, two
latents, an image, an environment) or from the GEN5 vectors, and breaks exactly one rule of
FORMAT.md section 7. ``expected.json`` maps each file to the Python exception class that
``raiiaf_rs.read`` must raise and a substring of its message, plus ``inflates``: the memory the
reader may legitimately need before it can tell (decompression bombs within the format's limits:
the bytes a frame inflates to, 64x that for JSON, which is parsed), which
tests/test_adversarial.py adds to its memory bound. The output is deterministic;
tests/test_adversarial.py reads every file in a subprocess and checks both.
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np
import zstandard

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT / "python"))
import raiiaf_rs  # noqa: E402

GEN5 = ROOT / "tests" / "data" / "vectors" / "gen5-0.1.0" / "gen5_f32_raw_png.gen5"
CORRUPT, LIMIT, HASH, UNSUPPORTED = (
    "CorruptFileError",
    "LimitExceededError",
    "HashMismatchError",
    "UnsupportedError",
)
#: More than the caller's max_decoded_bytes (a subclass of LimitExceededError).
DECODED_LIMIT = "DecodedSizeLimitError"
MIB = 1 << 20
#: A parsed JSON document takes up to ~80x the memory of its text (1 MiB of ``0,`` becomes
#: 63-83 MiB of serde_json values): what a JSON frame within its limit may cost.
JSON_MEMORY = 64


# --- building blocks -----------------------------------------------------------------------


def base(codec: str) -> bytes:
    """A small valid file; byte-identical on every run."""
    rng = np.random.default_rng(8)
    latents = {
        "initial_noise": rng.standard_normal((1, 4, 4, 4), dtype=np.float32),
        "final_latent": rng.standard_normal((1, 4, 4, 4), dtype=np.float32),
    }
    env = raiiaf_rs.environment_document([("python", "name=python;version=3.11.7")])
    meta = {"prompt": "a lighthouse", "date": "2026-01-01T00:00:00+00:00", "seed": 7}
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "base.raiiaf"
        raiiaf_rs.write(
            path,
            latents,
            b"\x89PNG\r\n\x1a\n" + bytes(range(64)),
            meta,
            environment=env,
            codec=codec,
        )
        return path.read_bytes()


def zeros_bomb() -> bytes:
    """The 1 GiB zero tensor (1,16,4096,4096) float32 in a ~33 KB compact file, with an
    environment: within every relative limit, refused by max_decoded_bytes (1 GiB per file)."""
    env = raiiaf_rs.environment_document([("python", "name=python;version=3.11.7")])
    meta = {"prompt": "zeros", "date": "2026-01-01T00:00:00+00:00"}
    zeros = np.zeros((1, 16, 4096, 4096), dtype=np.float32)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "zeros.raiiaf"
        raiiaf_rs.write(
            path, {"initial_noise": zeros}, metadata=meta, environment=env, codec="compact"
        )
        return path.read_bytes()


def u32(b: bytes, at: int) -> int:
    return struct.unpack_from("<I", b, at)[0]


def set_u32(b: bytes, at: int, v: int) -> bytes:
    out = bytearray(b)
    struct.pack_into("<I", out, at, v)
    return bytes(out)


def header_len(b: bytes) -> int:
    return 32 if b[:4] == b"GEN5" else 33


def meta_at(b: bytes) -> tuple[int, int]:
    """(META offset, META size) from a raiiaf or GEN5 header."""
    o = 8 if b[:4] == b"GEN5" else 9
    return u32(b, o), u32(b, o + 4)


def manifest(b: bytes) -> dict:
    off, size = meta_at(b)
    whole = zstandard.ZstdDecompressor().decompress(b[off : off + size])
    return json.loads(whole[12:])


def chunks(j: dict) -> list:
    return (j.get("raiiaf_metadata") or j["gen5_metadata"])["chunks"]


def frame(content: bytes, level: int = 3) -> bytes:
    return zstandard.ZstdCompressor(level=level).compress(content)


def with_meta_frame(b: bytes, meta: bytes, count: int | None = None) -> bytes:
    """Replaces the META chunk with ``meta`` (already a frame or any bytes); fixes the header."""
    off, _ = meta_at(b)
    o = 8 if b[:4] == b"GEN5" else 9
    out = set_u32(b[:off] + meta, o + 4, len(meta))
    return out if count is None else set_u32(out, o + 8, count)


def with_meta_text(b: bytes, text: bytes, level: int = 3, count: int | None = None) -> bytes:
    return with_meta_frame(
        b, frame(b"META0000" + struct.pack("<I", len(text)) + text, level), count
    )


def with_manifest(b: bytes, edit) -> bytes:
    """Applies ``edit(manifest)`` and rewrites META (chunk count follows the chunks list)."""
    j = manifest(b)
    edit(j)
    return with_meta_text(b, json.dumps(j).encode(), count=len(chunks(j)))


def set_chunk(i: int, **fields):
    def edit(j):
        chunks(j)[i].update(fields)

    return edit


def replace_chunk(b: bytes, i: int, payload: bytes, **fields) -> bytes:
    """Puts ``payload`` where chunk ``i`` was (same size or the layout shifts), record updated."""
    j = manifest(b)
    rec = chunks(j)[i]
    start, old = rec["offset"], rec["compressed_size"]
    delta = len(payload) - old
    rec["compressed_size"] = len(payload)
    rec.update(fields)
    for r in chunks(j):
        if r["offset"] > start:
            r["offset"] += delta
    off, _ = meta_at(b)
    body = b[:start] + payload + b[start + old : off]
    o = 8 if b[:4] == b"GEN5" else 9
    body = set_u32(body, o, off + delta)
    return with_meta_text(body, json.dumps(j).encode())


def chunk_bytes(b: bytes, i: int) -> bytes:
    rec = chunks(manifest(b))[i]
    return b[rec["offset"] : rec["offset"] + rec["compressed_size"]]


def fhd_frame_header(size: int) -> bytes:
    """zstd frame header: single segment, 8-byte content size, no checksum."""
    return b"\x28\xb5\x2f\xfd\xe0" + struct.pack("<Q", size)


def raw_block(data: bytes, last: bool) -> bytes:
    return struct.pack("<I", int(last) | (len(data) << 3))[:3] + data


def rle_block(byte: int, n: int, last: bool) -> bytes:
    return struct.pack("<I", int(last) | (1 << 1) | (n << 3))[:3] + bytes([byte])


def rle_bomb(head: bytes, blocks: int, byte: int = 0) -> bytes:
    """One frame: ``head`` in a raw block, then ``blocks`` RLE blocks of 128 KiB each
    (4 bytes per 128 KiB: the most zstd can expand)."""
    total = len(head) + blocks * 128 * 1024
    body = raw_block(head, False) + b"".join(
        rle_block(byte, 128 * 1024, k == blocks - 1) for k in range(blocks)
    )
    return fhd_frame_header(total) + body


# --- the corpus ----------------------------------------------------------------------------


def cases() -> dict[str, tuple[bytes, str, str, int]]:
    raw, compact, zfp = base("raw"), base("compact"), base("zfp")
    gen5 = GEN5.read_bytes()
    out: dict[str, tuple[bytes, str, str, int]] = {}

    def add(name, data, cls, msg, inflates=0):
        assert name not in out, name
        out[name] = (data, cls, msg, inflates)

    # Truncated at every chunk boundary (and inside the header and META).
    for tag, f in (("raw", raw), ("compact", compact), ("zfp", zfp), ("gen5", gen5)):
        j = manifest(f)
        off, size = meta_at(f)
        cuts = {1, header_len(f) - 1, header_len(f), off, off + 1, off + size // 2, off + size - 1}
        for r in chunks(j):
            cuts |= {r["offset"], r["offset"] + 1, r["offset"] + r["compressed_size"] - 1}
        for cut in sorted(cuts):
            if cut < (4 if tag == "gen5" else 6):
                msg = "not a .raiiaf file"  # too short to tell
            elif cut < header_len(f):
                msg = "truncated file: the header"
            else:
                msg = "truncated file: the META chunk"
            add(f"truncated-{tag}-at-{cut:05d}", f[:cut], CORRUPT, msg)
    add("empty", b"", CORRUPT, "not a .raiiaf file")

    # Wrong magic.
    add("magic-png", b"\x89PNG\r\n\x1a\n" + raw[8:], CORRUPT, "not a .raiiaf file")
    add("magic-riff", b"RIFF\0\0" + raw[6:], CORRUPT, "not a .raiiaf file")
    add("magic-one-letter-off", b"raiiaF" + raw[6:], CORRUPT, "not a .raiiaf file")
    add("magic-gen5-lowercase", b"gen5" + gen5[4:], CORRUPT, "not a .raiiaf file")

    # Future (and past) major versions.
    for major, minor in ((2, 0), (255, 7), (0, 9)):
        f = bytearray(raw)
        f[6], f[7] = major, minor
        add(
            f"version-{major}.{minor}",
            bytes(f),
            UNSUPPORTED,
            f"unsupported format version {major}.{minor}",
        )
    f = bytearray(gen5)
    f[4] = 2
    add("version-gen5-2.0", bytes(f), UNSUPPORTED, "unsupported format version 2.0")

    # Offsets beyond the file, inside the header, overlapping.
    add(
        "meta-offset-u32-max",
        set_u32(raw, 9, 0xFFFFFFFF),
        CORRUPT,
        "truncated file: the META chunk",
    )
    add(
        "meta-size-u32-max", set_u32(raw, 13, 0xFFFFFFFF), CORRUPT, "truncated file: the META chunk"
    )
    add("meta-offset-in-header", set_u32(raw, 9, 5), CORRUPT, "truncated file: the META chunk")
    add("meta-size-zero", set_u32(raw, 13, 0), CORRUPT, "META (manifest)")
    add(
        "chunk-offset-2^40",
        with_manifest(raw, set_chunk(0, offset=1 << 40)),
        CORRUPT,
        "truncated file: chunk LATN",
    )
    add(
        "chunk-offset-in-header",
        with_manifest(raw, set_chunk(0, offset=0)),
        CORRUPT,
        "inside the 33-byte header",
    )
    add(
        "chunk-end-beyond-meta",
        with_manifest(raw, set_chunk(1, compressed_size=1 << 20)),
        CORRUPT,
        "truncated file: chunk LATN",
    )
    j0 = chunks(manifest(raw))
    add(
        "chunks-overlap-same-offset",
        with_manifest(raw, set_chunk(1, offset=j0[0]["offset"])),
        CORRUPT,
        "overlap",
    )
    add(
        "chunks-overlap-by-one-byte",
        with_manifest(raw, set_chunk(1, offset=j0[1]["offset"] - 1)),
        CORRUPT,
        "overlap",
    )
    add(
        "chunk-count-mismatch",
        set_u32(raw, 17, 7),
        CORRUPT,
        "the header announces 7 chunks but the manifest lists 4",
    )

    # Counts and sizes that overflow u32/u64 arithmetic.
    u64max = (1 << 64) - 1
    add(
        "chunk-count-u32-max",
        set_u32(raw, 17, 0xFFFFFFFF),
        CORRUPT,
        "the header announces 4294967295 chunks",
    )
    add(
        "offset-plus-size-overflows-u64",
        with_manifest(raw, set_chunk(0, offset=u64max - 3)),
        CORRUPT,
        "truncated file: chunk LATN",
    )
    add(
        "compressed-size-u64-max",
        with_manifest(raw, set_chunk(0, compressed_size=u64max)),
        CORRUPT,
        "truncated file: chunk LATN",
    )
    add(
        "offset-2^64",
        with_manifest(raw, set_chunk(0, offset=1 << 64)),
        CORRUPT,
        "chunks[0].offset is not a non-negative integer",
    )
    add(
        "offset-negative",
        with_manifest(raw, set_chunk(0, offset=-33)),
        CORRUPT,
        "chunks[0].offset is not a non-negative integer",
    )
    add(
        "offset-float",
        with_manifest(raw, set_chunk(0, offset=33.0)),
        CORRUPT,
        "chunks[0].offset is not a non-negative integer",
    )
    add(
        "shape-product-overflows-u64",
        with_manifest(raw, lambda j: chunks(j)[0]["extra"].update(shape=[1 << 32, 1 << 32, 4])),
        CORRUPT,
        "LATN",
    )
    add(
        "shape-times-itemsize-overflows-u64",
        with_manifest(raw, lambda j: chunks(j)[0]["extra"].update(shape=[1 << 62])),
        CORRUPT,
        "LATN",
    )

    def huge_shape(j):
        chunks(j)[0]["extra"]["shape"] = [1 << 30, 4]
        chunks(j)[0]["uncompressed_size"] = 1 << 34

    add("shape-16-gib-claimed", with_manifest(raw, huge_shape), LIMIT, "declares 17179869184 bytes")
    add(
        "uncompressed-size-u64-max",
        with_manifest(raw, set_chunk(0, uncompressed_size=u64max)),
        CORRUPT,
        "uncompressed_size says 18446744073709551615",
    )
    add(
        "shape-rank-9",
        with_manifest(raw, lambda j: chunks(j)[0]["extra"].update(shape=[1] * 8 + [64])),
        CORRUPT,
        "LATN",
    )
    add(
        "shape-zero-axis",
        with_manifest(raw, lambda j: chunks(j)[0]["extra"].update(shape=[1, 4, 0, 4])),
        CORRUPT,
        "LATN",
    )
    add(
        "zfp-len-header-plus-data-overflows",
        with_manifest(zfp, set_chunk(0, len_header=u64max, len_data=2)),
        CORRUPT,
        "a zfp latent needs len_header + len_data = compressed_size",
    )

    # Decompression bombs: zstd frames declaring huge content sizes.
    off, _ = meta_at(raw)
    forged_tib = fhd_frame_header(1 << 40) + raw_block(b"", True)
    add(
        "bomb-meta-declares-1-tib",
        with_meta_frame(raw, forged_tib),
        LIMIT,
        "META (manifest) declares 1099511627776 bytes",
    )
    forged_4g = fhd_frame_header(0xFFFFFFFF) + raw_block(b"META", True)
    add(
        "bomb-meta-declares-4-gib",
        with_meta_frame(raw, forged_4g),
        LIMIT,
        "META (manifest) declares 4294967295 bytes",
    )
    zeros_json = b'{"x":[' + b"0," * 2_000_000 + b"0]}"
    add(
        "bomb-meta-json-4-mb-of-zeros",
        with_meta_text(raw, zeros_json, level=19),
        LIMIT,
        "META (manifest) declares",
    )
    floor_json = b'{"x":[' + b"0," * (MIB // 2 - 20) + b"0]}"
    add(
        "bomb-meta-json-at-the-1-mib-floor",
        with_meta_text(raw, floor_json, level=19),
        CORRUPT,
        'no "raiiaf_metadata" object',
        inflates=JSON_MEMORY * len(floor_json),
    )
    data_i = 2  # raw: LATN, LATN, DATA, ENVC
    add(
        "bomb-data-declares-64-gib",
        with_manifest(raw, set_chunk(data_i, uncompressed_size=64 << 30)),
        LIMIT,
        "declares 68719476736 bytes",
    )
    blocks = 384  # 48 MiB from ~1.6 KB: within limit(compressed_size), hash wrong
    head = b"DATA0000" + struct.pack("<I", blocks * 128 * 1024)
    bomb = rle_bomb(head, blocks)
    add(
        "bomb-data-rle-48-mib-within-the-limit",
        replace_chunk(raw, data_i, bomb, uncompressed_size=blocks * 128 * 1024),
        HASH,
        "hash mismatch in chunk DATA",
        inflates=blocks * 128 * 1024,
    )
    lying = fhd_frame_header(100 << 20) + raw_block(
        head[:8] + struct.pack("<I", (100 << 20) - 12), True
    )
    add(
        "bomb-data-frame-declares-100-mib-holds-12-bytes",
        replace_chunk(raw, data_i, lying, uncompressed_size=(100 << 20) - 12),
        LIMIT,
        "declares 104857588 bytes",
    )
    env_i = 3
    env_text = b'{"env_version": 1, "components": [' + b"0," * 1_000_000 + b"0]}"
    env_frame = frame(b"ENVC0000" + struct.pack("<I", len(env_text)) + env_text, 19)
    add(
        "bomb-envc-json-2-mb-of-zeros",
        replace_chunk(
            raw,
            env_i,
            env_frame,
            uncompressed_size=len(env_text),
            hash=hashlib.sha256(env_text).hexdigest(),
        ),
        LIMIT,
        "chunk ENVC (#3) declares",
    )

    def compact_bomb(j):
        chunks(j)[0]["extra"]["shape"] = [1 << 20, 1 << 20]
        chunks(j)[0]["uncompressed_size"] = 4 << 40

    add(
        "bomb-compact-shape-4-tib",
        with_manifest(compact, compact_bomb),
        LIMIT,
        "declares 4398046511104 bytes",
    )
    add(
        "bomb-compact-zeros-1-gib-in-33-kb",
        zeros_bomb(),
        DECODED_LIMIT,
        "the 2 chunks to decode would decode to",  # the tensor and the environment
    )
    no_size = b"\x28\xb5\x2f\xfd\x00\x00" + raw_block(b"x", True)  # FHD 0: no content size
    add(
        "zstd-frame-without-content-size",
        replace_chunk(raw, data_i, no_size),
        CORRUPT,
        "does not declare its content size",
    )
    trailing = chunk_bytes(raw, data_i) + b"\0\0\0\0"
    add(
        "zstd-frame-with-trailing-bytes",
        replace_chunk(raw, data_i, trailing),
        CORRUPT,
        "chunk DATA",
    )
    add(
        "meta-not-zstd",
        with_meta_frame(raw, b'{"raiiaf_metadata": {}}'),
        CORRUPT,
        "not a zstd frame",
    )
    add(
        "meta-inner-type-wrong",
        with_meta_frame(raw, frame(b"ATEM0000" + struct.pack("<I", 2) + b"{}")),
        CORRUPT,
        "inner header type",
    )
    add(
        "meta-inner-length-wrong",
        with_meta_frame(raw, frame(b"META0000" + struct.pack("<I", 99) + b"{}")),
        CORRUPT,
        "inner header says 99 bytes of JSON",
    )
    add(
        "meta-shorter-than-inner-header",
        with_meta_frame(raw, frame(b"META")),
        CORRUPT,
        "less than its inner header",
    )

    # zfp headers disagreeing with the manifest.
    jz = chunks(manifest(zfp))[0]
    at = jz["offset"] + jz["len_header"]

    def zfp_dims(f: bytes, dims: tuple[int, ...]) -> bytes:
        v = int.from_bytes(f[at : at + 12], "little")
        meta = 2 | ((len(dims) - 1) << 2)
        for k, d in enumerate(dims):
            meta |= (d - 1) << (4 + 12 * k)
        mask = ((1 << 52) - 1) << 32
        v = (v & ~mask) | (meta << 32)
        return f[:at] + v.to_bytes(12, "little") + f[at + 12 :]

    add(
        "zfp-header-4096x4096x64", zfp_dims(zfp, (4096, 4096, 64, 1)), CORRUPT, "corrupt chunk LATN"
    )
    add(
        "zfp-header-smaller-than-manifest",
        zfp_dims(zfp, (2, 4, 4, 1)),
        CORRUPT,
        "corrupt chunk LATN",
    )
    add("zfp-header-rank-2", zfp_dims(zfp, (16, 4)), CORRUPT, "corrupt chunk LATN")

    def zfp_shape(j):
        chunks(j)[0]["extra"]["shape"] = [1, 4, 4, 8]
        chunks(j)[0]["uncompressed_size"] = 512

    add("zfp-manifest-shape-larger", with_manifest(zfp, zfp_shape), CORRUPT, "corrupt chunk LATN")
    add(
        "zfp-len-split-wrong",
        with_manifest(
            zfp, set_chunk(0, len_header=jz["len_header"] + 4, len_data=jz["len_data"] - 4)
        ),
        CORRUPT,
        "corrupt chunk LATN",
    )
    add(
        "zfp-float16",
        with_manifest(
            zfp,
            lambda j: (
                chunks(j)[0].update(flags="F16"),
                chunks(j)[0]["extra"].update(dtype="float16"),
            ),
        ),
        CORRUPT,
        "LATN",
    )

    # Duplicate chunks.
    add(
        "duplicate-latent-name",
        with_manifest(raw, lambda j: chunks(j)[1]["extra"].update(key="initial_noise")),
        CORRUPT,
        "two latents are named",
    )
    add(
        "duplicate-record",
        with_manifest(raw, lambda j: chunks(j).append(dict(chunks(j)[0]))),
        CORRUPT,
        "two latents are named",
    )
    add(
        "duplicate-data-chunk",
        with_manifest(raw, lambda j: chunks(j).append(dict(chunks(j)[data_i]))),
        CORRUPT,
        "at most one of each",
    )
    add(
        "duplicate-envc-chunk",
        with_manifest(raw, lambda j: chunks(j).append(dict(chunks(j)[env_i]))),
        CORRUPT,
        "at most one of each",
    )

    # Invalid UTF-8 and JSON.
    good = json.dumps(manifest(raw)).encode()
    add(
        "json-invalid-utf8",
        with_meta_text(raw, good.replace(b"lighthouse", b"light\xffhouse")),
        CORRUPT,
        "not UTF-8",
    )
    add(
        "json-overlong-utf8",
        with_meta_text(raw, good.replace(b"lighthouse", b"light\xc0\xafhouse")),
        CORRUPT,
        "not UTF-8",
    )
    add("json-truncated", with_meta_text(raw, good[: len(good) // 2]), CORRUPT, "not valid JSON")
    add("json-trailing-garbage", with_meta_text(raw, good + b"}"), CORRUPT, "not valid JSON")
    add("json-empty", with_meta_text(raw, b""), CORRUPT, "not valid JSON")
    add(
        "json-single-quotes",
        with_meta_text(raw, b"{'raiiaf_metadata': {}}"),
        CORRUPT,
        "not valid JSON",
    )
    add(
        "json-top-level-array",
        with_meta_text(raw, b"[" + good + b"]"),
        CORRUPT,
        'no "raiiaf_metadata" object',
    )
    add(
        "json-chunks-not-a-list",
        with_manifest(raw, lambda j: j["raiiaf_metadata"].update(chunks={"0": 1})),
        CORRUPT,
        "chunks is missing or not a list",
    )
    add(
        "json-hash-not-hex",
        with_manifest(raw, set_chunk(0, hash="z" * 64)),
        CORRUPT,
        "not a 64-digit hex",
    )
    add(
        "json-type-not-string",
        with_manifest(raw, set_chunk(0, type=7)),
        CORRUPT,
        "chunks[0].type is not a string",
    )
    env_bad = b'{"env_version": 1, "components": ["\xff"]}'
    add(
        "envc-invalid-utf8",
        replace_chunk(
            raw,
            env_i,
            frame(b"ENVC0000" + struct.pack("<I", len(env_bad)) + env_bad),
            uncompressed_size=len(env_bad),
            hash=hashlib.sha256(env_bad).hexdigest(),
        ),
        CORRUPT,
        "not UTF-8",
    )

    # Non-finite numbers.
    for word in (b"NaN", b"Infinity", b"-Infinity", b"1e400"):
        text = good.replace(b'"seed": 7', b'"seed": ' + word)
        assert text != good
        add(
            f"json-non-finite-{word.decode().lower().replace('-', 'minus-')}",
            with_meta_text(raw, text),
            CORRUPT,
            "not valid JSON",
        )
    env_nan = b'{"env_version": NaN, "components": []}'
    add(
        "envc-non-finite",
        replace_chunk(
            raw,
            env_i,
            frame(b"ENVC0000" + struct.pack("<I", len(env_nan)) + env_nan),
            uncompressed_size=len(env_nan),
            hash=hashlib.sha256(env_nan).hexdigest(),
        ),
        CORRUPT,
        "not valid JSON",
    )

    # Deep JSON nesting.
    add(
        "json-nesting-100000",
        with_meta_text(raw, b"[" * 100_000 + b"]" * 100_000),
        CORRUPT,
        "recursion limit",
    )
    deep = good.replace(b'"seed": 7', b'"seed": ' + b'{"a":' * 130 + b"7" + b"}" * 130)
    add("json-nesting-130-in-metadata", with_meta_text(raw, deep), CORRUPT, "recursion limit")
    env_deep = b'{"env_version": 1, "components": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    add(
        "envc-nesting-5000",
        replace_chunk(
            raw,
            env_i,
            frame(b"ENVC0000" + struct.pack("<I", len(env_deep)) + env_deep),
            uncompressed_size=len(env_deep),
            hash=hashlib.sha256(env_deep).hexdigest(),
        ),
        CORRUPT,
        "recursion limit",
    )

    # Inner headers, codecs, hashes.
    lat = chunk_bytes(raw, 0)
    add("inner-type-wrong", raw.replace(lat, b"DATA" + lat[4:]), CORRUPT, "inner header type")
    add(
        "inner-flags-wrong",
        raw.replace(lat, lat[:4] + b"F16\0" + lat[8:]),
        CORRUPT,
        "disagree with the manifest",
    )
    add(
        "inner-length-wrong",
        raw.replace(lat, lat[:8] + struct.pack("<I", 12) + lat[12:]),
        CORRUPT,
        "inner header says 12 payload bytes",
    )
    add("unknown-codec", with_manifest(raw, set_chunk(0, codec="pco")), UNSUPPORTED, 'codec "pco"')
    add(
        "unknown-dtype-flags",
        with_manifest(raw, set_chunk(0, flags="F64")),
        CORRUPT,
        "unknown latent flags",
    )
    flipped = bytearray(raw)
    flipped[j0[0]["offset"] + 20] ^= 0x40
    add("hash-mismatch-latent", bytes(flipped), HASH, "hash mismatch in chunk LATN")
    jc = chunks(manifest(compact))[0]
    f = bytearray(compact)
    f[jc["offset"] + 12 + 1] ^= 0xFF  # shuffle-zstd: the reserved bytes after the inner header
    add("compact-reserved-bytes", bytes(f), CORRUPT, "corrupt chunk LATN")
    add(
        "compact-shape-swapped-dtype",
        with_manifest(
            compact,
            lambda j: (
                chunks(j)[0].update(flags="F16", uncompressed_size=128),
                chunks(j)[0]["extra"].update(dtype="float16"),
            ),
        ),
        CORRUPT,
        "LATN",
    )
    return out


def main() -> None:
    for old in HERE.glob("*.raiiaf"):
        old.unlink()
    expected = {}
    all_cases = cases()
    for name, (data, cls, msg, inflates) in sorted(all_cases.items()):
        (HERE / f"{name}.raiiaf").write_bytes(data)
        expected[f"{name}.raiiaf"] = {"error": cls, "message": msg, "inflates": inflates}
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    total = sum(len(d) for d, *_ in all_cases.values())
    print(f"{len(expected)} files, {total} bytes")


if __name__ == "__main__":
    main()
