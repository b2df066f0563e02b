"""The archive browser's query layer (raiiaf_rs.archive): search filters, sort, batches,
pagination, the detail of a file, the allow-list, and thumbnails made once per image."""

from __future__ import annotations

import io
import os
import shutil
import urllib.request
from pathlib import Path

import pytest
import raiiaf_rs
from archive_data import HERE_ENV, write_file, write_files
from raiiaf_rs import allowed, archive_api
from raiiaf_rs.archive import Archive, ArchiveError, Query


@pytest.fixture()
def files(tmp_path) -> Path:
    root = tmp_path / "outputs"
    write_files(root)
    return root


@pytest.fixture()
def arc(files, tmp_path) -> Archive:
    a = Archive(
        tmp_path / "cache" / "catalog.parquet",
        [("", str(files))],
        cache_dir=tmp_path / "cache",
        environment=HERE_ENV,
    )
    report = a.index()
    assert report["files"] == 12 and report["errors"] == 0
    return a


def names(result) -> list[str]:
    return [r["name"] for r in result["rows"]]


def test_search_filters(arc):
    everything = arc.search(Query())
    assert everything["total"] == 12
    # Words, any case, each the start of a word of the prompt; all of them must be there.
    assert names(arc.search(Query(text="FOX Water"))) == [
        "day2/img_006.raiiaf",
        "day1/img_000.raiiaf",
    ]
    assert arc.search(Query(text="lighth"))["total"] == 2
    assert arc.search(Query(text="fox lighthouse"))["total"] == 0
    assert names(arc.search(Query(seed="1003"))) == ["day1/img_003.raiiaf"]
    assert arc.search(Query(seed=str(2**64 + 5)))["total"] == 0  # beyond any seed: none
    assert {r["sampler"] for r in arc.search(Query(sampler="euler"))["rows"]} == {"euler"}
    assert arc.search(Query(sampler="euler"))["total"] == 2
    assert arc.search(Query(model="FLUX"))["total"] == 3  # part of the name, any case
    assert arc.search(Query(host="comfyui"))["total"] == 6
    assert arc.search(Query(min_width=96, max_height=64))["total"] == 12
    assert arc.search(Query(min_width=97))["total"] == 0
    # Drift against this machine: only file 3 was written with another torch.
    assert names(arc.search(Query(drift="pixels"))) == ["day1/img_003.raiiaf"]
    assert arc.search(Query(drift="none"))["total"] == 11
    row = arc.search(Query(seed="1003"))["rows"][0]
    assert row["pixel_drift"] == ["torch"] and row["has_thumbnail"]
    assert not arc.search(Query(seed="1004"))["rows"][0]["has_thumbnail"]  # no image
    today = everything["rows"][0]["date"][:10]
    assert arc.search(Query(date_from=today, date_to=today))["total"] == 12
    assert arc.search(Query(date_to="2000-01-01"))["total"] == 0


def test_sort_group_and_pages(arc):
    by_seed = arc.search(Query(sort="seed", descending=False))
    assert [r["seed"] for r in by_seed["rows"]] == [str(1000 + i) for i in range(12)]
    down = arc.search(Query(sort="seed"))
    assert [r["seed"] for r in down["rows"]] == [str(1011 - i) for i in range(12)]
    # Newest first by default: files were written in order.
    assert names(arc.search(Query()))[0] == "day2/img_011.raiiaf"
    assert names(arc.search(Query(descending=False)))[0] == "day1/img_000.raiiaf"
    # Pages partition the sorted rows.
    pages = [arc.search(Query(sort="seed", descending=False, page=p, per_page=5)) for p in range(3)]
    assert [len(p["rows"]) for p in pages] == [5, 5, 2] and pages[0]["pages"] == 3
    assert [n for p in pages for n in names(p)] == names(by_seed)
    past = arc.search(Query(page=9, per_page=5))
    assert past["rows"] == [] and past["total"] == 12
    # A batch is one row when grouped (its first image), with its size.
    grouped = arc.search(Query(group=True))
    assert grouped["total"] == 11
    (batch,) = [r for r in grouped["rows"] if r["batch_id"] == "batch-8"]
    assert batch["batch_count"] == 2 and batch["name"] == "day2/img_008.raiiaf"


