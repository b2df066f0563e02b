"""Torch tensors in and out, bit for bit, in whichever build is installed: the
default build (numpy views) under `make pytest`, the optional torch build (tch)
under `make torch-test`, which sets RAIIAF_EXPECT_TORCH_BUILD=1 so that this file
cannot silently test the other build."""

from __future__ import annotations

import os

import numpy as np
import pytest
import raiiaf_rs
from raiiaf_rs import InvalidArgumentError

torch = pytest.importorskip("torch")

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
BITS = {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16}


def bits(t):
    """The tensor's element bits (NaN payloads and -0.0 compare exactly)."""
    t = t.detach().cpu().contiguous()
    return t.view(BITS[t.dtype])


def special(shape, dtype, seed=0):
    """Gaussian noise of `dtype` with -0.0, NaN, infinities and a subnormal mixed in."""
    g = torch.Generator().manual_seed(seed)
    t = torch.randn(*shape, generator=g).to(dtype)
    flat = t.view(-1)
    tiny = torch.finfo(dtype).tiny / 4  # subnormal
    for i, v in enumerate([-0.0, float("nan"), float("inf"), -float("inf"), tiny]):
        flat[(i * 7919) % flat.numel()] = v
    return t


def test_build_is_the_expected_one(tmp_path):
    from raiiaf_rs._extension import native

    t = special((2, 3), torch.bfloat16)
    path = str(tmp_path / "n.raiiaf")
    write_args = (path, [("x", "bfloat16", t)], None, "{}", "{}", None, "raw", False, False)
    if os.environ.get("RAIIAF_EXPECT_TORCH_BUILD") == "1":
        assert torch.__version__ == raiiaf_rs.LINKED_TORCH
        # The extension itself takes and returns torch tensors.
        native._write(*write_args)
        [(name, dtype, got)] = native._read(path, True, None, False, True)["latents"]
        assert (name, dtype, got.dtype) == ("x", "bfloat16", torch.bfloat16)
        assert torch.equal(bits(got), bits(t))
    else:
        assert raiiaf_rs.LINKED_TORCH is None
        with pytest.raises(InvalidArgumentError, match="numpy array"):
            native._write(*write_args)
        with pytest.raises(raiiaf_rs.UnsupportedError, match="does not link torch"):
            raiiaf_rs.write(path, {"x": t})
            native._read(path, True, None, False, True)


@pytest.mark.parametrize("codec", ["raw", "compact"])
@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("shape", [(1, 4, 16, 16), (1, 16, 3, 6, 10), (5,)], ids=len)
def test_round_trip_bit_exact(tmp_path, codec, dtype, shape):
    t = special(shape, DTYPES[dtype])
    path = tmp_path / "t.raiiaf"
    raiiaf_rs.write(path, {"initial_noise": t}, codec=codec, environment=None)

    art = raiiaf_rs.read(path, as_torch=True)
    got = art.latents["initial_noise"]
    assert art.dtypes["initial_noise"] == dtype
    assert isinstance(got, torch.Tensor) and got.dtype == t.dtype and got.device.type == "cpu"
    assert got.shape == t.shape and got.is_contiguous()
    assert torch.equal(bits(got), bits(t))
    # The tensor owns exactly its elements (decoded in place, nothing larger behind it).
    assert got.untyped_storage().nbytes() == t.numel() * t.element_size()

    # numpy readers get the same bits (bfloat16 as uint16 words).
    arr = raiiaf_rs.read(path).latents["initial_noise"]
    assert arr.tobytes() == bits(t).numpy().tobytes()


def test_tensor_and_its_numpy_view_write_the_same_file(tmp_path):
    latents = {n: special((1, 4, 8, 8), d, seed=i) for i, (n, d) in enumerate(DTYPES.items())}
    as_numpy = {
        "float32": latents["float32"].numpy(),
        "float16": latents["float16"].numpy(),
        "bfloat16": bits(latents["bfloat16"]).numpy().view(np.uint16),
    }
    for codec in ("raw", "compact"):
        common = {"environment": None, "codec": codec, "overwrite": True, "metadata": {"date": ""}}
        raiiaf_rs.write(tmp_path / "t.raiiaf", latents, **common)
        raiiaf_rs.write(tmp_path / "n.raiiaf", as_numpy, dtype={"bfloat16": "bfloat16"}, **common)
        assert (tmp_path / "t.raiiaf").read_bytes() == (tmp_path / "n.raiiaf").read_bytes()


class Tagged(torch.Tensor):
    """A tensor subclass, as some UIs and quantisation packs use."""


