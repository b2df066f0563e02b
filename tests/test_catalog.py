"""The catalog: `raiiaf_rs.catalog`, `raiiaf index` (Parquet, incremental), `raiiaf verify
--recursive` and `raiiaf query` (DuckDB). Rows are checked against what `raiiaf inspect --json`
and `raiiaf_rs.read` say about the same files, field by field, by code written independently of
the Rust row builder (catalog_check.py)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import raiiaf_rs
from catalog_check import assert_row_matches, rows_by_path
from conftest import VECTORS, noise
from test_cli import run

ADVERSARIAL = Path(__file__).parent / "data" / "adversarial"


SAMPLE_ENV = raiiaf_rs.environment_document(
    [("python", "name=python;version=3.11.7"), ("os", "name=os;version=Linux 6.1")]
)


def write_sample(path: Path, seed: int, png: bytes | None = None, **extra) -> Path:
    metadata = {
        "prompt": f"a fox, take {seed}",
        "model_name": "tiny.safetensors",
        "generation_settings": {
            "seed": 2**64 - 1 - seed,
            "steps": 4 + seed,
            "sampler": "euler_ancestral",
            "scheduler": "karras",
            "cfg_scale": 6.5,
        },
        "negative_prompt": "blurry",
        "denoise": 0.75,
        "width": 64,
        "height": 96,
        "batch_index": seed % 2,
        "batch_size": 2,
        "batch_id": f"b{seed // 2}",
        "models": [{"role": "ckpt_name", "name": "tiny.safetensors", "sha256": "ab" * 32}],
        "loras": [
            {"name": "ink.safetensors", "sha256": None, "strength_model": 0.8, "strength_clip": 1.0}
        ],
        "host": {"app": "ComfyUI", "version": "0.3.75"},
        **extra,
    }
    raiiaf_rs.write(
        path,
        {"initial_noise": noise((1, 4, 8, 8), seed), "final_latent": noise((1, 4, 8, 8), 99)},
        png,
        metadata,
        codec=("raw", "compact", "zfp")[seed % 3],
        # A fixed environment: "auto" would record torch once another test has imported it.
        environment=SAMPLE_ENV,
        overwrite=True,
    )
    return path


@pytest.fixture()
def archive(tmp_path, png_bytes) -> Path:
    root = tmp_path / "archive"
    (root / "day1").mkdir(parents=True)
    (root / "day2" / "deep").mkdir(parents=True)
    for i in range(4):
        write_sample(root / "day1" / f"img_{i}.raiiaf", i, png_bytes if i % 2 else None)
    write_sample(root / "day2" / "deep" / "img_9.raiiaf", 9, png_bytes)
    for f in sorted([*VECTORS.rglob("*.raiiaf"), *VECTORS.rglob("*.gen5")]):
        shutil.copy(f, root / "day2" / f"{f.parent.name}-{f.name}")
    (root / "day2" / "notes.txt").write_text("not indexed")
    (root / "day2" / "garbage.raiiaf").write_bytes(b"hello, not a raiiaf file")
    return root


def table(obj) -> pa.Table:
    return pa.table(obj)


def indexed(root: Path) -> list[str]:
    """What the walker must find: *.raiiaf and legacy *.gen5, sorted."""
    return sorted(str(p) for p in [*root.rglob("*.raiiaf"), *root.rglob("*.gen5")])


def test_rows_match_inspect_for_every_file(archive):
    t = table(raiiaf_rs.catalog(archive))
    rows = rows_by_path(t)
    files = indexed(archive)
    assert len(files) == 12 and any(f.endswith(".gen5") for f in files)
    assert sorted(rows) == files  # notes.txt skipped, subdirectories walked
    assert [r["path"] for r in t.to_pylist()] == files  # sorted by path
    for path in files:
        if path.endswith("garbage.raiiaf"):
            continue
        assert_row_matches(rows[path], path)


def test_values_of_a_sample_row(archive):
    rows = rows_by_path(table(raiiaf_rs.catalog(archive)))
    r = rows[str(archive / "day1" / "img_1.raiiaf")]
    assert r["seed"] == 2**64 - 2  # beyond int64: DECIMAL(20, 0), exact
    settings = (r["steps"], r["cfg"], r["sampler"], r["scheduler"])
    assert settings == (5, 6.5, "euler_ancestral", "karras")
    assert (r["width"], r["height"], r["denoise"]) == (64, 96, 0.75)
    assert (r["host_app"], r["host_version"], r["model_sha256"]) == ("ComfyUI", "0.3.75", "ab" * 32)
    assert r["loras"] == [
        {"name": "ink.safetensors", "sha256": None, "strength_model": 0.8, "strength_clip": 1.0}
    ]
    assert [t["name"] for t in r["tensors"]] == ["initial_noise", "final_latent"]
    assert r["tensors"][0]["codec"] == "shuffle-zstd" and r["tensors"][0]["shape"] == [1, 4, 8, 8]
    assert r["has_image"] is True and r["error"] is None and r["verified"] is None
    assert r["env_python"] and r["env_pixel_sha256"]
    # The same noise in another codec has the same noise_sha256; another seed does not.
    other = rows[str(archive / "day1" / "img_0.raiiaf")]
    assert other["tensors"][0]["codec"] == "raw"
    assert other["tensors"][1]["sha256"] == r["tensors"][1]["sha256"]  # final_latent: same seed 99
    assert other["noise_sha256"] != r["noise_sha256"]


def test_bad_files_get_rows_with_errors_and_indexing_goes_on(archive):
    rows = rows_by_path(table(raiiaf_rs.catalog(archive)))
    bad = rows[str(archive / "day2" / "garbage.raiiaf")]
    assert "not a .raiiaf file" in bad["error"]
    assert bad["size"] == len(b"hello, not a raiiaf file") and bad["seed"] is None
    assert sum(r["error"] is None for r in rows.values()) == len(rows) - 1


def test_adversarial_files_agree_with_verify(tmp_path):
    """Every hostile file gets a row; with verify=True its error is set exactly when
    raiiaf_rs.verify refuses the file, and never crashes the indexer."""
    t = table(raiiaf_rs.catalog(ADVERSARIAL, verify=True))
    rows = rows_by_path(t)
    files = sorted(ADVERSARIAL.glob("*.raiiaf"))
    assert len(rows) == len(files) > 40
    for f in files:
        r = rows[str(f)]
        try:
            raiiaf_rs.verify(f)
            ok = True
        except raiiaf_rs.RaiiafError:
            ok = False
        assert (r["error"] is None) == ok, (f.name, r["error"])
        assert r["verified"] is ok, f.name


def test_verify_column_catches_a_flipped_tensor_byte(tmp_path):
    path = write_sample(tmp_path / "a.raiiaf", 0)
    data = bytearray(path.read_bytes())
    data[33 + 12 + 5] ^= 1  # raw initial_noise element bytes
    path.write_bytes(bytes(data))
    fast = rows_by_path(table(raiiaf_rs.catalog(path)))[str(path)]
    assert fast["error"] is None  # headers only: the damage is inside a tensor
    checked = rows_by_path(table(raiiaf_rs.catalog(path, verify=True)))[str(path)]
    assert checked["verified"] is False and "hash mismatch" in checked["error"]


def test_hash_column_is_the_file_sha256(archive):
    import hashlib

    rows = rows_by_path(table(raiiaf_rs.catalog(archive, hash=True)))
    for path, r in rows.items():
        assert r["file_sha256"] == hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_missing_root_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        raiiaf_rs.catalog(tmp_path / "nope")


def test_consumers_take_the_table_without_pyarrow_in_between(archive):
    t = raiiaf_rs.catalog(archive)
    assert t.num_rows == len(t) == len(indexed(archive))
    df = pl.DataFrame(t)
    assert df.height == t.num_rows and df.columns == t.column_names
    con = duckdb.connect()
    con.register("cat", t)
    n = con.execute("SELECT count(*) FROM cat WHERE error IS NULL").fetchone()[0]
    assert n == t.num_rows - 1
    assert pa.schema(t) == table(t).schema


def index_table(path: Path) -> pa.Table:
    return pq.read_table(path)


def test_index_writes_parquet_equal_to_the_table(archive, tmp_path):
    out = tmp_path / "catalog.parquet"
    report = raiiaf_rs.index(archive, out)
    assert report == {"files": 12, "read": 12, "reused": 0, "dropped": 0, "errors": 1}
    assert index_table(out).to_pylist() == table(raiiaf_rs.catalog(archive)).to_pylist()
    meta = pq.read_metadata(out).metadata
    assert meta[b"raiiaf.catalog.schema_version"] == b"2"


def test_incremental_reindex_reads_only_new_and_changed_files(archive, tmp_path, png_bytes):
    out = tmp_path / "catalog.parquet"
    raiiaf_rs.index(archive, out)
    day1 = archive / "day1"
    # Unchanged file: its bytes replaced, size and mtime kept. A re-index that read it would
    # record an error; an incremental one keeps its row.
    untouched = day1 / "img_3.raiiaf"
    st = untouched.stat()
    untouched.write_bytes(b"\0" * st.st_size)
    os.utime(untouched, ns=(st.st_atime_ns, st.st_mtime_ns))
    # Changed, deleted, added.
    changed = day1 / "img_0.raiiaf"
    write_sample(changed, 42, png_bytes)
    (day1 / "img_1.raiiaf").unlink()
    write_sample(day1 / "img_new.raiiaf", 7)
    report = raiiaf_rs.index(archive, out)
    # read: the changed file, the new one, and garbage.raiiaf (rows with errors are retried).
    assert report == {"files": 12, "read": 3, "reused": 9, "dropped": 1, "errors": 1}
    rows = rows_by_path(index_table(out))
    assert rows[str(untouched)]["error"] is None  # kept, not re-read
    assert rows[str(changed)]["seed"] == 2**64 - 1 - 42
    assert str(day1 / "img_1.raiiaf") not in rows
    assert str(day1 / "img_new.raiiaf") in rows
    assert [r["path"] for r in index_table(out).to_pylist()] == sorted(rows)
    # A full run re-reads everything: now the zeroed file is seen for what it is.
    full = raiiaf_rs.index(archive, out, full=True)
    assert full["read"] == 12 and full["reused"] == 0
    assert "not a .raiiaf file" in rows_by_path(index_table(out))[str(untouched)]["error"]


def test_other_options_or_schema_rebuild_the_catalog(archive, tmp_path):
    out = tmp_path / "catalog.parquet"
    raiiaf_rs.index(archive, out)
    again = raiiaf_rs.index(archive, out, hash=True)  # rows without hashes cannot be reused
    assert again["reused"] == 0 and again["read"] == 12
    assert all(r["file_sha256"] for r in index_table(out).to_pylist())


def test_an_output_that_is_not_a_catalog_is_never_overwritten(archive, tmp_path):
    out = tmp_path / "precious.parquet"
    pq.write_table(pa.table({"x": [1, 2, 3]}), out)
    before = out.read_bytes()
    with pytest.raises(raiiaf_rs.RaiiafError, match="not a raiiaf catalog"):
        raiiaf_rs.index(archive, out)
    assert out.read_bytes() == before
    text = tmp_path / "notes.parquet"
    text.write_text("my notes")
    with pytest.raises(raiiaf_rs.RaiiafError, match="not a raiiaf catalog"):
        raiiaf_rs.index(archive, text)
    assert text.read_text() == "my notes"


def test_cli_index_and_query(archive, tmp_path):
    out = tmp_path / "catalog.parquet"
    r = run("index", str(archive), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "12 files (12 read, 0 unchanged, 0 dropped, 1 with errors)" in r.stdout
    r = run("index", str(archive), "-o", str(out))
    assert "12 files (1 read, 11 unchanged, 0 dropped, 1 with errors)" in r.stdout
    q = run(
        "query",
        "--catalog",
        str(out),
        "--json",
        "SELECT noise_sha256, count(*) AS n, list(path ORDER BY path) AS paths FROM catalog "
        "WHERE noise_sha256 IS NOT NULL GROUP BY 1 HAVING count(*) > 1",
    )
    assert q.returncode == 0, q.stderr
    shared = [json.loads(line) for line in q.stdout.splitlines()]
    # The reference vectors v1..v4 share one noise tensor (seed 42) in several codecs/files.
    expected = (
        pl.DataFrame(raiiaf_rs.catalog(archive))
        .filter(pl.col("noise_sha256").is_not_null())
        .group_by("noise_sha256")
        .len()
        .filter(pl.col("len") > 1)
    )
    assert len(shared) == expected.height >= 1
    assert {s["noise_sha256"]: s["n"] for s in shared} == dict(expected.iter_rows())
    bad = run("query", "--catalog", str(out), "SELECT nope FROM catalog")
    assert bad.returncode == 1 and "nope" in bad.stderr
    missing = run("query", "--catalog", str(tmp_path / "none.parquet"), "SELECT 1")
    assert missing.returncode == 2 and "raiiaf index" in missing.stderr


def test_query_drift_view_compares_with_this_machine(archive, tmp_path):
    from raiiaf_rs.query import PIXEL_ENV_COLUMNS, connect

    env = raiiaf_rs.environment.capture(import_torch=True)
    made_here = archive / "day1" / "with_torch.raiiaf"
    raiiaf_rs.write(made_here, {"initial_noise": noise((1, 4, 8, 8))}, environment=env)
    out = tmp_path / "catalog.parquet"
    raiiaf_rs.index(archive, out)
    # Same machine: no pixel drift.
    con = connect(out, environment=env)
    rows = dict(con.execute("SELECT path, pixel_drift FROM drift").fetchall())
    assert rows[str(made_here)] == []
    # Another torch: the file that recorded torch drifts in exactly that component; files
    # that did not record torch are unknown there, not different.
    other = json.loads(json.dumps(env))
    for c in other["components"]:
        if c["component_id"] == "torch":
            c["cononical_str"] = "name=torch;version=0.0.1;cuda=None"
    con = connect(out, environment=other)
    rows = dict(con.execute("SELECT path, pixel_drift FROM drift").fetchall())
    assert rows[str(made_here)] == ["torch"]
    assert rows[str(archive / "day1" / "img_0.raiiaf")] == []
    q = "SELECT count(*) FROM drift WHERE list_contains(pixel_drift, 'torch')"
    drifted = con.execute(q).fetchall()
    with_torch = con.execute("SELECT count(*) FROM catalog WHERE env_torch IS NOT NULL").fetchall()
    assert drifted == with_torch != [(0,)]
    # The Python list of pixel-affecting columns agrees with the Rust classification.
    t = table(raiiaf_rs.catalog(made_here))
    comps = t.column("environment").to_pylist()[0]
    for c in comps:
        base = c["id"].split("[")[0]
        if f"env_{base}" in t.column_names:
            assert (f"env_{base}" in PIXEL_ENV_COLUMNS) == c["affects_pixels"], base


def test_cli_verify_recursive(archive, tmp_path):
    r = run("verify", "--recursive", str(archive))
    assert r.returncode == 1
    assert "12 files: 11 ok, 0 damaged, 1 unreadable" in r.stdout
    assert "UNREADABLE" in r.stdout and "garbage.raiiaf" in r.stdout
    path = archive / "day1" / "img_0.raiiaf"
    data = bytearray(path.read_bytes())
    data[33 + 12 + 5] ^= 1
    path.write_bytes(bytes(data))
    r = run("verify", "-r", str(archive))
    assert "12 files: 10 ok, 1 damaged, 1 unreadable" in r.stdout
    assert f"DAMAGED    {path}: hash mismatch" in r.stdout
    (archive / "day2" / "garbage.raiiaf").unlink()
    path.unlink()
    r = run("verify", "-r", str(archive))
    assert r.returncode == 0 and "10 files: 10 ok, 0 damaged, 0 unreadable" in r.stdout


def test_environment_row_of_the_current_machine():
    t = table(raiiaf_rs.indexing.environment_row())
    r = t.to_pylist()[0]
    assert r["path"] == "" and r["env_python"] and r["env_pixel_sha256"]
    import platform

    assert platform.python_version() in r["env_python"]


def test_seed_types_survive_every_engine(tmp_path):
    path = write_sample(tmp_path / "s.raiiaf", 0)
    t = raiiaf_rs.catalog(path)
    assert pa.table(t).column("seed").type == pa.decimal128(20, 0)
    assert int(pl.DataFrame(t)["seed"][0]) == 2**64 - 1
    out = tmp_path / "c.parquet"
    raiiaf_rs.index(path, out)
    assert duckdb.sql(f"SELECT seed::VARCHAR FROM '{out}'").fetchall() == [(str(2**64 - 1),)]


def test_tensors_are_not_read(tmp_path):
    """Indexing reads headers and manifests only: a 256 MiB tensor adds nothing to the peak
    memory of a fresh process (measured there, so earlier tests' peaks do not hide it)."""
    import subprocess
    import sys

    big = tmp_path / "big.raiiaf"
    raiiaf_rs.write(big, {"initial_noise": np.ones((1, 16, 2048, 2048), np.float32)})
    code = f"""
import resource, raiiaf_rs, pyarrow as pa
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = pa.table(raiiaf_rs.catalog({str(big)!r}))
assert t.column("tensors").to_pylist()[0][0]["bytes"] == 256 << 20
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) < 16, out.stdout


def _row(path: Path, **options) -> dict:
    return rows_by_path(table(raiiaf_rs.catalog(path, **options)))[str(path)]


def test_null_and_empty_rules_of_a_readable_file(tmp_path, png_bytes):
    """CATALOG.md "Null, empty and error", readable files: empty strings kept, wrong types
    null, no image/ENVC/noise/LoRA give nulls and empty lists, `verified` null without
    --verify and true with it."""
    bare = tmp_path / "bare.raiiaf"
    meta = {
        "prompt": "",  # kept: the file records an empty prompt
        "negative_prompt": "",
        "scheduler": {"not": "a string"},  # an object: null
        "generation_settings": {"seed": "12x", "steps": "7", "cfg_scale": [1], "sampler": ""},
        "width": 2**70,  # beyond int64: null
        "batch_id": 5,  # a number as JSON prints it
        "loras": [{"name": None}, {"name": "", "strength": "0.5"}],
    }
    raiiaf_rs.write(bare, {"final_latent": noise((1, 4, 8, 8), 1)}, None, meta, environment=None)
    r = _row(bare)
    assert (r["prompt"], r["negative_prompt"], r["sampler"]) == ("", "", "")
    assert (r["scheduler"], r["seed"], r["cfg"], r["width"]) == (None, None, None, None)
    assert (r["steps"], r["batch_id"]) == (7, "5")
    assert r["loras"] == [
        {"name": "", "sha256": None, "strength_model": 0.5, "strength_clip": None}
    ]
    assert (r["has_image"], r["image_sha256"], r["noise_sha256"]) == (False, None, None)
    assert r["environment"] == [] and r["env_python"] is None and r["env_pixel_sha256"] is None
    assert (r["pass_count"], r["pass_roles"], r["pass_seeds"]) == (0, [], [])
    assert (r["flavor"], r["file_sha256"], r["verified"], r["error"]) == (
        "raiiaf",
        None,
        None,
        None,
    )
    assert _row(bare, verify=True)["verified"] is True
    # A malformed `passes` value: pass_count null, lists empty, no error; a component with no
    # field but its name: an empty env_ column; an image and no tensor: an empty `tensors`.
    odd = tmp_path / "odd.raiiaf"
    env = raiiaf_rs.environment_document([("cpu", "name=cpu"), ("os", "name=os;version=x")])
    raiiaf_rs.write(
        odd,
        {"initial_noise": noise((1, 4, 8, 8), 2)},
        None,
        {"passes": {"order": 0}},
        environment=env,
    )
    r = _row(odd)
    assert (r["pass_count"], r["pass_roles"], r["pass_exact"], r["error"]) == (None, [], [], None)
    assert (r["env_cpu"], r["env_os"], r["env_gpu_driver"]) == ("", "version=x", None)
    image_only = tmp_path / "image.raiiaf"
    raiiaf_rs.write(image_only, {}, png_bytes, {}, environment=None)
    r = _row(image_only)
    assert (r["tensors"], r["has_image"], r["pass_count"], r["error"]) == ([], True, 0, None)
    # Queries see empty and unknown apart.
    out = tmp_path / "c.parquet"
    raiiaf_rs.index(bare, out)
    q = f"SELECT negative_prompt = '', scheduler IS NULL FROM '{out}'"
    assert duckdb.sql(q).fetchall() == [(True, True)]


def test_error_rows_keep_only_the_files_own_columns(tmp_path):
    """An error row: path, source_kind, size, mtime_ns, file_sha256 (with hash), verified
    false, error; every other column null or empty, with or without --verify, so `WHERE NOT
    verified` lists every damaged file (it missed them when `verified` was null)."""
    good = write_sample(tmp_path / "good.raiiaf", 0)
    data = bytearray(good.read_bytes())
    data[33 + 12 + 5] ^= 1  # a tensor byte: only --verify sees it, after the metadata was read
    (tmp_path / "flipped.raiiaf").write_bytes(bytes(data))
    (tmp_path / "empty.raiiaf").write_bytes(b"")
    (tmp_path / "broken.raiiaf").symlink_to(tmp_path / "nowhere")
    (tmp_path / "garbage.raiiaf").write_bytes(b"hello")
    import hashlib

    for verify in (False, True):
        rows = rows_by_path(table(raiiaf_rs.catalog(tmp_path, verify=verify, hash=True)))
        for name in ("empty", "broken", "garbage") + (("flipped",) if verify else ()):
            path = tmp_path / f"{name}.raiiaf"
            r = rows[str(path)]
            assert r["error"] and r["verified"] is False, (name, r)
            lists = {k for k, v in r.items() if isinstance(v, list)}
            own = {"path", "source_kind", "size", "mtime_ns", "file_sha256", "verified", "error"}
            assert all(r[k] is None for k in r if k not in own | lists), (name, r)
            assert all(r[k] == [] for k in lists), (name, r)
            if name == "broken":
                assert (r["size"], r["mtime_ns"], r["file_sha256"]) == (0, 0, None)
                assert "cannot stat the file" in r["error"]
            else:
                assert r["size"] == path.stat().st_size
                assert r["file_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert rows[str(good)]["verified"] is (True if verify else None)
    out = tmp_path / "c.parquet"
    raiiaf_rs.index(tmp_path, out)
    damaged = duckdb.sql(f"SELECT count(*) FROM '{out}' WHERE NOT verified").fetchall()[0][0]
    assert damaged == 3


def test_a_declared_size_the_file_cannot_hold_is_an_error_without_verify(tmp_path):
    """A 1.7 KB file declaring a 4 TiB tensor, a 64 GiB image: error rows without --verify."""
    for name in ("bomb-compact-shape-4-tib.raiiaf", "bomb-data-declares-64-gib.raiiaf"):
        r = _row(ADVERSARIAL / name)
        assert "declares" in r["error"] and r["verified"] is False, (name, r["error"])
        assert r["tensors"] == [] and r["prompt"] is None


def test_pass_columns_answer_which_pass_questions(tmp_path):
    """The pass columns: stored `passes` and old files (webui hires, ComfyUI captures, a lone
    noise), the same columns for every host; DuckDB finds hires files and a refiner's seed."""
    from raiiaf_rs import passes

    cases = {
        c.stem: json.loads(c.read_text())
        for c in (Path(__file__).parent / "data" / "passes").glob("*.json")
    }
    for stem, c in cases.items():
        latents = {k: np.zeros(v["shape"], v["dtype"]) for k, v in c["latents"].items()}
        raiiaf_rs.write(tmp_path / f"{stem}.raiiaf", latents, None, c["metadata"], environment=None)
    out = tmp_path / "c.parquet"
    raiiaf_rs.index(tmp_path, out)
    rows = rows_by_path(pq.read_table(out))
    for stem, c in cases.items():
        r = rows[str(tmp_path / f"{stem}.raiiaf")]
        want = c["passes"]
        assert r["pass_count"] == len(want), stem
        assert r["pass_roles"] == [p["role"] for p in want], stem
        assert [None if s is None else int(s) for s in r["pass_seeds"]] == [p["seed"] for p in want]
        assert r["pass_hosts"] == [p["source"]["host"] for p in want], stem
        assert r["pass_noise"] == [p["noise"] for p in want], stem
        assert r["pass_samplers"] == [p["settings"].get("sampler") for p in want], stem
        assert r["pass_exact"] == [p["exact"] for p in want], stem
        # The Python reader on the written file agrees.
        art = raiiaf_rs.read(tmp_path / f"{stem}.raiiaf")
        got = passes.passes_of(art.metadata, {k: v.shape for k, v in art.latents.items()})
        assert [p.role for p in got] == r["pass_roles"], stem
    hires = duckdb.sql(
        f"SELECT parse_filename(path), pass_seeds[list_position(pass_roles, 'hires')]::BIGINT"
        f" FROM '{out}' WHERE list_contains(pass_roles, 'hires') ORDER BY 1"
    ).fetchall()  # which files have a hires pass, and its seed
    assert hires == [("comfyui_captures_hires.raiiaf", 7), ("webui_hires.raiiaf", None)]
    refiner = duckdb.sql(
        f"SELECT pass_hosts[list_position(pass_roles, 'refiner')] FROM '{out}'"
        " WHERE list_contains(pass_roles, 'refiner')"
    ).fetchall()
    assert refiner == [("diffusers",)]
