"""Every server path is bounded (issue 25), against the real ComfyUI, with the server's
peak RSS measured: VmHWM of the server process, reset (``/proc/<pid>/clear_refs``) before
each case and read after it, against its VmRSS before.

- An embedded image counts against the decoded-size limit, read from its header: a 560 KB
  upload holding a 12000x12000 RGBA PNG (576 MB decoded, 1.7 GB as the loader's float32
  IMAGE) is stored and inspected, with its noise, while the image is refused and the
  reason shown (inspect's ``summary.image.refused``, the loader's summary).
- The decodes the routes run at once share a byte budget: 16 concurrent requests for a
  small file that decodes to 240 MiB are answered 200 or 503 (busy, in JSON), and the
  server's peak stays within the budget + 64 MiB.
- Every malformed request is a 4xx JSON error, and identical uploads racing for one name
  end up as one file.
"""

from __future__ import annotations

import importlib
import io
import struct
import sys
import threading
import types
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import raiiaf_rs
from PIL import Image

from .harness import COMFYUI_DIR, REPO, ComfyServer
from .test_frontend import http, input_dir, inspect, upload

MIB = 1 << 20
LIMIT = 256 * MIB  # the routes' and loader's decoded-size limit (comfy_nodes/routes.py)
BUDGET = 512 * MIB  # the routes' default decode budget (comfy_nodes/decode_budget.py)
SLACK = 64 * MIB
HUGE = 12000


# --- the server's memory ---------------------------------------------------------------
def _status(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {key} in /proc/{pid}/status")


class Peak:
    """The server's peak RSS over a block, above its RSS when the block began."""

    def __init__(self, comfy, what: str) -> None:
        self.pid = comfy._proc.pid
        self.what = what

    def __enter__(self) -> Peak:
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
        self.before = _status(self.pid, "VmRSS")
        self.hwm_before = _status(self.pid, "VmHWM")
        return self

    def __exit__(self, *exc) -> None:
        self.after = _status(self.pid, "VmHWM")
        self.growth = self.after - self.before
        print(
            f"\n[rss] {self.what}: VmRSS before {self.before / MIB:.0f} MiB, "
            f"VmHWM after {self.after / MIB:.0f} MiB, peak growth {self.growth / MIB:.0f} MiB"
        )


# --- hostile files -----------------------------------------------------------------------
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_png(width: int, height: int) -> bytes:
    """A valid all-black RGBA PNG, compressed row by row (never whole in memory)."""
    row = bytes(1 + 4 * width)  # filter "none" and transparent black pixels
    z = zlib.compressobj(6)
    idat = b"".join([z.compress(row) for _ in range(height)] + [z.flush()])
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat)
    return png + _chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def huge_image_file() -> bytes:
    png = huge_png(HUGE, HUGE)
    # A valid PNG as PIL sees it (its header only), which PIL itself calls a likely bomb.
    with pytest.warns(Image.DecompressionBombWarning), Image.open(io.BytesIO(png)) as img:
        assert (img.format, img.size, img.mode) == ("PNG", (HUGE, HUGE), "RGBA")
    noise = np.random.default_rng(25).standard_normal((1, 4, 8, 8)).astype(np.float32)
    data = raiiaf_rs.write_bytes(
        {"initial_noise": noise},
        png,
        {"prompt": "a huge image", "generation_settings": {"seed": 25, "steps": 4}},
        environment=None,
    )
    assert len(data) < 700_000
    return data


@pytest.fixture(scope="module")
def decodes_to_240_mib() -> bytes:
    zeros = np.zeros((1, 16, 1920, 2048), dtype=np.float32)  # 240 MiB, under the limit
    data = raiiaf_rs.write_bytes({"initial_noise": zeros}, environment=None, codec="compact")
    assert len(data) < 20_000
    return data