def test_bad_queries_say_what_is_wrong(arc):
    for params, message in (
        ({"sort": "colour"}, "sort must be one of"),
        ({"drift": "maybe"}, "drift must be"),
        ({"per_page": "100000"}, "per_page"),
        ({"min_width": "wide"}, "min_width must be a whole number"),
        ({"seed": "-4"}, "seed must be a whole number"),
        ({"date_from": "yesterday"}, "date_from must be an ISO date"),
    ):
        with pytest.raises(ArchiveError, match=message):
            Query.from_params(params)
    q = Query.from_params({"text": "fox", "group": "1", "page": "0", "unknown": "x"})
    assert q.text == "fox" and q.group


def test_detail_shows_settings_drift_and_passes(arc):
    d = arc.detail("day1/img_003.raiiaf")
    assert d["row"]["seed"] == "1003" and "path" not in d["row"]
    assert d["settings"]["prompt"].startswith("a cat astronaut")
    torch, python = d["drift"]["differences"]
    assert (torch["component"], torch["affects_pixels"]) == ("torch", True)
    assert (python["component"], python["affects_pixels"]) == ("python", False)
    # passes, captures, or (older files) just the stored tensors.
    p = arc.detail("day1/img_005.raiiaf")
    assert p["passes_source"] == "passes" and p["passes"][0]["role"] == "txt2img"
    c = arc.detail("day2/img_006.raiiaf")
    assert c["passes_source"] == "captures" and c["passes"][0]["class_type"] == "KSampler"
    t = arc.detail("day1/img_000.raiiaf")
    assert t["passes_source"] == "tensors" and t["passes"] == []
    assert t["tensors"] == [
        {"name": "initial_noise", "shape": [1, 4, 8, 12], "dtype": "float32", "codec": "raw"}
    ]
    assert arc.detail("day1/img_000.raiiaf")["drift"]["differences"] == []


def test_paths_outside_the_allowed_folders_are_refused(arc, files, tmp_path):
    secret = tmp_path / "secret.raiiaf"
    write_file(secret, 50)
    (files / "day1" / "link.raiiaf").symlink_to(secret)
    arc.index()
    for name, message in (
        ("../secret.raiiaf", "is not a file in"),
        (str(secret), "is not a file in"),
        ("day1/link.raiiaf", "resolves outside"),
        ("day1/missing.raiiaf", "does not exist"),
        ("", "no .raiiaf file selected"),
    ):
        for call in (arc.detail, arc.thumbnail):
            with pytest.raises(ArchiveError, match=message):
                call(name)
    # The HTTP answer says the same and names no path on the server.
    status, _ctype, body = archive_api.handle(arc, "GET", "detail", {"file": "day1/link.raiiaf"})
    assert status == 400 and b"resolves outside" in body and str(tmp_path).encode() not in body


def test_allowed_resolve_is_the_loaders_rule(tmp_path):
    root = tmp_path / "in"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.raiiaf").write_bytes(b"x")
    out = tmp_path / "out"
    out.mkdir()
    (out / "y.raiiaf").write_bytes(b"y")
    roots = [(" [output]", str(out)), ("", str(root))]
    assert allowed.resolve("a/x.raiiaf", roots, where="w") == os.path.realpath(root / "a/x.raiiaf")
    assert allowed.resolve("y.raiiaf [output]", roots, where="w") == os.path.realpath(
        out / "y.raiiaf"
    )
    assert allowed.name_of(str(out / "y.raiiaf"), roots) == "y.raiiaf [output]"
    assert allowed.name_of(str(tmp_path / "z.raiiaf"), roots) is None
    with pytest.raises(ValueError, match=r"is not a \.raiiaf file"):
        allowed.resolve("a", roots, where="w")


def test_thumbnails_are_made_once_and_cached(arc, tmp_path, monkeypatch):
    from PIL import Image

    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda *a, **k: opened.append(1) or real_open(*a, **k))
    first = arc.thumbnail("day1/img_001.raiiaf")
    assert first[:3] == b"\xff\xd8\xff" and arc.thumbnails.decodes == 1 and len(opened) == 1
    with real_open(io.BytesIO(first)) as im:
        assert im.format == "JPEG" and im.size == (96, 64)  # smaller than 256: kept
    for _ in range(3):
        assert arc.thumbnail("day1/img_001.raiiaf") == first
    assert arc.thumbnails.decodes == 1 and len(opened) == 1
    # Another process (a new Archive on the same cache) reads the disk cache: no decode.
    again = Archive(arc.catalog, arc.roots, cache_dir=tmp_path / "cache", environment=HERE_ENV)
    assert again.thumbnail("day1/img_001.raiiaf") == first and again.thumbnails.decodes == 0
    assert len(opened) == 1
    # A file without an image has no thumbnail, and says so.
    with pytest.raises(ArchiveError, match="holds no image"):
        arc.thumbnail("day1/img_004.raiiaf")


