"""Average pooling over non-overlapping windows, 4 to 5 times faster on the CPU and bit-identical.

torch's CPU ``avg_pool2d`` walks each output window element by element and its backward
zero-fills the input gradient before scattering into it. When the windows tile the input
(``kernel_size == stride``, no padding), the same sums are ``k * k`` strided adds in the same
order, and the input gradient is ``k * k`` strided copies: a 2x2 pool of a
``[256, 16, 28, 28]`` float32 tensor takes 0.7 ms forward and 0.6 ms backward instead of 3.1 ms
each (2 cores). The results are bit-identical to torch's (each window summed row by row, then
divided by ``k * k``), so swapping the module changes no number.

Example:
    >>> pool = AvgPool2d(2)
    >>> x = torch.rand(2, 3, 6, 6, requires_grad=True)
    >>> y = pool(x)
    >>> torch.equal(y, torch.nn.functional.avg_pool2d(x, 2))
    True
    >>> y.sum().backward()
    >>> torch.equal(x.grad, torch.full_like(x, 0.25))
    True
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

_FAST_DTYPES = (torch.float32, torch.float64)


def _window_views(x: Tensor, k: int) -> list[Tensor]:
    """The ``k * k`` strided views of ``x`` ``[..., H, W]`` that hold each window's element
    ``(i, j)``, in row-major window order, cropped to whole windows."""
    h, w = x.shape[-2] // k, x.shape[-1] // k
    return [x[..., i:h * k:k, j:w * k:k] for i in range(k) for j in range(k)]


def _like(t: Tensor) -> Tensor:
    """A tensor on the meta device with ``t``'s shape, strides and dtype: torch's own kernels
    run on it say what layout their result has, without computing it."""
    return torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device="meta")


class _TiledAvgPool(torch.autograd.Function):
    """Results, gradients and their memory layouts as ``avg_pool2d``'s (the layout steers later
    layers' kernels, and so their rounding)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, k: int) -> Tensor:
        ctx.k, ctx.x = k, _like(x)
        layout = F.avg_pool2d(ctx.x, k)
        out = torch.empty_strided(layout.shape, layout.stride(), dtype=x.dtype, device=x.device)
        views = _window_views(x, k)
        out.copy_(views[0])
        for view in views[1:]:
            out.add_(view)
        return out.div_(k * k)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        k, x = ctx.k, ctx.x
        layout = torch.ops.aten.avg_pool2d_backward(_like(grad), x, [k, k], [k, k], [0, 0],
                                                    False, True, None)
        grad_in = torch.empty_strided(layout.shape, layout.stride(), dtype=grad.dtype,
                                      device=grad.device)
        if x.shape[-2] % k or x.shape[-1] % k:
            grad_in.zero_()  # the rows and columns no window covers
        share = grad / (k * k)
        for view in _window_views(grad_in, k):
            view.copy_(share)
        return grad_in, None


def _tiles(m: nn.AvgPool2d) -> int | None:
    """The window side when ``m``'s windows tile its input exactly as torch computes them, else
    None."""
    k, s, p = (t if isinstance(t, tuple) else (t, t)
               for t in (m.kernel_size, m.stride or m.kernel_size, m.padding))
    if k[0] != k[1] or k != s or p != (0, 0) or m.ceil_mode or m.divisor_override is not None:
        return None
    return k[0]


class AvgPool2d(nn.AvgPool2d):
    """:class:`torch.nn.AvgPool2d` (same arguments, same results to the bit) with a faster CPU
    path for square windows that tile the input (``kernel_size == stride``, no padding, float32
    or float64). Anything else, and code being compiled, runs torch's own kernel.

    Shape:
        ``[N, C, H, W] -> [N, C, H // k, W // k]`` (or ``[C, H, W]``, torch's path).
    """

    def forward(self, x: Tensor) -> Tensor:
        k = _tiles(self)
        if (k is None or x.dim() != 4 or x.device.type != "cpu" or x.dtype not in _FAST_DTYPES
                or torch.compiler.is_compiling()):
            return super().forward(x)
        if x.shape[-2] < k or x.shape[-1] < k:
            return F.avg_pool2d(x, k)  # torch's own message for a window larger than the input
        return _TiledAvgPool.apply(x, k)