def _refused(image: dict) -> None:
    assert image["width"] == HUGE and image["height"] == HUGE, image
    reason = image["refused"]
    assert f"{HUGE}x{HUGE}" in reason and "576,000,000 bytes" in reason, reason
    assert "more than the limit of 268,435,456" in reason and "RAIIAF_MAX_DECODED_BYTES" in reason


# --- 1. the embedded image counts ---------------------------------------------------------
def test_a_huge_embedded_image_is_refused_and_its_noise_still_shows(comfy, huge_image_file):
    name = "bounds-huge-image.raiiaf"
    small = raiiaf_rs.write_bytes({"initial_noise": np.zeros((1, 4, 8, 8), np.float32)})
    status, _, text = upload(comfy, "bounds-warm-up.raiiaf", small)  # the first request's
    assert status == 200, text  # one-time cost (about 54 MiB: imports, threads) comes first
    with Peak(comfy, "upload + inspect + 4 concurrent inspects, 12000x12000 image") as peak:
        status, body, text = upload(comfy, name, huge_image_file)
        assert status == 200, text
        assert body["name"] == name and (input_dir(comfy) / name).is_file()  # stored
        with ThreadPoolExecutor(5) as pool:
            answers = list(pool.map(lambda _: inspect(comfy, name), range(5)))
    for status, answer, text in [(200, body, ""), *answers]:
        assert status == 200, text
        assert answer["thumbnail"] is None
        _refused(answer["summary"]["image"])
        assert answer["summary"]["noise"] == [
            {"name": "initial_noise", "shape": [1, 4, 8, 8], "dtype": "float32"}
        ]
        assert answer["summary"]["seed"] == 25
    assert peak.growth <= BUDGET + SLACK, f"{peak.growth / MIB:.0f} MiB"
    assert comfy.alive()


def test_the_loader_refuses_a_huge_image_and_loads_the_noise(comfy, huge_image_file):
    name = "bounds-loader-huge-image.raiiaf"
    (input_dir(comfy) / name).write_bytes(huge_image_file)
    graph = {
        "1": {"class_type": "RaiiafLoad", "inputs": {"file": name}},
        "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 11]}},  # summary
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["1", 3]}},  # image
    }
    with Peak(comfy, "loader, 12000x12000 image (float32 IMAGE)") as peak:
        entry = comfy.run(graph, timeout=600)
    summary = "".join(entry["outputs"]["2"]["text"])
    assert "initial_noise: float32 [1, 4, 8, 8]" in summary, summary
    assert "IMAGE NOT LOADED: the embedded image (PNG, 12000x12000) is not shown" in summary
    assert "2,304,000,000 bytes" in summary and "the noise and settings loaded" in summary
    preview = entry["outputs"]["3"]["images"][0]
    png = comfy.view(preview["filename"], preview["subfolder"], preview["type"])
    assert Image.open(io.BytesIO(png)).size == (64, 64)  # the placeholder, not the image
    assert peak.growth <= LIMIT + SLACK, f"{peak.growth / MIB:.0f} MiB"


# --- 2. concurrent decodes share a budget -------------------------------------------------
def test_concurrent_decodes_stay_within_the_budget(comfy, decodes_to_240_mib):
    name = "bounds-240-mib.raiiaf"
    (input_dir(comfy) / name).write_bytes(decodes_to_240_mib)
    start = threading.Barrier(16)

    def request(i: int):
        start.wait()
        if i % 2:  # half inspect the stored file, half upload the same bytes
            return inspect(comfy, name)
        return upload(comfy, "bounds-240-mib-upload.raiiaf", decodes_to_240_mib)

    what = "16 concurrent requests, file decoding to 240 MiB"
    with Peak(comfy, what) as peak, ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(request, range(16)))
    statuses = sorted(status for status, _, _ in answers)
    print(f"[rss] statuses: {statuses}")
    for status, body, text in answers:
        assert status in (200, 503), text
        if status == 503:
            error = body["error"]
            assert "the server is busy decoding other files" in error, error
            assert "RAIIAF_SERVER_DECODE_BUDGET" in error and "try again" in error
        else:
            assert body["summary"]["noise"][0]["shape"] == [1, 16, 1920, 2048]
    assert 200 in statuses
    assert peak.growth <= BUDGET + SLACK, f"{peak.growth / MIB:.0f} MiB"
    # Nothing stays held: a request afterwards is answered.
    status, _, text = inspect(comfy, name)
    assert status == 200, text
    uploads = sorted(p.name for p in input_dir(comfy).glob("bounds-240-mib-upload*"))
    assert uploads in ([], ["bounds-240-mib-upload.raiiaf"]), uploads  # one copy at most


