"""Spikes at one bit per element: :func:`snnrs.ops.pack_spikes` / :func:`snnrs.ops.unpack_spikes`.

Every dtype, shape (sizes around bytes and 64-element words, 0, ~10^6) and layout (transposed,
sliced with steps, expanded) round-trips bit for bit; the bytes equal ``numpy.packbits`` of the
logical order (an oracle sharing nothing with the kernels), from the Rust kernels and the
pure-PyTorch twins alike; a single element that is not exactly +0.0 or +1.0 (by bit pattern)
refuses the whole tensor; bad arguments are Type/ValueErrors naming the argument, and the Rust
boundary refuses bad buffer descriptions on its own. The CUDA kernels' twins of these tests are
in tests/test_cuda.py (host emulation).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from snnrs import _core, ops
from snnrs.backends import cpu, reference
from snnrs.backends._native import bits_buf, buf

DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
INTS = {torch.float16: torch.int16, torch.bfloat16: torch.int16, torch.float32: torch.int32,
        torch.float64: torch.int64}
SIZES = (0, 1, 7, 8, 9, 63, 64, 65, 127, 129, 1000, 16385)


def _oracle(x: torch.Tensor) -> np.ndarray:
    """numpy's packing of the logical order, least significant bit first."""
    ones = (x.reshape(-1) == 1).numpy()
    return np.packbits(ones, bitorder="little")


def _spikes(shape: tuple[int, ...], dtype: torch.dtype, seed: int, p: float = 0.3
            ) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < p).to(dtype)


def _layout(x: torch.Tensor, how: str) -> torch.Tensor:
    """``x``'s values in another memory layout (the same logical tensor)."""
    if how == "transposed":
        return x.mT.contiguous().mT if x.dim() >= 2 else x
    if how == "stepped":
        wide = torch.zeros((*x.shape[:-1], 3 * x.shape[-1]), dtype=x.dtype) if x.dim() else x
        if x.dim():
            wide[..., ::3] = x
            return wide[..., ::3]
        return x
    return x


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    a, b = a.contiguous(), b.contiguous()
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(
        a.view(INTS[a.dtype]), b.view(INTS[b.dtype]))


def _check_round_trip(x: torch.Tensor) -> torch.Tensor:
    bits = ops.pack_spikes(x)
    assert bits is not None and bits.dtype == torch.uint8 and bits.dim() == 1
    assert bits.numel() == math.ceil(x.numel() / 8)
    np.testing.assert_array_equal(bits.numpy(), _oracle(x))
    if x.numel():
        assert torch.equal(reference.pack_spikes(x.contiguous()), bits)
    back = ops.unpack_spikes(bits, x.shape, x.dtype)
    assert back.is_contiguous() and torch.equal(back, x) and _same_bits(back, x)
    return bits


shapes = st.one_of(
    st.lists(st.integers(0, 12), min_size=0, max_size=3).map(tuple),
    st.sampled_from(SIZES).map(lambda n: (n,)),
    st.tuples(st.sampled_from([1, 3, 7]), st.sampled_from(SIZES[:9])),
)


@settings(max_examples=120, deadline=None)
@given(shape=shapes, dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**31),
       how=st.sampled_from(["contiguous", "transposed", "stepped"]),
       p=st.sampled_from([0.0, 0.3, 1.0]))
def test_any_spikes_round_trip_bit_for_bit_in_numpys_layout(shape, dtype, seed, how, p):
    x = _layout(_spikes(shape, dtype, seed, p), how)
    _check_round_trip(x)


@pytest.mark.parametrize("dtype", DTYPES)
def test_expanded_and_sliced_views_pack_their_logical_order(dtype):
    row = _spikes((1, 37), dtype, 1)
    _check_round_trip(row.expand(5, 37))
    _check_round_trip(_spikes((9, 40), dtype, 2)[1::3, 5::2])
    _check_round_trip(_spikes((4, 6, 5), dtype, 3).permute(2, 0, 1))
    _check_round_trip(torch.ones((), dtype=dtype))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES)
def test_a_million_spikes_on_one_and_two_threads(dtype, threads):
    x = _spikes((1000, 1003), dtype, threads)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        bits = _check_round_trip(x)
    finally:
        torch.set_num_threads(previous)
    assert bits.numel() == math.ceil(1000 * 1003 / 8)


def _bad_values(dtype: torch.dtype) -> list[float]:
    return [-0.0, math.nan, 0.5, 2.0, math.inf, -math.inf, -1.0,
            torch.finfo(dtype).tiny, 1.0 + torch.finfo(dtype).eps]


