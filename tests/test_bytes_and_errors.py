"""Bytes in and out (read_bytes, write_bytes, read of a file-like object) and the exception
classes the extension defines, with their structured fields."""

from __future__ import annotations

import io
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import raiiaf_rs
from conftest import noise
from raiiaf_rs import errors

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("codec", ["raw", "compact", "zfp"])
def test_bytes_round_trip_equals_the_file(tmp_path, png_bytes, codec):
    latents = {"initial_noise": noise((1, 4, 16, 16)), "final_latent": noise((1, 4, 16, 16), 1)}
    meta = {"prompt": "a lighthouse", "date": "2026-01-01T00:00:00+00:00", "seed": 3}
    env = raiiaf_rs.environment_document([("python", "name=python;version=3.11.7")])
    data = raiiaf_rs.write_bytes(latents, png_bytes, meta, environment=env, codec=codec)
    assert isinstance(data, bytes)
    path = tmp_path / "f.raiiaf"
    raiiaf_rs.write(path, latents, png_bytes, meta, environment=env, codec=codec)
    assert path.read_bytes() == data  # the same file, byte for byte
    for art in (
        raiiaf_rs.read_bytes(data),
        raiiaf_rs.read_bytes(bytearray(data)),
        raiiaf_rs.read_bytes(memoryview(data)),
        raiiaf_rs.read(io.BytesIO(data)),
    ):
        assert art.image == png_bytes and art.metadata["seed"] == 3
        assert art.environment == env
        for name, want in latents.items():
            assert art.latents[name].tobytes() == want.tobytes()
    with open(path, "rb") as f:
        assert raiiaf_rs.read(f, names=["final_latent"]).latents.keys() == {"final_latent"}


def test_read_bytes_checks_like_read(png_bytes):
    data = bytearray(raiiaf_rs.write_bytes({"a": noise((1, 4, 8, 8))}, png_bytes, environment=None))
    data[60] ^= 1  # inside the tensor
    with pytest.raises(raiiaf_rs.HashMismatchError):
        raiiaf_rs.read_bytes(data)
    assert raiiaf_rs.read_bytes(data, verify=False).image == png_bytes
    with pytest.raises(raiiaf_rs.CorruptFileError, match=r"not a \.raiiaf file"):
        raiiaf_rs.read_bytes(b"hello")
    with pytest.raises(raiiaf_rs.InvalidArgumentError, match="read_bytes takes"):
        raiiaf_rs.read_bytes("not bytes")  # type: ignore[arg-type]
    with pytest.raises(raiiaf_rs.LimitExceededError):
        raiiaf_rs.read_bytes(bytes(data), verify=False, max_decoded_bytes=100)


def test_hash_mismatch_carries_its_fields(tmp_path):
    data = bytearray(
        raiiaf_rs.write_bytes({"initial_noise": noise((1, 4, 8, 8))}, environment=None)
    )
    data[60] ^= 1
    with pytest.raises(raiiaf_rs.HashMismatchError) as info:
        raiiaf_rs.read_bytes(bytes(data))
    e = info.value
    assert e.chunk == 'LATN "initial_noise" (#0)'
    assert len(e.expected) == 64 and len(e.actual) == 64 and e.expected != e.actual
    assert e.expected in str(e) and e.actual in str(e)
    assert e.declared is None and e.limit is None


def test_limit_error_carries_its_fields():
    data = raiiaf_rs.write_bytes({"a": noise((1, 4, 8, 8))}, environment=None, codec="compact")
    with pytest.raises(raiiaf_rs.LimitExceededError) as info:
        raiiaf_rs.read_bytes(data, max_decoded_bytes=1000)
    e = info.value
    assert (e.declared, e.limit) == (4 * 4 * 8 * 8, 1000)
    assert e.chunk == 'chunk LATN "a" (#0)'
    assert isinstance(e, raiiaf_rs.CorruptFileError) and e.expected is None
    # The caller's limit has its own class; a forged size does not.
    assert type(e) is raiiaf_rs.DecodedSizeLimitError
    forged = Path(__file__).parent / "data" / "adversarial" / "bomb-compact-shape-4-tib.raiiaf"
    with pytest.raises(raiiaf_rs.LimitExceededError) as info:
        raiiaf_rs.read(forged, max_decoded_bytes=1 << 62)
    assert type(info.value) is raiiaf_rs.LimitExceededError, info.value


