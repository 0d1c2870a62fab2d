"""Saliency-scaled activation map distillation (SAMD, Liu et al., AAAI 2026) and the teacher's
class activation maps it aligns the student's spike counts with."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SAMD_VARIANTS = ("paper", "reference")
CAM_METHODS = ("cam", "gradcam")


def _check_features(features: Tensor, logits: Tensor) -> None:
    if features.dim() != 4 or logits.dim() != 2 or features.shape[0] != logits.shape[0]:
        raise ValueError("expected features [B, D, H, W] and logits [B, classes] of one batch, "
                         f"got {tuple(features.shape)} and {tuple(logits.shape)}")


def cam(features: Tensor, fc_weight: Tensor, logits: Tensor) -> Tensor:
    """Class activation map of each sample's predicted class:
    ``relu(sum_d W_fc[argmax z, d] * F[d])``, for a global-average-pool + linear head.

    Args:
        features: the feature map ``F`` the head pools.
        fc_weight: the head's linear weight ``W_fc`` (e.g. ``net.head.fc.weight``).
        logits: the network's logits ``z``; only their argmax is used.

    Shape:
        ``features``: ``(B, D, H, W)``; ``fc_weight``: ``(classes, D)``; ``logits``:
        ``(B, classes)`` -> ``(B, H, W)``.

    Example:
        >>> from snnrs.distill import cam
        >>> f = torch.tensor([[[[1.0, 0.0]], [[0.0, 2.0]]]])        # [1, 2, 1, 2]
        >>> w = torch.tensor([[1.0, 1.0], [1.0, -1.0]])
        >>> cam(f, w, torch.tensor([[0.0, 5.0]]))                   # class 1: relu(F0 - F1)
        tensor([[[1., 0.]]])
    """
    _check_features(features, logits)
    if fc_weight.dim() != 2 or fc_weight.shape != (logits.shape[1], features.shape[1]):
        raise ValueError(f"expected fc_weight [{logits.shape[1]}, {features.shape[1]}], got "
                         f"{tuple(fc_weight.shape)}")
    w = fc_weight[logits.argmax(1)]                                 # [B, D]
    return F.relu(torch.einsum("bd,bdhw->bhw", w, features))


def grad_cam(features: Tensor, logits: Tensor) -> Tensor:
    """Grad-CAM of each sample's predicted class: ``relu(sum_d g_d * F[d])`` with ``g_d`` the
    spatial mean of ``d z_top / d F[d]``. The result is detached.

    ``logits`` must have been computed from ``features`` with autograd on, e.g.
    ``f = feats.detach().requires_grad_()`` then ``z = net.head(f)`` under
    ``torch.enable_grad()``. The top logits are summed over the batch before differentiating,
    which is per-sample only if samples do not interact (a teacher in ``eval()`` mode).
    For a GAP + linear head this is :func:`cam` divided by ``H * W``.

    Shape:
        ``features``: ``(B, D, H, W)``; ``logits``: ``(B, classes)`` -> ``(B, H, W)``.
    """
    _check_features(features, logits)
    if not (features.requires_grad and logits.requires_grad):
        raise ValueError("grad_cam needs logits computed from features with autograd enabled")
    top = logits.gather(1, logits.argmax(1, keepdim=True)).sum()
    (grads,) = torch.autograd.grad(top, features, retain_graph=True)
    weights = grads.mean((2, 3), keepdim=True)                      # [B, D, 1, 1]
    return F.relu((weights * features.detach()).sum(1))


def student_map(student: Tensor) -> Tensor:
    """The student's activation map: its stage output summed over time and channels (spike
    counts); a ``(B, H, W)`` input is taken as the map itself.

    Shape:
        ``(T, B, C, H, W)``, ``(B, C, H, W)`` or ``(B, H, W)`` -> ``(B, H, W)``.
    """
    if student.dim() == 5:
        return student.sum((0, 2))
    if student.dim() == 4:
        return student.sum(1)
    if student.dim() == 3:
        return student
    raise ValueError("expected student features [T, B, C, H, W] or [B, C, H, W], or a map "
                     f"[B, H, W], got {tuple(student.shape)}")


def normalize_map(m: Tensor, variant: str = "paper", eps: float = 1e-3) -> Tensor:
    """Min-max normalisation ``(M - min) / (max(M - min) + eps)``, per sample in the paper
    variant and over the whole batch tensor in the reference code's.

    Shape:
        ``(B, H, W)`` -> ``(B, H, W)``.
    """
    _check_variant(variant)
    flat = m.flatten(1)                                             # [B, H * W]
    dims = (1,) if variant == "paper" else (0, 1)
    shifted = flat - flat.amin(dims, keepdim=True)
    return (shifted / (shifted.amax(dims, keepdim=True) + eps)).view_as(m)


def _check_variant(variant: str) -> str:
    if variant not in SAMD_VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {SAMD_VARIANTS}")
    return variant


def samd_loss(student_map: Tensor, teacher_map: Tensor, tau_s: float = 2.0,
              variant: str = "paper", eps: float = 1e-3) -> Tensor:
    """SAMD on two activation maps; see :class:`SAMD`. The teacher map is detached and, when its
    spatial size differs from the student's, resized to it (bilinear, ``align_corners=False``)
    before normalisation.

    Shape:
        ``student_map``: ``(B, H, W)``; ``teacher_map``: ``(B, H', W')`` -> scalar.
    """
    _check_variant(variant)
    if not tau_s > 0:
        raise ValueError(f"tau_s must be positive, got {tau_s}")
    if student_map.dim() != 3 or teacher_map.dim() != 3 or (
            student_map.shape[0] != teacher_map.shape[0]):
        raise ValueError("expected student and teacher maps [B, H, W] of one batch, got "
                         f"{tuple(student_map.shape)} and {tuple(teacher_map.shape)}")
    teacher_map = teacher_map.detach().to(student_map.dtype)
    if teacher_map.shape != student_map.shape:
        teacher_map = F.interpolate(teacher_map[:, None], size=student_map.shape[1:],
                                    mode="bilinear", align_corners=False)[:, 0]
    log_p_s = F.log_softmax(normalize_map(student_map, variant, eps).flatten(1) / tau_s, dim=1)
    log_p_a = F.log_softmax(normalize_map(teacher_map, variant, eps).flatten(1) / tau_s, dim=1)
    kl = F.kl_div(log_p_s, log_p_a, reduction="batchmean", log_target=True)
    return tau_s * tau_s * kl if variant == "paper" else kl


class SAMD(nn.Module):
    """Saliency-scaled activation map distillation.

    The teacher map ``M_A`` is the class activation map of the teacher's predicted class
    (:func:`cam`, or :func:`grad_cam` with ``cam="gradcam"``); the student map ``M_S`` is the
    student's stage output summed over time and channels (:func:`student_map`). Both are
    min-max normalised (:func:`normalize_map`), flattened and turned into distributions
    ``P = softmax(M / tau_s)``; the loss is ``tau_s^2 * KL(P_A || P_S)``, averaged over the batch
    (the reference variant drops ``tau_s^2``). A teacher map of another spatial size is resized
    to the student's with bilinear interpolation. The teacher side is detached.

    Args:
        tau_s: the softmax temperature (2).
        variant: ``"paper"`` (per-sample normalisation, ``tau_s^2`` factor) or ``"reference"``
            (the authors' code: batch-wide normalisation, no factor).
        cam: how :meth:`forward` turns teacher features into a map: ``"cam"`` or ``"gradcam"``.
        eps: added to the normalisation's denominator (``1e-3``, as in the reference code).

    Shape:
        ``student``: ``(T, B, C, H, W)``, ``(B, C, H, W)`` or a map ``(B, H, W)``;
        ``teacher``: features ``(B, D, H', W')`` (then ``teacher_logits`` ``(B, classes)`` are
        needed, and ``fc_weight`` ``(classes, D)`` for ``"cam"``) or a map ``(B, H', W')``
        -> scalar.

    Example:
        >>> from snnrs.distill import SAMD
        >>> spikes = (torch.rand(4, 2, 8, 6, 6) > 0.5).float()      # [T, B, C, H, W]
        >>> feats, fc = torch.rand(2, 16, 3, 3), nn.Linear(16, 10)  # teacher
        >>> logits = fc(feats.mean((2, 3)))
        >>> SAMD()(spikes, feats, logits, fc.weight).shape
        torch.Size([])
        >>> m = torch.rand(2, 6, 6)
        >>> float(SAMD(variant="reference")(m, m))
        0.0
    """

    def __init__(self, tau_s: float = 2.0, variant: str = "paper", cam: str = "cam",
                 eps: float = 1e-3) -> None:
        super().__init__()
        if not tau_s > 0:
            raise ValueError(f"tau_s must be positive, got {tau_s}")
        if cam not in CAM_METHODS:
            raise ValueError(f"unknown cam {cam!r}; expected one of {CAM_METHODS}")
        self.tau_s, self.variant = float(tau_s), _check_variant(variant)
        self.cam, self.eps = cam, float(eps)
        self.gradcam = cam == "gradcam"  # decided once, not in every forward

    def teacher_map(self, features: Tensor, logits: Tensor,
                    fc_weight: Tensor | None = None) -> Tensor:
        """The teacher map ``(B, H, W)`` by this module's ``cam`` method, detached."""
        if self.gradcam:
            return grad_cam(features, logits)
        if fc_weight is None:
            raise ValueError('cam="cam" needs the teacher head\'s fc_weight')
        return cam(features.detach(), fc_weight.detach(), logits.detach())

    def forward(self, student: Tensor, teacher: Tensor, teacher_logits: Tensor | None = None,
                fc_weight: Tensor | None = None) -> Tensor:
        if teacher.dim() == 4:
            if teacher_logits is None:
                raise ValueError("teacher features [B, D, H, W] need teacher_logits")
            teacher = self.teacher_map(teacher, teacher_logits, fc_weight)
        elif teacher.dim() != 3:
            raise ValueError("expected teacher features [B, D, H, W] or a map [B, H, W], got "
                             f"{tuple(teacher.shape)}")
        elif teacher_logits is not None or fc_weight is not None:
            raise ValueError("teacher_logits and fc_weight are for teacher features, not maps")
        return samd_loss(student_map(student), teacher, self.tau_s, self.variant, self.eps)

    def extra_repr(self) -> str:
        return f"tau_s={self.tau_s}, variant={self.variant!r}, cam={self.cam!r}"