@settings(max_examples=80, deadline=None)
@given(n=st.sampled_from([1, 7, 9, 64, 65, 130, 5000, 70000]), dtype=st.sampled_from(DTYPES),
       seed=st.integers(0, 2**31), data=st.data())
def test_one_non_spike_anywhere_refuses_the_whole_tensor(n, dtype, seed, data):
    bad = data.draw(st.sampled_from(_bad_values(dtype)))
    at = data.draw(st.integers(0, n - 1))
    x = _spikes((n,), dtype, seed)
    x[at] = bad
    assert ops.pack_spikes(x) is None
    assert ops.pack_spikes(x.view(1, n).expand(2, n)) is None
    assert reference.pack_spikes(x) is None
    assert cpu.pack_spikes(x) is None


def test_negative_zero_is_refused_though_it_equals_zero():
    x = torch.tensor([0.0, 1.0, -0.0])
    assert bool((x == 0).logical_or(x == 1).all())  # by value it looks like spikes
    assert ops.pack_spikes(x) is None


def test_packing_a_tensor_that_requires_grad_keeps_no_graph():
    x = _spikes((3, 11), torch.float32, 5).requires_grad_()
    bits = ops.pack_spikes(x)
    assert bits is not None and not bits.requires_grad


def test_saved_tensor_hooks_train_identically_on_packed_spikes():
    torch.manual_seed(0)
    lin = torch.nn.Linear(50, 7)
    x = _spikes((16, 50), torch.float32, 9).requires_grad_()

    def grads(hooked: bool) -> list[torch.Tensor]:
        lin.zero_grad()
        x.grad = None
        packed = []

        def pack(t):
            bits = ops.pack_spikes(t) if t.dtype.is_floating_point else None
            packed.append(bits is not None)
            return (t, None) if bits is None else (None, (bits, t.shape, t.dtype))

        def unpack(saved):
            t, spec = saved
            return t if spec is None else ops.unpack_spikes(*spec)

        if hooked:
            with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
                y = lin(x)
        else:
            y = lin(x)
        (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        assert not hooked or any(packed)
        return [lin.weight.grad.clone(), lin.bias.grad.clone(), x.grad.clone()]

    for a, b in zip(grads(False), grads(True), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_tensors_pack_to_nothing_and_back(dtype):
    bits = ops.pack_spikes(torch.empty(3, 0, dtype=dtype))
    assert bits is not None and bits.shape == (0,) and bits.dtype == torch.uint8
    back = ops.unpack_spikes(bits, (3, 0), dtype)
    assert back.shape == (3, 0) and back.dtype == dtype


# ---------------------------------------------------------------------------------------------
# Refusals at the public entry.


def test_pack_refuses_what_is_not_a_floating_tensor():
    with pytest.raises(TypeError, match=re.escape("x must be a tensor, got list")):
        ops.pack_spikes([1.0, 0.0])
    with pytest.raises(TypeError, match=re.escape(
            "x must be float16, bfloat16, float32 or float64, got torch.int32")):
        ops.pack_spikes(torch.ones(3, dtype=torch.int32))
    with pytest.raises(TypeError, match=re.escape("got torch.complex64")):
        ops.pack_spikes(torch.ones(3, dtype=torch.complex64))
    with pytest.raises(TypeError, match=re.escape("x must be a dense (strided) tensor")):
        ops.pack_spikes(torch.ones(3).to_sparse())


def test_unpack_refuses_bad_bits_shapes_and_dtypes():
    bits = ops.pack_spikes(torch.tensor([1.0, 0.0, 1.0]))
    assert bits is not None and bits.tolist() == [5]
    with pytest.raises(TypeError, match=re.escape("bits must be a tensor, got bytes")):
        ops.unpack_spikes(b"\x05", (3,), torch.float32)
    with pytest.raises(TypeError, match=re.escape("bits must be uint8 (packed spikes), got "
                                                  "torch.int8")):
        ops.unpack_spikes(bits.to(torch.int8), (3,), torch.float32)
    with pytest.raises(TypeError, match=re.escape("got torch.float32")):
        ops.unpack_spikes(bits.float(), (3,), torch.float32)
    with pytest.raises(TypeError, match=re.escape(
            "dtype must be float16, bfloat16, float32 or float64, got torch.int32")):
        ops.unpack_spikes(bits, (3,), torch.int32)
    with pytest.raises(TypeError, match=re.escape("dtype must be float16")):
        ops.unpack_spikes(bits, (3,), "float32")
    with pytest.raises(TypeError, match=re.escape("shape must be a sequence of ints, got int")):
        ops.unpack_spikes(bits, 3, torch.float32)
    with pytest.raises(TypeError, match=re.escape("shape must be a sequence of ints, got (3.0,)")):
        ops.unpack_spikes(bits, (3.0,), torch.float32)
    with pytest.raises(ValueError, match=re.escape("shape must have no negative dimension, got "
                                                   "(-3,)")):
        ops.unpack_spikes(bits, (-3,), torch.float32)
    with pytest.raises(ValueError, match=re.escape("bits must be 1-D, got shape (1, 1)")):
        ops.unpack_spikes(bits.view(1, 1), (3,), torch.float32)
    with pytest.raises(ValueError, match=re.escape(
            "bits has 1 bytes, but shape (3, 3) (9 elements) needs 2")):
        ops.unpack_spikes(bits, (3, 3), torch.float32)
    with pytest.raises(ValueError, match=re.escape(
            "bits has 2 bytes, but shape (8,) (8 elements) needs 1")):
        ops.unpack_spikes(torch.zeros(2, dtype=torch.uint8), (8,), torch.float32)
    with pytest.raises(ValueError, match=re.escape(
            "bits has padding bits set: its last byte is 0x0d, but only its low 3 bit(s) hold "
            "elements")):
        ops.unpack_spikes(torch.tensor([13], dtype=torch.uint8), (3,), torch.float32)
    out = ops.unpack_spikes(torch.tensor([13], dtype=torch.uint8), (2, 4), torch.bfloat16)
    assert out.tolist() == [[1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]
    assert ops.unpack_spikes(bits, torch.Size([3]), torch.float16).tolist() == [1.0, 0.0, 1.0]


# ---------------------------------------------------------------------------------------------
# The Rust boundary on its own: bad descriptions are errors, never memory accesses.


def test_the_rust_boundary_checks_every_buffer():
    ctx = _core.Cpu(1)
    x = torch.tensor([1.0, 0.0, 1.0] * 3)
    bits = torch.empty(2, dtype=torch.uint8)
    assert _core.pack_spikes(ctx, x=buf(x), bits=bits_buf(bits)) is None
    assert bits.tolist() == [0b01101101, 0b1]
    with pytest.raises(ValueError, match=re.escape("bits has 1 elements, expected 2")):
        _core.pack_spikes(ctx, x=buf(x), bits=bits_buf(bits[:1]))
    with pytest.raises(TypeError, match=re.escape("bits is float32, expected uint8")):
        _core.pack_spikes(ctx, x=buf(x), bits=buf(torch.empty(2)))
    with pytest.raises(TypeError, match=re.escape("x is uint8, expected float16")):
        _core.pack_spikes(ctx, x=bits_buf(torch.empty(9, dtype=torch.uint8)), bits=bits_buf(bits))
    with pytest.raises(ValueError, match=re.escape("flag is only used on CUDA")):
        _core.pack_spikes(ctx, x=buf(x), bits=bits_buf(bits), flag=bits_buf(bits[:1]))
    with pytest.raises(ValueError, match="overlap"):
        _core.pack_spikes(ctx, x=buf(x), bits=(x.data_ptr() + 4, 2, _core.DType.U8))
    with pytest.raises(ValueError, match="misaligned"):
        _core.pack_spikes(ctx, x=(x.data_ptr() + 1, 9, _core.DType.F32), bits=bits_buf(bits))
    with pytest.raises(TypeError, match=re.escape("pack_spikes() needs the buffer 'bits'")):
        _core.pack_spikes(ctx, x=buf(x))
    with pytest.raises(TypeError, match=re.escape("pack_spikes() has no buffer 'y'")):
        _core.pack_spikes(ctx, x=buf(x), bits=bits_buf(bits), y=buf(x))
    x[4] = 2.0
    assert _core.pack_spikes(ctx, x=buf(x), bits=bits_buf(bits)) == 4
    assert bits.tolist() == [0, 0]  # no partial result
    out = torch.empty(9, dtype=torch.float64)
    # a buffer is an address: the tensor behind it must outlive the call
    padded, valid = (torch.tensor(v, dtype=torch.uint8) for v in ([0, 2], [9, 1]))
    with pytest.raises(ValueError, match=re.escape("bits has padding bits set")):
        _core.unpack_spikes(ctx, bits=bits_buf(padded), out=buf(out))
    with pytest.raises(ValueError, match=re.escape("bits has 1 elements, expected 2")):
        _core.unpack_spikes(ctx, bits=bits_buf(bits[:1]), out=buf(out))
    assert _core.unpack_spikes(ctx, bits=bits_buf(valid), out=buf(out)) is None
    assert out.tolist() == [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0]
