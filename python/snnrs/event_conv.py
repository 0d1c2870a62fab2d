"""Event-driven convolution of spikes on the CPU (a prototype; issue 31).

A convolution whose input holds only 0 and 1 needs no multiplications: each output is the sum of
the weights at its receptive field's active inputs. :func:`event_conv2d` computes the forward
that way in the Rust kernels (``snnrs._core.event_conv2d``), and the weight gradient too, which
is sparse in the same input; the input gradient stays dense (``torch.nn.grad.conv2d_input``).
The work is proportional to the input's density, so the kernel beats torch's dense convolution
only below some density: ``benches/bench_event_conv.py`` measures where. Results equal the dense
convolution's up to float32 summation order, not bit for bit.
"""

from __future__ import annotations

import numbers

import torch
from torch import Tensor

from . import _buffers, _core, _threads
from .backends._native import buf, maybe_buf
from .backends.cpu import _context

__all__ = ["event_conv2d", "event_conv2d_weight"]


def _pair(name: str, v: object, least: int) -> tuple[int, int]:
    items = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    if len(items) != 2 or not all(
            isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in items):
        raise TypeError(f"{name} must be an int or a pair of ints, got {v!r}")
    if any(i < least for i in items):
        raise ValueError(f"{name} must be >= {least}, got {v!r}")
    return int(items[0]), int(items[1])


def _tensor(name: str, t: object, dim: int) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a tensor, got {type(t).__name__}")
    if t.dtype != torch.float32:
        raise TypeError(f"{name} must be float32, got {t.dtype}")
    if t.device.type != "cpu" or t.layout != torch.strided:
        raise ValueError(f"{name} must be a dense CPU tensor, got {t.device} {t.layout}")
    if t.dim() != dim:
        raise ValueError(f"{name} must be {dim}-D, got shape {tuple(t.shape)}")
    return t


def _geometry(x: Tensor, weight_shape: torch.Size, groups: int) -> tuple[int, ...]:
    if isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    n, c_in, h, w = x.shape
    c_out, cig, kh, kw = weight_shape
    if c_in % groups or c_out % groups:
        raise ValueError(f"groups ({groups}) must divide the input's channels ({c_in}) and "
                         f"the weight's output channels ({c_out})")
    if cig * groups != c_in:
        raise ValueError(f"weight {tuple(weight_shape)} with groups={groups} expects "
                         f"{cig * groups} input channels, x has {c_in}")
    return n, c_in, h, w, c_out, kh, kw


