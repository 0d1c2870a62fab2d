"""Logit and feature distillation losses: KD (KDSNN), feature KD (KDSNN) and NLD (SAMD + NLD).

Every loss detaches its teacher tensors, so a teacher never receives gradients from it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NLD_VARIANTS = ("paper", "reference")


def _check_positive(name: str, value: float) -> float:
    if not value > 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return float(value)


def _check_logits(student: Tensor, teacher: Tensor) -> None:
    if student.dim() != 2 or student.shape != teacher.shape:
        raise ValueError("expected student and teacher logits of one shape [B, classes], got "
                         f"{tuple(student.shape)} and {tuple(teacher.shape)}")


def kd_loss(student: Tensor, teacher: Tensor, temperature: float = 4.0) -> Tensor:
    """``tau^2 * KL(softmax(teacher / tau) || softmax(student / tau))``, summed over classes and
    averaged over the batch; the teacher is detached.

    Shape:
        ``student``, ``teacher``: ``(B, classes)`` -> scalar.
    """
    _check_logits(student, teacher)
    tau = _check_positive("temperature", temperature)
    log_p = F.log_softmax(student / tau, dim=1)
    log_q = F.log_softmax(teacher.detach() / tau, dim=1)
    return tau * tau * F.kl_div(log_p, log_q, reduction="batchmean", log_target=True)


def soft_cross_entropy(student: Tensor, teacher: Tensor, temperature: float = 3.0) -> Tensor:
    """``tau^2 * mean_b(-sum_k softmax(teacher / tau) * log_softmax(student / tau))``.

    It exceeds :func:`kd_loss` by ``tau^2`` times the teacher distribution's entropy, which does
    not depend on the student, so both give the student the same gradient. The teacher is
    detached.

    Shape:
        ``student``, ``teacher``: ``(B, classes)`` -> scalar.
    """
    _check_logits(student, teacher)
    tau = _check_positive("temperature", temperature)
    q = F.softmax(teacher.detach() / tau, dim=1)
    return tau * tau * -(q * F.log_softmax(student / tau, dim=1)).sum(1).mean()


class KD(nn.Module):
    """Response (logit) distillation, :func:`kd_loss` as a module.

    Args:
        temperature: ``tau_kd`` (4 in KDSNN; docs/methods.md).

    Shape:
        ``student_logits``, ``teacher_logits``: ``(B, classes)`` -> scalar.

    Example:
        >>> from snnrs.distill import KD
        >>> z = torch.tensor([[1.0, 2.0, 3.0]])
        >>> float(KD()(z, z))
        0.0
        >>> KD(temperature=2.0)(torch.randn(8, 10), torch.randn(8, 10)).shape
        torch.Size([])
    """

    def __init__(self, temperature: float = 4.0) -> None:
        super().__init__()
        self.temperature = _check_positive("temperature", temperature)

    def forward(self, student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
        return kd_loss(student_logits, teacher_logits, self.temperature)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"


class FeatureKD(nn.Module):
    """Feature distillation: ``weight * MSE(rho(F_S), F_A)``, mean-reduced.

    ``rho`` is a 1x1 conv + BatchNorm regressor when the channel counts differ and the identity
    otherwise; its parameters belong to this module and are trained with the student. A
    time-first student map is averaged over time first. The teacher map is detached.

    Args:
        student_channels: channels ``C_S`` of the student's feature map.
        teacher_channels: channels ``C_A`` of the teacher's feature map.
        weight: ``b`` (1.0 in KDSNN; docs/methods.md).

    Shape:
        ``student``: ``(T, B, C_S, H, W)`` or ``(B, C_S, H, W)``;
        ``teacher``: ``(B, C_A, H, W)`` -> scalar.

    Example:
        >>> from snnrs.distill import FeatureKD
        >>> loss = FeatureKD(16, 32)
        >>> loss(torch.rand(4, 2, 16, 8, 8), torch.rand(2, 32, 8, 8)).shape
        torch.Size([])
        >>> sum(p.numel() for p in loss.parameters())  # 1x1 conv (no bias) + BN affine
        576
    """

    def __init__(self, student_channels: int, teacher_channels: int, weight: float = 1.0) -> None:
        super().__init__()
        if student_channels < 1 or teacher_channels < 1:
            raise ValueError("channel counts must be positive, got "
                             f"{student_channels} and {teacher_channels}")
        self.student_channels, self.teacher_channels = student_channels, teacher_channels
        self.weight = float(weight)
        self.regressor: nn.Module = nn.Identity()
        if student_channels != teacher_channels:
            self.regressor = nn.Sequential(
                nn.Conv2d(student_channels, teacher_channels, 1, bias=False),
                nn.BatchNorm2d(teacher_channels))

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        if student.dim() == 5:
            student = student.mean(0)
        if student.dim() != 4 or student.shape[1] != self.student_channels:
            raise ValueError(f"expected student features [T, B, {self.student_channels}, H, W] "
                             f"or [B, {self.student_channels}, H, W], got {tuple(student.shape)}")
        if teacher.dim() != 4 or teacher.shape[1] != self.teacher_channels:
            raise ValueError(f"expected teacher features [B, {self.teacher_channels}, H, W], got "
                             f"{tuple(teacher.shape)}")
        s_shape = (student.shape[0], *student.shape[2:])
        t_shape = (teacher.shape[0], *teacher.shape[2:])
        if s_shape != t_shape:
            raise ValueError(f"student and teacher feature maps differ in batch or spatial size: "
                             f"{tuple(student.shape)} vs {tuple(teacher.shape)}")
        return self.weight * F.mse_loss(self.regressor(student), teacher.detach())

    def extra_repr(self) -> str:
        return (f"student_channels={self.student_channels}, "
                f"teacher_channels={self.teacher_channels}, weight={self.weight}")


def nld_noise(logits: Tensor, variant: str = "paper",
              generator: torch.Generator | None = None) -> Tensor:
    """The noise NLD injects, drawn fresh: ``mu + s * xi`` with ``xi ~ N(0, I)`` of the logits'
    shape (drawn as ``torch.randn(logits.shape, generator=generator)``), ``mu`` and ``sigma`` the
    per-sample mean and standard deviation (unbiased, ``torch.std``) of ``logits`` over classes,
    ``s = sigma`` in the paper variant and ``s = sigma^2`` in the reference code's.

    Not detached: gradients flow into ``logits`` through ``mu`` and ``sigma``.

    Shape:
        ``logits``: ``(B, classes)``, ``classes >= 2`` -> ``(B, classes)``.
    """
    _check_variant(variant)
    if logits.dim() != 2 or logits.shape[1] < 2:
        raise ValueError(f"expected logits [B, classes] with classes >= 2, got "
                         f"{tuple(logits.shape)}")
    mu = logits.mean(1, keepdim=True)
    sigma = logits.std(1, keepdim=True)
    scale = sigma if variant == "paper" else sigma * sigma
    xi = torch.randn(logits.shape, generator=generator, device=logits.device,
                     dtype=logits.dtype)
    return mu + scale * xi


def _check_variant(variant: str) -> str:
    if variant not in NLD_VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {NLD_VARIANTS}")
    return variant


class NLD(nn.Module):
    """Noise-smoothed logits distillation (Liu et al., AAAI 2026), with fresh noise every call.

    With ``eps = nld_noise(z_S)`` (see :func:`nld_noise`), ``tau`` the temperature and ``c`` the
    noise weight:

    - ``"paper"``: ``KD(z_S + c * eps, z_A)`` at temperature ``tau`` (:func:`kd_loss`);
    - ``"reference"``: ``tau^2 * KL(softmax(z_A / tau) || q)`` with
      ``q = (1 - c) * softmax(z_S / tau) + c * softmax(eps / tau)``.

    Args:
        variant: ``"paper"`` or ``"reference"`` (the authors' code).
        temperature: ``tau`` (2).
        noise: ``c``, in ``(0, 1)`` (0.1).
        generator: draws the noise, for reproducibility; the global generator when ``None``.

    Shape:
        ``student_logits``, ``teacher_logits``: ``(B, classes)`` -> scalar.

    Example:
        >>> from snnrs.distill import NLD
        >>> g = torch.Generator().manual_seed(0)
        >>> loss = NLD(variant="reference", generator=g)
        >>> z_s, z_a = torch.randn(4, 10), torch.randn(4, 10)
        >>> bool(loss(z_s, z_a) > 0), bool(loss(z_s, z_a) != loss(z_s, z_a))  # fresh noise
        (True, True)
    """

    def __init__(self, variant: str = "paper", temperature: float = 2.0, noise: float = 0.1,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.variant = _check_variant(variant)
        self.paper = variant == "paper"  # decided once, not in every forward
        self.temperature = _check_positive("temperature", temperature)
        if not 0.0 < noise < 1.0:
            raise ValueError(f"noise must lie in (0, 1), got {noise}")
        self.noise = float(noise)
        self.generator = generator

    def forward(self, student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
        _check_logits(student_logits, teacher_logits)
        eps = nld_noise(student_logits, self.variant, self.generator)
        tau, c = self.temperature, self.noise
        if self.paper:
            return kd_loss(student_logits + c * eps, teacher_logits, tau)
        # log q as a log-sum-exp of the two weighted log-probabilities: no underflow to log(0).
        log_q = torch.logaddexp(F.log_softmax(student_logits / tau, dim=1) + math.log1p(-c),
                                F.log_softmax(eps / tau, dim=1) + math.log(c))
        log_p = F.log_softmax(teacher_logits.detach() / tau, dim=1)
        return tau * tau * F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)

    def extra_repr(self) -> str:
        return f"variant={self.variant!r}, temperature={self.temperature}, noise={self.noise}"