def test_thumbnail_cache_is_bounded(files, tmp_path):
    a = Archive(
        tmp_path / "c" / "catalog.parquet",
        [("", str(files))],
        cache_dir=tmp_path / "c",
        environment=HERE_ENV,
        thumbnail_bytes=12_000,
    )
    a.index()
    for i in (0, 1, 2, 3, 5, 6, 7):
        a.thumbnail(f"day{1 if i < 6 else 2}/img_{i:03d}.raiiaf")
    on_disk = sum(f.stat().st_size for f in (tmp_path / "c" / "thumbnails").rglob("*.jpg"))
    assert 0 < on_disk <= 12_000 and a.thumbnails.bytes == on_disk


def test_reindex_is_incremental_and_reloads(arc, files):
    write_file(files / "day2" / "new.raiiaf", 40)
    shutil.rmtree(files / "day1")
    report = arc.index()
    assert (report["read"], report["reused"], report["dropped"]) == (1, 6, 6)
    assert arc.search(Query())["total"] == 7
    assert names(arc.search(Query(seed="1040"))) == ["day2/new.raiiaf"]


def test_serve_answers_the_api(arc):
    from raiiaf_rs import serve

    server = serve.serve(arc, port=0)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        page = urllib.request.urlopen(base + "/").read().decode()
        assert 'import { mount } from "/raiiaf/archive/app.js"' in page
        js = urllib.request.urlopen(base + "/raiiaf/archive/app.js")
        assert js.headers["Content-Type"].startswith("text/javascript")
        # The module reading the answers, beside it (the ComfyUI pack imports it too).
        assert 'import { answer } from "./answer.js"' in js.read().decode()
        js = urllib.request.urlopen(base + "/raiiaf/archive/answer.js")
        assert js.headers["Content-Type"].startswith("text/javascript")
        assert "export async function answer(resp, what)" in js.read().decode()
        import json

        detail = json.load(
            urllib.request.urlopen(base + "/raiiaf/archive/detail?file=day1/img_001.raiiaf")
        )
        regen = detail["regenerate"]
        assert (
            regen["settings"]["seed"] == 1001
            and regen["settings"]["sampler_name"] == "euler_ancestral"
        )
        assert "alwayson_scripts" in regen["command"] and "img_001.raiiaf" in regen["command"]
    finally:
        server.shutdown()


def test_raiiaf_serve_command_refuses_a_missing_folder(tmp_path, capsys):
    from raiiaf_rs.cli import main

    assert main(["serve", str(tmp_path / "nope")]) == 2
    assert "no such directory" in capsys.readouterr().err


def test_json_of_huge_seeds(tmp_path):
    root = tmp_path / "o"
    write_file(root / "big.raiiaf", 1, image=False)
    art = raiiaf_rs.read(root / "big.raiiaf")
    meta = dict(
        art.metadata, generation_settings={**art.metadata["generation_settings"], "seed": 2**64 - 1}
    )
    raiiaf_rs.write(
        root / "big.raiiaf", art.latents, None, meta, environment=art.environment, overwrite=True
    )
    a = Archive(
        tmp_path / "c.parquet", [("", str(root))], cache_dir=tmp_path / "c", environment=HERE_ENV
    )
    a.index()
    assert a.search(Query(seed=str(2**64 - 1)))["rows"][0]["seed"] == str(2**64 - 1)


def test_searches_from_many_threads_at_once(arc):
    """The homes serve requests on several threads: text searches (DuckDB) and the rest
    run at once without refusing one another."""
    from concurrent.futures import ThreadPoolExecutor

    queries = [Query(text="fox"), Query(text="light"), Query(sampler="euler"), Query()] * 8
    with ThreadPoolExecutor(8) as pool:
        totals = list(pool.map(lambda q: arc.search(q)["total"], queries))
    assert totals == [2, 2, 2, 12] * 8