# --- 3. malformed requests ------------------------------------------------------------------
BOUNDARY = "raiiafbounds"
MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def _part(filename: str, content: bytes = b"x") -> bytes:
    return (
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; "
        f'name="file"; filename="{filename}"\r\n\r\n'
    ).encode() + content


MALFORMED = {
    "empty body": (b"", MULTIPART),
    "wrong boundary": (
        _part("a.raiiaf").replace(BOUNDARY.encode(), b"other") + b"\r\n--other--\r\n",
        MULTIPART,
    ),
    "nul in the file name": (
        _part("a\x00b.raiiaf") + f"\r\n--{BOUNDARY}--\r\n".encode(),
        MULTIPART,
    ),
    "no closing boundary": (_part("a.raiiaf"), MULTIPART),
    "garbage": (b"\x00\xff" * 64, MULTIPART),
    "no boundary": (_part("a.raiiaf"), {"Content-Type": "multipart/form-data"}),
    "not multipart": (b'{"file": 1}', {"Content-Type": "application/json"}),
    "no file field": (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n'
        f"--{BOUNDARY}--\r\n".encode(),
        MULTIPART,
    ),
    "header without a colon": (
        f"--{BOUNDARY}\r\nnot a header\r\n\r\nx\r\n--{BOUNDARY}--\r\n".encode(),
        MULTIPART,
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_every_malformed_upload_is_a_4xx_json_error(comfy, case):
    body, headers = MALFORMED[case]
    status, answer, text = http(comfy, "/api/raiiaf/upload", body, headers)
    assert 400 <= status < 500, f"{status}: {text[:300]}"
    assert isinstance(answer, dict) and answer.get("error"), text[:300]
    assert not list(input_dir(comfy).glob(".raiiaf-upload-*.part"))
    assert comfy.alive()


@pytest.mark.parametrize(
    "query", ["", "?file=", "?file=a%00b.raiiaf", "?file=%ff%fe.raiiaf", "?file=../x.raiiaf"]
)
def test_every_malformed_inspect_is_a_4xx_json_error(comfy, query):
    status, answer, text = http(comfy, "/api/raiiaf/inspect" + query)
    assert 400 <= status < 500, f"{status}: {text[:300]}"
    assert isinstance(answer, dict) and answer.get("error"), text[:300]


@pytest.fixture(scope="module")
def routes_module():
    """comfy_nodes/routes.py with the real ComfyUI's folder_paths, imported in this process
    (the package's __init__, which needs the running server, is left out)."""
    if str(COMFYUI_DIR) not in sys.path:
        sys.path.append(str(COMFYUI_DIR))
    package = types.ModuleType("raiiaf_bounds_nodes")
    package.__path__ = [str(REPO / "comfy_nodes")]
    sys.modules[package.__name__] = package
    return importlib.import_module(package.__name__ + ".routes")


def test_identical_uploads_racing_for_a_name_end_up_as_one_file(
    routes_module, tmp_path, monkeypatch
):
    """The race made deterministic: another upload of the same bytes links the name between
    this one's check and its link. Both must end as the one file."""
    import folder_paths

    root = tmp_path / "input"
    root.mkdir()
    monkeypatch.setattr(folder_paths, "get_input_directory", lambda: str(root))
    content = b"the same checked upload"
    mine, theirs = tmp_path / "mine.part", tmp_path / "theirs.part"
    mine.write_bytes(content)
    theirs.write_bytes(content)
    real_link = routes_module.os.link
    raced = []

    def link(src, dst):
        if not raced:
            raced.append(dst)
            real_link(str(theirs), dst)  # the other upload wins the name
        return real_link(src, dst)

    monkeypatch.setattr(routes_module.os, "link", link)
    assert routes_module._store(str(mine), "same.raiiaf") == "same.raiiaf"
    assert raced and sorted(p.name for p in root.iterdir()) == ["same.raiiaf"]
    # Different bytes racing for the name still get their own.
    other = tmp_path / "other.part"
    other.write_bytes(b"different bytes")
    raced.clear()
    (root / "same.raiiaf").unlink()
    assert routes_module._store(str(other), "same.raiiaf") == "same (1).raiiaf"
    assert sorted(p.name for p in root.iterdir()) == ["same (1).raiiaf", "same.raiiaf"]
    assert raced == [str(root / "same.raiiaf")]


# --- the limits are configurable ------------------------------------------------------------
@pytest.fixture(scope="module")
def small_budget(tmp_path_factory):
    """A second real server, with the decoded-size limit raised to 1 GiB and the decode
    budget lowered to 300 MiB: one 240 MiB decode at a time."""
    env = {"RAIIAF_MAX_DECODED_BYTES": "1G", "RAIIAF_SERVER_DECODE_BUDGET": "300M"}
    with ComfyServer(tmp_path_factory.mktemp("comfyui-budget"), env=env) as server:
        yield server


def test_the_budget_and_the_limit_follow_the_environment(
    small_budget, huge_image_file, decodes_to_240_mib
):
    comfy = small_budget
    budget = 300 * MIB
    (input_dir(comfy) / "huge.raiiaf").write_bytes(huge_image_file)
    (input_dir(comfy) / "240.raiiaf").write_bytes(decodes_to_240_mib)
    small = raiiaf_rs.write_bytes({"initial_noise": np.zeros((1, 4, 8, 8), np.float32)})
    assert upload(comfy, "warm-up.raiiaf", small)[0] == 200  # the one-time first-request cost
    with Peak(comfy, "budget 300 MiB: 12000x12000 image, then 16 concurrent 240 MiB") as peak:
        # Under the raised limit (576 MB < 1 GiB), but never within the budget.
        status, body, text = inspect(comfy, "huge.raiiaf")
        assert status == 200, text
        refused = body["summary"]["image"]["refused"]
        assert "more than this server's decode budget of 314,572,800" in refused, refused
        assert "RAIIAF_SERVER_DECODE_BUDGET" in refused and body["thumbnail"] is None
        start = threading.Barrier(16)

        def request(_):
            start.wait()
            return inspect(comfy, "240.raiiaf")

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(request, range(16)))
    statuses = sorted(status for status, _, _ in answers)
    print(f"[rss] statuses: {statuses}")
    assert set(statuses) <= {200, 503} and 200 in statuses, statuses
    assert peak.growth <= budget + SLACK, f"{peak.growth / MIB:.0f} MiB"


def test_the_loader_still_outputs_an_image_within_the_limit(comfy):
    """The check refuses only what is over the limit: a normal image is the IMAGE output,
    pixel for pixel."""
    rgb = np.random.default_rng(7).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, "PNG")
    noise = np.zeros((1, 4, 8, 8), np.float32)
    name = "bounds-loader-small-image.raiiaf"
    raiiaf_rs.write(input_dir(comfy) / name, {"initial_noise": noise}, out.getvalue(), {})
    graph = {
        "1": {"class_type": "RaiiafLoad", "inputs": {"file": name}},
        "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 11]}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["1", 3]}},
    }
    entry = comfy.run(graph, timeout=600)
    assert "IMAGE NOT LOADED" not in "".join(entry["outputs"]["2"]["text"])
    preview = entry["outputs"]["3"]["images"][0]
    png = comfy.view(preview["filename"], preview["subfolder"], preview["type"])
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png)).convert("RGB")), rgb)
