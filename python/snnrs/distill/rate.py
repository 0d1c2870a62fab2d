"""Rate-based backpropagation (Yu et al., NeurIPS 2024; docs/methods.md).

One training step of a spiking :class:`~snnrs.models.StagedNet` runs twice:

1. the **spike pass**, under ``no_grad``: the normal T-step forward, in which every spiking layer
   records its firing rate ``r`` and eligibility ``e`` (docs/neurons.md, rate-based mode), every
   BatchNorm that normalises by batch statistics records the batch mean and (biased) variance of
   its input and updates its running statistics (the only update of the step), and every
   non-linear stateless layer after the stem (max-pool, ReLU: :data:`PINNED`) records the time
   mean of its output;
2. the **rate pass**, with gradients, at batch ``B``: the image goes through the stem once and
   every later tensor is the time average of its spike-pass twin. Convs, linears, average pools
   and residual adds act on averages as they are. A spiking layer returns
   ``r + (c*e - (c*e).detach())`` with ``c`` its averaged input (value ``r``, ``dr/dc = e``:
   :func:`spiking_rate`); a BatchNorm normalises by the spike-pass statistics, with gradients as
   if by the averaged tensor's (:func:`batch_norm_rate`); a :data:`PINNED` layer returns the
   recorded time mean, with the gradient of the layer applied to the averaged input
   (:func:`pinned`), since ``mean_t max(x_t) != max(mean_t x_t)``.

Every other layer must act affinely on its input (convs, linears, average pools, residual
adds: all the zoo's do); the spike pass runs the model's own forward, the rate pass walks its
parts (stem, stem_act, stages, head).

The rate pass's logits therefore equal the spike pass's time-averaged logits (times ``T`` for a
``"sum"`` readout) up to rounding, and autograd keeps only ``B``-sized tensors: memory flat in
``T``. The loss gradient is scaled by ``1 / T`` (docs/methods.md, rate-based backpropagation, as
the reference code does); ``grad_scale=1.0`` keeps the plain chain rule, which for a constant
input current gives BPTT's gradient (``e`` is ``d mean_t S_t / dc``).

PLIF's ``w`` gets no gradient here: the eligibility covers the input current only.

Both passes swap the ``forward`` of the student's own spiking, BatchNorm and :data:`PINNED`
modules for the duration of the pass only (restored in a ``finally``); modules outside the
student (a teacher, a regressor) are untouched.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from typing import NamedTuple

import torch
from torch import Tensor, nn

from ..models.layers import Spiking, StepBatchNorm2d, unflatten_time
from ..models.network import StagedNet
from ..nn import BaseNode

NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)

#: Non-linear stateless layers whose rate-pass value is pinned to the spike pass's time mean.
PINNED = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
          nn.AdaptiveMaxPool3d, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU,
          nn.Sigmoid, nn.Tanh, nn.Hardtanh)


def scale_grad(x: Tensor, scale: float) -> Tensor:
    """``x`` unchanged in value, its gradient multiplied by ``scale``.

    Example:
        >>> x = torch.ones(3, requires_grad=True)
        >>> scale_grad(x * 2, 0.25).sum().backward()
        >>> x.grad.tolist()
        [0.5, 0.5, 0.5]
    """
    return x.detach() + (x * scale - (x * scale).detach())


def spiking_rate(rate: Tensor, eligibility: Tensor, current: Tensor) -> Tensor:
    """A spiking layer in the rate pass: value ``rate`` exactly, gradient ``eligibility`` per
    element of the averaged input ``current``.

    Shape:
        all ``(B, *)`` -> ``(B, *)``.

    Example:
        >>> c = torch.tensor([0.3, 2.0], requires_grad=True)
        >>> out = spiking_rate(torch.tensor([0.0, 1.0]), torch.tensor([0.5, 0.1]), c)
        >>> out.sum().backward()
        >>> out.tolist(), c.grad.tolist()
        ([0.0, 1.0], [0.5, 0.10000000149011612])
    """
    if current.shape != rate.shape:
        raise ValueError(f"the rate pass fed a spiking layer shape {tuple(current.shape)}, but "
                         f"its spike pass recorded rates of shape {tuple(rate.shape)}")
    ce = current * eligibility
    return rate + (ce - ce.detach())


def _channel_view(t: Tensor, dim: int) -> Tensor:
    return t.view(1, -1, *([1] * (dim - 2)))


class _BatchNormRate(torch.autograd.Function):
    """Straight-through BatchNorm saving only its input (and per-channel vectors) for backward:
    ``y = gamma * (x - mu) / sqrt(var + eps) + beta`` with ``mu``, ``var`` the spike pass's
    values, differentiated as ``d mu/dx = 1/n``, ``d var/dx = 2 (x - mean(x)) / n``."""

    @staticmethod
    def forward(ctx, x, mean, var, weight, bias, eps):
        dims = [0, *range(2, x.dim())]
        invstd = torch.rsqrt(var + eps)
        y = (x - _channel_view(mean, x.dim())) * _channel_view(invstd, x.dim())
        if weight is not None:
            y = y * _channel_view(weight, x.dim()) + _channel_view(bias, x.dim())
        ctx.save_for_backward(x, mean, invstd, x.mean(dims), weight)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        x, mean, invstd, mean_x, weight = ctx.saved_tensors
        dims, d = [0, *range(2, x.dim())], x.dim()
        s = _channel_view(invstd, d)
        x_hat = (x - _channel_view(mean, d)) * s
        g_xhat = (g * x_hat).mean(dims, keepdim=True)
        scale = s if weight is None else s * _channel_view(weight, d)
        grad_x = scale * (g - g.mean(dims, keepdim=True)
                          - s * (x - _channel_view(mean_x, d)) * g_xhat)
        grad_w = grad_b = None
        if weight is not None:
            grad_w, grad_b = g_xhat.flatten() * (g.numel() / g.shape[1]), g.sum(dims)
        return grad_x, None, None, grad_w, grad_b, None


def batch_norm_rate(x: Tensor, mean: Tensor, var: Tensor, bn: nn.Module) -> Tensor:
    """BatchNorm in the rate pass: normalised by the spike pass's batch ``mean`` and biased
    ``var`` (values), differentiated as if by the averaged input's own statistics (the
    straight-through estimate of docs/methods.md, rate-based backpropagation); running
    statistics are not touched.
    Autograd keeps ``x`` alone, as a plain BatchNorm does.

    Shape:
        ``x``: ``(B, C, *)``; ``mean``, ``var``: ``(C,)`` -> ``(B, C, *)``.

    Example:
        >>> bn = nn.BatchNorm2d(2)
        >>> x = torch.rand(4, 2, 3, 3)
        >>> var, mean = torch.var_mean(x, dim=(0, 2, 3), correction=0)
        >>> torch.allclose(batch_norm_rate(x, mean, var, bn), bn(x), atol=1e-6)
        True
    """
    if mean.shape != (x.shape[1],) or var.shape != (x.shape[1],):
        raise ValueError(f"expected per-channel statistics of shape ({x.shape[1]},), got "
                         f"{tuple(mean.shape)} and {tuple(var.shape)}")
    return _BatchNormRate.apply(x, mean, var, bn.weight, bn.bias, bn.eps)


def pinned(time_mean: Tensor, on_average: Tensor) -> Tensor:
    """A non-linear stateless layer in the rate pass: value ``time_mean`` (recorded in the spike
    pass), gradient that of ``on_average`` (the layer applied to the averaged input)."""
    return time_mean + (on_average - on_average.detach())


def _uses_batch_stats(bn: nn.Module) -> bool:
    return bn.training or bn.running_mean is None


def _own_forward(m: nn.Module, x: Tensor) -> Tensor:
    return type(m).forward(m, x)


@contextmanager
def _forwards_replaced(forwards: dict[nn.Module, Callable[[Tensor], Tensor]]) -> Iterator[None]:
    """Gives each module ``m`` the ``forward`` ``forwards[m]`` while the block runs."""
    clash = [type(m).__name__ for m in forwards if "forward" in m.__dict__]
    if clash:
        raise RuntimeError(f"{', '.join(clash)} already have an instance-level forward (a rate "
                           "pass in progress on this model?)")
    try:
        for m, fn in forwards.items():
            m.forward = fn
        yield
    finally:
        for m in forwards:
            m.__dict__.pop("forward", None)


class _Tape:
    """What the spike pass leaves for the rate pass, in call order: ``(module, record)``."""

    def __init__(self, net: StagedNet) -> None:
        self.T = net.T
        in_stem = set(net.stem.modules())
        self.spiking = [m for m in net.modules() if isinstance(m, Spiking)]
        self.norms = [m for m in net.modules() if isinstance(m, NORMS)]
        self.pinned = [m for m in net.modules() if isinstance(m, PINNED) and m not in in_stem]
        self.records: deque[tuple[nn.Module, tuple[Tensor, ...]]] = deque()

    def _replaced(self, spiking, norm, pin) -> AbstractContextManager[None]:
        return _forwards_replaced({
            **{m: partial(spiking, m) for m in self.spiking},
            **{m: partial(norm, m) for m in self.norms},
            **{m: partial(pin, m) for m in self.pinned},
        })

    def recording(self) -> AbstractContextManager[None]:
        return self._replaced(self._record_spiking, self._record_norm, self._record_pinned)

    def replaying(self) -> AbstractContextManager[None]:
        return self._replaced(self._replay_spiking, self._replay_norm, self._replay_pinned)

    def _pop(self, m: nn.Module) -> tuple[Tensor, ...]:
        if not self.records or self.records[0][0] is not m:
            raise RuntimeError(f"the rate pass reached a {type(m).__name__} the spike pass did "
                               "not run at this point; the network's forward must be stem, "
                               "stem_act, stages, head")
        return self.records.popleft()[1]

    def _record_spiking(self, m: Spiking, x: Tensor) -> Tensor:
        out = m.rate(x)
        self.records.append((m, (out.rate, out.eligibility)))
        return out.spikes.flatten(0, 1)

    def _replay_spiking(self, m: Spiking, c: Tensor) -> Tensor:
        return spiking_rate(*self._pop(m), c)

    def _record_norm(self, m: nn.Module, x: Tensor) -> Tensor:
        if _uses_batch_stats(m):
            var, mean = torch.var_mean(x, dim=[0, *range(2, x.dim())], correction=0)
            self.records.append((m, (mean, var)))
        return _own_forward(m, x)  # updates the running statistics: once per step

    def _replay_norm(self, m: nn.Module, c: Tensor) -> Tensor:
        if _uses_batch_stats(m):
            return batch_norm_rate(c, *self._pop(m), m)
        return _own_forward(m, c)  # running statistics: an affine map, exact on averages

    def _record_pinned(self, m: nn.Module, x: Tensor) -> Tensor:
        y = _own_forward(m, x)
        self.records.append((m, (unflatten_time(y, self.T).mean(0),)))
        return y

    def _replay_pinned(self, m: nn.Module, c: Tensor) -> Tensor:
        return pinned(*self._pop(m), _own_forward(m, c))


BACKPROPS = ("rate", "bptt")


def check_backprop(backprop: str, grad_scale: float | None) -> bool:
    """Whether ``backprop`` (one of :data:`BACKPROPS`) is rate-based; a ValueError for an
    unknown one, or for a ``grad_scale`` that is not positive or not for ``"rate"``."""
    if backprop not in BACKPROPS:
        raise ValueError(f"unknown backprop {backprop!r}; expected one of {BACKPROPS}")
    if grad_scale is not None and (backprop != "rate" or not grad_scale > 0):
        raise ValueError(f"grad_scale applies to backprop='rate' and must be positive, got "
                         f"{grad_scale} with backprop={backprop!r}")
    return backprop == "rate"


def check_spiking_net(net: nn.Module) -> StagedNet:
    """``net`` if rate-based backprop can train it, else a ValueError saying why."""
    if not isinstance(net, StagedNet):
        raise ValueError("rate-based backprop trains a StagedNet (models.create(...)), got "
                         f"{type(net).__name__}")
    if not net.spiking:
        raise ValueError("rate-based backprop trains the SNN form; this network runs as an ANN "
                         "(mode 'ann')")
    per_step = [n for n, m in net.named_modules() if isinstance(m, StepBatchNorm2d)]
    if per_step:
        raise ValueError("rate-based backprop normalises by the statistics of the whole T * B "
                         f"batch; these BatchNorms run per time step: {', '.join(per_step)} "
                         "(build the model with norm='joint')")
    wrapped = {m.neuron for m in net.modules() if isinstance(m, Spiking)}
    bare = [n for n, m in net.named_modules() if isinstance(m, BaseNode) and m not in wrapped]
    if bare:
        raise ValueError(f"neurons outside a Spiking layer cannot run on the flat [T * B, ...] "
                         f"layout of the rate pass: {', '.join(bare)}")
    return net


class RatePass(NamedTuple):
    """One rate-based step: the rate pass's ``logits`` ``[B, classes]`` (value: the spike pass's
    aggregated logits; gradient: rate-based, not yet scaled by ``1 / T``), its ``stages``
    outputs ``r_i`` ``[B, C, H, W]`` (time-averaged stage outputs), and the no-grad spike pass's
    ``spike_logits`` ``[B, classes]``."""

    logits: Tensor
    stages: list[Tensor]
    spike_logits: Tensor


def rate_forward(net: StagedNet, images: Tensor) -> RatePass:
    """The spike pass, then the rate pass, of a spiking ``net`` on ``images [B, C, H, W]``.

    Example:
        >>> from snnrs import models
        >>> net = models.create("convnet", kind="snn", T=4)
        >>> out = rate_forward(net, torch.rand(2, 1, 28, 28))
        >>> [tuple(r.shape) for r in out.stages]
        [(2, 32, 7, 7), (2, 64, 7, 7)]
        >>> torch.allclose(out.logits, out.spike_logits, atol=1e-5)
        True
    """
    check_spiking_net(net)
    if images.dim() not in (4, 5):
        raise ValueError(f"expected images [B, C, H, W] or frames [B, T, C, H, W], got shape "
                         f"{tuple(images.shape)}")
    tape = _Tape(net)
    with torch.no_grad(), tape.recording():
        spike_logits = net(images)
    # The stem is affine in the rate pass (BN on the spike pass's statistics), so on event
    # frames its time average is its value on the frames' time average.
    analog = images.mean(1) if images.dim() == 5 else images
    with tape.replaying():
        h = net.stem_act(net.stem(analog))
        stages = []
        for stage in net.stages:
            h = stage(h)
            stages.append(h)
        logits = net.head(h)
    if tape.records:
        raise RuntimeError(f"the rate pass left {len(tape.records)} spike-pass records unused; "
                           "the network's forward must be stem, stem_act, stages, head")
    return RatePass(logits * net.T if net.readout == "sum" else logits, stages, spike_logits)


def default_grad_scale(net: StagedNet, grad_scale: float | None) -> float:
    """``grad_scale``, or ``1 / T`` of ``net`` when it is ``None``."""
    return 1.0 / net.T if grad_scale is None else float(grad_scale)


class RateBackprop(nn.Module):
    """Trains a spiking :class:`~snnrs.models.StagedNet` by rate-based backpropagation.

    Called with gradients enabled, it runs :func:`rate_forward` and returns the rate pass's
    logits: their value is the spike pass's aggregated logits (by the model's readout, mean or
    sum over time), their gradient is rate-based and scaled by ``grad_scale``. Without
    gradients (evaluation) it is the model's normal forward. In ``eval()`` the BatchNorms use
    their running statistics in both passes. Use it in any training loop in place of the model.

    Args:
        model: a spiking ``StagedNet`` (e.g. ``models.create(name, kind="snn")``); the zoo's
            Joint A-SNN networks in SNN mode too (main head).
        grad_scale: factor on the loss gradient; ``None`` is ``1 / T`` (docs/methods.md).

    Shape:
        ``(B, C, H, W)`` -> logits ``(B, classes)``.

    Example:
        >>> from snnrs import models
        >>> net = models.create("convnet", kind="snn", T=4)
        >>> step = RateBackprop(net)
        >>> x, y = torch.rand(2, 1, 28, 28), torch.tensor([3, 7])
        >>> nn.functional.cross_entropy(step(x), y).backward()
        >>> net.stem[0].weight.grad.shape
        torch.Size([16, 1, 3, 3])
    """

    def __init__(self, model: StagedNet, grad_scale: float | None = None) -> None:
        super().__init__()
        self.model = check_spiking_net(model)
        if grad_scale is not None and not grad_scale > 0:
            raise ValueError(f"grad_scale must be positive (or None for 1 / T), got {grad_scale}")
        self.grad_scale = grad_scale

    def forward(self, images: Tensor) -> Tensor:
        if not torch.is_grad_enabled():
            return self.model(images)
        logits = rate_forward(self.model, images).logits
        return scale_grad(logits, default_grad_scale(self.model, self.grad_scale))

    def extra_repr(self) -> str:
        return f"grad_scale={'1/T' if self.grad_scale is None else self.grad_scale}"
