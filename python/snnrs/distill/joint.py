"""The Joint A-SNN loss (Guo et al., Pattern Recognition 2023) over both modes' heads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch.nn.functional as F
from torch import Tensor, nn

from .losses import _check_positive, soft_cross_entropy


class Branches(Protocol):
    """What :meth:`snnrs.models.JointNet.forward_branches` returns: per head, main head first,
    logits ``(B, classes)`` and pooled features ``(B, C_i)``."""

    logits: Sequence[Tensor]
    features: Sequence[Tensor]


def masked_feature_loss(student: Tensor, teacher: Tensor) -> Tensor:
    """``sum((f_S - f_A)^2 * [f_S > 0 or f_A > 0])``, summed (not averaged) over every element;
    the teacher is detached.

    Shape:
        ``student``, ``teacher``: ``(B, C)`` -> scalar.
    """
    if student.shape != teacher.shape:
        raise ValueError(f"student and teacher features differ in shape: {tuple(student.shape)} "
                         f"vs {tuple(teacher.shape)}")
    teacher = teacher.detach()
    mask = (student > 0) | (teacher > 0)
    return ((student - teacher) ** 2 * mask).sum()


class JointASNNLoss(nn.Module):
    """``(1 - alpha) * ce + alpha * (self_kd + ann_snn_kd) + beta * feature``, where

    - ``ce``: cross-entropy (batch mean) summed over the eight heads ``a_0..a_3``, ``s_0..s_3``;
    - ``self_kd``: ``sum_{i=1..3} KD(a_i, a_0)``, the ANN's self-distillation;
    - ``ann_snn_kd``: ``sum_{i=0..3} KD(s_i, a_i)``;
    - ``feature``: :func:`masked_feature_loss` summed over the four feature pairs.

    KD is the soft cross-entropy times ``tau^2`` (:func:`soft_cross_entropy`), as docs/methods.md
    says; it exceeds the KL form by the (detached) target's entropy, a constant with no gradient.
    Every target is detached: ``a_0`` in the self-distillation, the ANN side in the ANN-to-SNN
    KD and in the feature loss. The ANN outputs therefore receive gradients only from their
    cross-entropy and the self-distillation.

    Args:
        alpha: KD weight (0.1).
        beta: feature weight (``1e-6``).
        temperature: ``tau_kd`` (3).

    Shape:
        ``ann``, ``snn``: :class:`snnrs.models.JointOutput` with equally many heads and equal
        shapes; ``labels``: ``(B,)`` class indices -> scalar.

    Example:
        >>> from snnrs.distill import JointASNNLoss
        >>> from snnrs.models.joint import JointOutput
        >>> def out():
        ...     return JointOutput([torch.randn(2, 10) for _ in range(4)],
        ...                        [torch.rand(2, 512) for _ in range(4)])
        >>> loss = JointASNNLoss()
        >>> parts = loss.components(out(), out(), torch.tensor([3, 7]))
        >>> sorted(parts)
        ['ann_snn_kd', 'ce', 'feature', 'loss', 'self_kd']
        >>> parts["loss"].shape
        torch.Size([])
    """

    def __init__(self, alpha: float = 0.1, beta: float = 1e-6, temperature: float = 3.0) -> None:
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
        if beta < 0:
            raise ValueError(f"beta must be non-negative, got {beta}")
        self.alpha, self.beta = float(alpha), float(beta)
        self.temperature = _check_positive("temperature", temperature)

    def components(self, ann: Branches, snn: Branches, labels: Tensor) -> dict[str, Tensor]:
        """The total under ``"loss"`` and its unweighted parts ``"ce"``, ``"self_kd"``,
        ``"ann_snn_kd"`` and ``"feature"``, each a scalar."""
        n = len(ann.logits)
        if n < 1 or not (len(ann.features) == len(snn.logits) == len(snn.features) == n):
            raise ValueError("ann and snn outputs need equally many logits and features, got "
                             f"{len(ann.logits)}, {len(ann.features)}, {len(snn.logits)}, "
                             f"{len(snn.features)}")
        for a, s in zip(ann.logits, snn.logits, strict=True):
            if a.dim() != 2 or a.shape != s.shape:
                raise ValueError(f"ann and snn logits differ or are not [B, classes]: "
                                 f"{tuple(a.shape)} vs {tuple(s.shape)}")
        if labels.shape != ann.logits[0].shape[:1]:
            raise ValueError(f"expected labels [{ann.logits[0].shape[0]}], got "
                             f"{tuple(labels.shape)}")
        tau = self.temperature
        ce = sum(F.cross_entropy(z, labels) for z in [*ann.logits, *snn.logits])
        a0 = ann.logits[0]
        self_kd = sum((soft_cross_entropy(a, a0, tau) for a in ann.logits[1:]), a0.new_zeros(()))
        ann_snn = sum(soft_cross_entropy(s, a, tau)
                      for s, a in zip(snn.logits, ann.logits, strict=True))
        feature = sum(masked_feature_loss(s, a)
                      for s, a in zip(snn.features, ann.features, strict=True))
        loss = (1 - self.alpha) * ce + self.alpha * (self_kd + ann_snn) + self.beta * feature
        return {"loss": loss, "ce": ce, "self_kd": self_kd, "ann_snn_kd": ann_snn,
                "feature": feature}

    def forward(self, ann: Branches, snn: Branches, labels: Tensor) -> Tensor:
        return self.components(ann, snn, labels)["loss"]

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, temperature={self.temperature}"
