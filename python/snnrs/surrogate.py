"""Surrogate gradients: the stand-in for ``dS/dH`` in the backward pass (docs/neurons.md).

Each is a function ``sg(u)`` of ``u = H - v_threshold`` with one parameter ``alpha``:

============== =============================================== =========
name           ``sg(u)``                                       default
============== =============================================== =========
sigmoid        ``a * s * (1 - s)``, ``s = sigmoid(a * u)``     4
atan           ``(a / 2) / (1 + (pi / 2 * a * u)^2)``          2
triangle       ``max(0, g - |u|) / g^2``                       1
rectangle      ``(1 / w) * [|u| < w / 2]``                     1
fast_sigmoid   ``1 / (1 + k * |u|)^2``                         25
============== =============================================== =========
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from . import _core

DEFAULT_ALPHA: dict[str, float] = dict(_core.surrogates())
"""Each surrogate's default ``alpha``, as the Rust core defines them (one source)."""
NAMES: tuple[str, ...] = tuple(DEFAULT_ALPHA)


def resolve(surrogate: str, alpha: float | None) -> tuple[str, float]:
    """Validates a surrogate name and parameter; ``alpha=None`` picks the default.

    Example:
        >>> resolve("atan", None)
        ('atan', 2.0)
    """
    if not isinstance(surrogate, str) or surrogate not in DEFAULT_ALPHA:
        raise ValueError(f"unknown surrogate {surrogate!r}; expected one of {', '.join(NAMES)}")
    if alpha is None:
        return surrogate, DEFAULT_ALPHA[surrogate]
    alpha = float(alpha)
    if not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"surrogate alpha must be a finite number > 0, got {alpha}")
    return surrogate, alpha


def _sigmoid(u: Tensor, a: float) -> Tensor:
    s = torch.sigmoid(a * u)
    return a * s * (1 - s)


_GRADS = {
    "sigmoid": _sigmoid,
    "atan": lambda u, a: (a / 2) / (1 + (math.pi / 2 * a * u) ** 2),
    "triangle": lambda u, a: torch.clamp(a - u.abs(), min=0) / (a * a),
    "rectangle": lambda u, a: (u.abs() < a / 2).to(u.dtype) / a,
    "fast_sigmoid": lambda u, a: 1 / (1 + a * u.abs()) ** 2,
}


def grad(u: Tensor, surrogate: str, alpha: float) -> Tensor:
    """``sg(u)`` elementwise, in ``u``'s dtype."""
    try:
        formula = _GRADS[surrogate]
    except KeyError:
        raise ValueError(f"unknown surrogate {surrogate!r}; expected one of "
                         f"{', '.join(NAMES)}") from None
    return formula(u, alpha)


class _Heaviside(torch.autograd.Function):
    @staticmethod
    def forward(u: Tensor, surrogate: str, alpha: float) -> Tensor:  # type: ignore[override]
        return (u >= 0).to(u.dtype)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # type: ignore[override]
        u, ctx.surrogate, ctx.alpha = inputs
        ctx.save_for_backward(u)

    @staticmethod
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        (u,) = ctx.saved_tensors
        return grad_out * grad(u, ctx.surrogate, ctx.alpha), None, None


def heaviside(u: Tensor, surrogate: str, alpha: float) -> Tensor:
    """``u >= 0`` as a float tensor whose backward is ``grad_out * sg(u)``."""
    return _Heaviside.apply(u, surrogate, alpha)