def _out_size(shape: tuple[int, ...], stride: tuple[int, int], padding: tuple[int, int]
              ) -> tuple[int, int]:
    _, _, h, w, _, kh, kw = shape
    sizes = []
    for size, k, s, p, axis in ((h, kh, stride[0], padding[0], "height"),
                                (w, kw, stride[1], padding[1], "width")):
        if size + 2 * p < k:
            raise ValueError(f"the kernel's {axis} ({k}) exceeds the padded input's "
                             f"({size} + 2 x {p})")
        sizes.append((size + 2 * p - k) // s + 1)
    return sizes[0], sizes[1]


def _not_spikes(x: Tensor, index: int) -> ValueError:
    value = x.reshape(-1)[index].item()
    return ValueError(f"x must be spikes (only +0.0 and +1.0), but element {index} "
                      f"(row-major) is {value!r}")


def _forward(x: Tensor, weight: Tensor, bias: Tensor | None, stride: tuple[int, int],
             padding: tuple[int, int], shape: tuple[int, ...]) -> Tensor:
    groups = shape[1] // weight.shape[1]
    oh, ow = _out_size(shape, stride, padding)
    # From the recycling pool, as the neuron ops' outputs: a fresh 32 MiB+ buffer costs a page
    # fault per 4 KiB on first touch.
    y = _buffers.empty(torch.Size((shape[0], shape[4], oh, ow)), torch.float32)
    x, weight = x.detach().contiguous(), weight.detach().contiguous()
    bias = None if bias is None else bias.detach().contiguous()
    _threads.choose_on_first_use()
    bad = _core.event_conv2d(_context(), shape, stride, padding, groups, x=buf(x),
                             weight=buf(weight), y=buf(y), bias=maybe_buf(bias))
    if bad is not None:
        raise _not_spikes(x, bad)
    return y


def event_conv2d_weight(x: Tensor, weight_shape: torch.Size | tuple[int, ...], grad_y: Tensor,
                        stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                        groups: int = 1) -> Tensor:
    """The weight gradient of :func:`event_conv2d`, as ``torch.nn.grad.conv2d_weight``.

    Args:
        x: spikes ``[N, C_in, H, W]``, float32 on the CPU.
        weight_shape: ``(C_out, C_in / groups, kH, kW)``.
        grad_y: ``[N, C_out, OH, OW]``, float32.
    Returns:
        ``[C_out, C_in / groups, kH, kW]``: ``sum_{n, oh, ow} grad_y[n, co, oh, ow] *
        x[n, ci, oh * stride - padding + kh, ow * stride - padding + kw]``.

    Example:
        >>> x = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
        >>> event_conv2d_weight(x, (1, 1, 1, 1), torch.ones(1, 1, 2, 2)).flatten().tolist()
        [2.0]
    """
    x = _tensor("x", x, 4)
    grad_y = _tensor("grad_y", grad_y, 4)
    weight_shape = torch.Size(weight_shape)
    if len(weight_shape) != 4:
        raise ValueError(f"weight_shape must have 4 sizes, got {tuple(weight_shape)}")
    stride, padding = _pair("stride", stride, 1), _pair("padding", padding, 0)
    shape = _geometry(x, weight_shape, groups)
    want = (shape[0], shape[4], *_out_size(shape, stride, padding))
    if tuple(grad_y.shape) != want:
        raise ValueError(f"grad_y has shape {tuple(grad_y.shape)}, expected {want}")
    grad_w = torch.empty(weight_shape)
    x, grad_y = x.detach().contiguous(), grad_y.detach().contiguous()
    _threads.choose_on_first_use()
    bad = _core.event_conv2d_weight(_context(), shape, stride, padding, groups, x=buf(x),
                                    grad_y=buf(grad_y), grad_weight=buf(grad_w))
    if bad is not None:
        raise _not_spikes(x, bad)
    return grad_w


class _EventConv2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, shape):
        ctx.save_for_backward(x, weight)
        ctx.conf = stride, padding, shape[1] // weight.shape[1]
        ctx.has_bias = bias is not None
        return _forward(x, weight, bias, stride, padding, shape)

    @staticmethod
    def backward(ctx, grad_y):
        x, weight = ctx.saved_tensors
        stride, padding, groups = ctx.conf
        grad_y = grad_y.contiguous()
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.nn.grad.conv2d_input(x.shape, weight, grad_y, stride, padding,
                                                groups=groups)
        if ctx.needs_input_grad[1]:
            grad_w = event_conv2d_weight(x, weight.shape, grad_y, stride, padding, groups)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_y.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None, None, None


def event_conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None,
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 groups: int = 1) -> Tensor:
    """``torch.nn.functional.conv2d`` (dilation 1) for a spike input, event-driven on the CPU.

    The forward adds the weights at the active inputs; the backward's weight gradient is
    event-driven too, its input gradient dense. Autograd-aware in all three tensors.

    Args:
        x: spikes ``[N, C_in, H, W]``: float32 on the CPU, every element exactly +0.0 or +1.0
            (anything else, -0.0 and NaN included, is a ValueError naming the element).
        weight: ``[C_out, C_in / groups, kH, kW]``, float32.
        bias: ``[C_out]`` or None.
        stride: an int or an ``(h, w)`` pair, >= 1.
        padding: an int or an ``(h, w)`` pair of zero padding, >= 0.
        groups: divides ``C_in`` and ``C_out``.
    Returns:
        ``[N, C_out, OH, OW]`` with ``OH = (H + 2 padding_h - kH) // stride_h + 1`` (and so
        ``OW``), equal to the dense convolution up to float32 summation order.

    Example:
        >>> x = (torch.rand(2, 4, 8, 8) < 0.2).float()        # spikes [N, C_in, H, W]
        >>> w = torch.randn(6, 4, 3, 3, requires_grad=True)   # [C_out, C_in, kH, kW]
        >>> y = event_conv2d(x, w, padding=1)                  # [2, 6, 8, 8]
        >>> torch.allclose(y, torch.nn.functional.conv2d(x, w, padding=1), atol=1e-5)
        True
        >>> y.sum().backward()
        >>> w.grad.shape
        torch.Size([6, 4, 3, 3])
    """
    x = _tensor("x", x, 4)
    weight = _tensor("weight", weight, 4)
    if bias is not None:
        bias = _tensor("bias", bias, 1)
        if bias.shape[0] != weight.shape[0]:
            raise ValueError(f"bias has {bias.shape[0]} elements, the weight "
                             f"{weight.shape[0]} output channels")
    stride, padding = _pair("stride", stride, 1), _pair("padding", padding, 0)
    shape = _geometry(x, weight.shape, groups)
    return _EventConv2d.apply(x, weight, bias, stride, padding, shape)