def layouts():
    g = torch.Generator().manual_seed(3)
    base = torch.randn(2, 4, 8, 8, generator=g)
    with torch.inference_mode():
        inference = torch.randn(1, 4, 8, 8, generator=g)
    return {
        "transposed": base.transpose(2, 3),
        "channels_last": base.to(memory_format=torch.channels_last),
        "offset_view": base[1:],
        "strided_view": base[..., ::2],
        "expanded": torch.randn(1, 4, 1, 8, generator=g).expand(1, 4, 8, 8),
        "requires_grad": torch.randn(1, 4, 8, 8, generator=g, requires_grad=True),
        "non_leaf": torch.randn(1, 4, 8, 8, generator=g, requires_grad=True) * 2,
        "parameter": torch.nn.Parameter(torch.randn(1, 4, 8, 8, generator=g)),
        "subclass": torch.randn(1, 4, 8, 8, generator=g).as_subclass(Tagged),
        "inference_mode": inference,
        "bf16_transposed": base.bfloat16().transpose(0, 1),
        "sparse": torch.randn(3, 5, generator=g).relu().to_sparse(),
    }


@pytest.mark.parametrize("name", list(layouts()))
def test_every_tensor_layout_is_stored_exactly(tmp_path, name):
    t = layouts()[name]

    def values():
        return bits(t.detach().to_dense() if t.is_sparse else t)

    expected = values().clone()
    raiiaf_rs.write(tmp_path / "l.raiiaf", {name: t}, codec="compact")
    got = raiiaf_rs.read(tmp_path / "l.raiiaf", as_torch=True).latents[name]
    assert got.shape == t.shape and got.dtype == t.dtype
    assert torch.equal(bits(got), expected)
    assert torch.equal(values(), expected)  # the caller's tensor is untouched


@pytest.mark.parametrize(
    "tensor, message",
    [
        (torch.zeros(2, dtype=torch.float64), "float64"),
        (torch.zeros(2, dtype=torch.int64), "int64"),
        (torch.zeros(2, dtype=torch.bool), "bool"),
        (torch.zeros(2, dtype=torch.complex64), "complex64"),
        (torch.zeros(2, 3, device="meta"), "meta"),
        (torch.zeros(2, 0, 3), "zero-sized"),
        (torch.tensor(1.0), "dimensions"),
    ],
    ids=["float64", "int64", "bool", "complex", "meta", "empty", "scalar"],
)
def test_unstorable_tensors_are_refused_clearly(tmp_path, tensor, message):
    path = tmp_path / "bad.raiiaf"
    with pytest.raises(InvalidArgumentError, match=message):
        raiiaf_rs.write(path, {"x": tensor})
    assert not path.exists()


def test_lossy_conversion_of_a_tensor_only_on_request(tmp_path):
    t = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(5)) * 3
    for target, cast in (("bfloat16", torch.Tensor.bfloat16), ("float16", torch.Tensor.half)):
        path = tmp_path / f"{target}.raiiaf"
        raiiaf_rs.write(path, {"n": t}, dtype=target)
        got = raiiaf_rs.read(path, as_torch=True).latents["n"]
        # Rounded exactly as torch rounds (to nearest, ties to even).
        assert got.dtype == cast(t).dtype and torch.equal(bits(got), bits(cast(t)))
    with pytest.raises(InvalidArgumentError, match="lossy"):
        raiiaf_rs.write(tmp_path / "x.raiiaf", {"n": t.bfloat16()}, dtype="float16")


def test_read_as_torch_gives_independent_writable_tensors(tmp_path):
    t = special((1, 4, 8, 8), torch.float16)
    raiiaf_rs.write(tmp_path / "w.raiiaf", {"a": t, "b": t})
    art = raiiaf_rs.read(tmp_path / "w.raiiaf", as_torch=True)
    a, b = art.latents["a"], art.latents["b"]
    a.zero_()
    assert torch.equal(bits(b), bits(t))
    again = raiiaf_rs.read(tmp_path / "w.raiiaf", as_torch=True, names=["a"]).latents
    assert list(again) == ["a"] and torch.equal(bits(again["a"]), bits(t))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", list(DTYPES))
def test_cuda_tensors_are_copied_to_the_host_once_bit_exact(tmp_path, dtype):
    t = special((1, 4, 64, 64), DTYPES[dtype]).cuda()
    raiiaf_rs.write(tmp_path / "c.raiiaf", {"n": t})
    got = raiiaf_rs.read(tmp_path / "c.raiiaf", as_torch=True).latents["n"]
    assert got.device.type == "cpu"
    assert torch.equal(bits(got), bits(t))
