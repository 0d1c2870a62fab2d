"""Helpers that let stateless layers run on time-first sequences ``[T, B, *]``."""

from __future__ import annotations

from torch import Tensor, nn


def _flatten_time(x_seq: Tensor) -> Tensor:
    if x_seq.dim() < 2:
        raise ValueError(f"expected a sequence [T, B, ...], got shape {tuple(x_seq.shape)}")
    return x_seq.flatten(0, 1)


class TimeDistributed(nn.Sequential):
    """Runs stateless layers (conv, linear, pooling, BN) once over all steps.

    The input ``[T, B, *]`` is flattened to ``[T * B, *]``, passed through the layers, and
    unflattened, so BatchNorm statistics are joint over time and batch.

    Shape:
        ``(T, B, *in)`` -> ``(T, B, *out)``.

    Example:
        >>> block = TimeDistributed(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8))
        >>> block(torch.rand(4, 2, 3, 16, 16)).shape
        torch.Size([4, 2, 8, 16, 16])
    """

    def forward(self, x_seq: Tensor) -> Tensor:
        y = super().forward(_flatten_time(x_seq))
        return y.unflatten(0, x_seq.shape[:2])


class _MultiStepBatchNorm:
    """Mixin: BatchNorm over ``[T * B, C, *]`` for an input ``[T, B, C, *]``."""

    def forward(self, x_seq: Tensor) -> Tensor:
        return super().forward(_flatten_time(x_seq)).unflatten(0, x_seq.shape[:2])


class MultiStepBatchNorm1d(_MultiStepBatchNorm, nn.BatchNorm1d):
    """``nn.BatchNorm1d`` over ``(T, B, C)`` or ``(T, B, C, L)``, statistics joint over T and B.

    Its state dict is that of ``nn.BatchNorm1d``, so ANN weights load into it unchanged.

    Example:
        >>> MultiStepBatchNorm1d(8)(torch.rand(4, 2, 8)).shape
        torch.Size([4, 2, 8])
    """


class MultiStepBatchNorm2d(_MultiStepBatchNorm, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` over ``(T, B, C, H, W)``, statistics joint over T and B.

    Example:
        >>> MultiStepBatchNorm2d(8)(torch.rand(4, 2, 8, 5, 5)).shape
        torch.Size([4, 2, 8, 5, 5])
    """