def test_classes_come_from_the_extension_and_keep_their_bases():
    native = raiiaf_rs._extension.native
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert cls is getattr(native, name) is getattr(raiiaf_rs, name)
        assert cls.__module__ == "raiiaf_rs.errors" and cls.__name__ == name
        assert issubclass(cls, errors.RaiiafError)
        for field in ("chunk", "expected", "actual", "declared", "limit"):
            assert getattr(cls, field) is None
    assert issubclass(errors.InvalidArgumentError, ValueError)
    assert issubclass(errors.TargetExistsError, FileExistsError)
    assert issubclass(errors.LimitExceededError, errors.CorruptFileError)
    assert issubclass(errors.DecodedSizeLimitError, errors.LimitExceededError)
    assert issubclass(errors.HashMismatchError, errors.CorruptFileError)
    assert not issubclass(errors.InternalError, errors.InvalidArgumentError)
    # Raised from Python as well, and picklable (worker processes send them back).
    e = pickle.loads(pickle.dumps(errors.InvalidArgumentError("bad")))
    assert type(e) is errors.InvalidArgumentError and str(e) == "bad"


def test_target_exists_names_the_path(tmp_path):
    path = tmp_path / "x.raiiaf"
    raiiaf_rs.write(path, {"a": noise((4,))}, environment=None)
    with pytest.raises(FileExistsError) as info:
        raiiaf_rs.write(path, {"a": noise((4,))}, environment=None)
    assert isinstance(info.value, raiiaf_rs.TargetExistsError)
    assert info.value.chunk == str(path)


def test_a_panic_is_an_internal_error_not_an_argument_error():
    with pytest.raises(raiiaf_rs.InternalError, match="panic: boom") as info:
        raiiaf_rs._extension.native._test_panic("boom")
    assert not isinstance(info.value, (ValueError, raiiaf_rs.InvalidArgumentError))


def test_write_bytes_refuses_what_write_refuses():
    with pytest.raises(raiiaf_rs.InvalidArgumentError, match="codec"):
        raiiaf_rs.write_bytes({"a": noise((4,))}, codec="nope", environment=None)
    with pytest.raises(raiiaf_rs.InvalidArgumentError):
        raiiaf_rs.write_bytes({"a": np.zeros(4, np.int64)}, environment=None)


def test_codecs_come_from_the_registry():
    registry = raiiaf_rs._extension.native._codecs()
    assert raiiaf_rs.CODECS == tuple(api for _, api, _, _ in registry) == ("raw", "compact", "zfp")
    names = {name for name, *_ in registry}
    assert names == {"raw", "shuffle-zstd", "zfp"}
    # The name files record is accepted as well as the alias, and both give the same file.
    a = noise((1, 4, 8, 8))
    both = {
        c: raiiaf_rs.write_bytes({"a": a}, metadata={"date": "x"}, environment=None, codec=c)
        for c in ("compact", "shuffle-zstd")
    }
    assert both["compact"] == both["shuffle-zstd"]
    # The ComfyUI save node offers registered codecs only.
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).parents[1] / "comfy_nodes" / "save.py").read_text())
    offered = [
        ast.literal_eval(kw.value)
        for call in ast.walk(tree)
        if isinstance(call, ast.Call)
        and call.args
        and isinstance(call.args[0], ast.Constant)
        and call.args[0].value == "codec"
        for kw in call.keywords
        if kw.arg == "options"
    ]
    assert offered and all(set(o) <= set(raiiaf_rs.CODECS) for o in offered), offered


def test_cli_help_lists_the_registry():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "raiiaf_rs.cli", "convert", "--help"], capture_output=True, text=True
    ).stdout
    for name, api, *_ in raiiaf_rs._extension.native._codecs():
        assert name in out and api in out, out


def _class_names_in(path: str, pattern: str) -> list[str]:
    return re.findall(pattern, (REPO / path).read_text(encoding="utf-8"))


def test_the_five_exception_lists_agree():
    """The classes are made in Rust and named again in four Python files (the re-export, both
    stubs, the package's __all__). Each list must hold exactly the same classes, with the same
    bases in the stubs as at run time: adding one in Rust and forgetting a file fails here."""
    rust = _class_names_in("bindings/python/src/errors.rs", r'make\(\s*py,\s*"(\w+Error)"')
    module = errors.__all__
    stub = _class_names_in("python/raiiaf_rs/errors.pyi", r"(?m)^class (\w+Error)\(")
    native_stub = _class_names_in("python/raiiaf_rs/_raiiaf_rs.pyi", r"(?m)^(\w+Error) = _errors\.")
    package = [n for n in raiiaf_rs.__all__ if n.endswith("Error")]
    assert {"RaiiafError", "CorruptFileError", "InternalError"} <= set(rust)  # the patterns match
    assert sorted(rust) == sorted(module) == sorted(stub) == sorted(native_stub) == sorted(package)
    # The stub's bases are the run-time bases.
    stub_text = (REPO / "python/raiiaf_rs/errors.pyi").read_text(encoding="utf-8")
    for name, bases in re.findall(r"(?m)^class (\w+Error)\(([^)]*)\)", stub_text):
        runtime = [b.__name__ for b in getattr(errors, name).__bases__]
        assert [b.strip() for b in bases.split(",")] == runtime, name
