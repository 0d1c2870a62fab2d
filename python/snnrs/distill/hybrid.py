"""Hybrid block-wise replacement (Yang et al., CVPR 2025; docs/methods.md, `hybrid`).

Student SNN and teacher ANN share ``N`` stages. Hybrid ``M_i`` (``i = 1 .. N-1``) runs the
student's stages ``1..i``, averages the output over time into a rate ``r_i``, adapts it with
``phi_i`` (1x1 conv + BN) and finishes with the frozen teacher's stages ``i+1..N`` and head:
``y_Mi = h_A(A_N(... A_{i+1}(phi_i(r_i))))``. The loss is

``CE(y_S, y) + KD(y_S, y_A) + sum_i w_i * [KD(y_Mi, y_A) + c * CE(y_Mi, y)]``

with ``tau_kd = 3``, ``c = 1`` and the weights ``w_i`` from a :class:`HybridScheduler`. The
teacher stays in ``eval()`` with frozen parameters, yet passes gradients from the hybrids down
to the student. Inference uses the student alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models.network import StagedNet
from .base import Method, register_method, stage_channels
from .losses import KD
from .rate import (
    check_backprop,
    check_spiking_net,
    default_grad_scale,
    rate_forward,
    scale_grad,
)
from .schedule import HybridScheduler, ScheduleFn


def hybrid_adapter(student_channels: int, teacher_channels: int) -> nn.Sequential:
    """``phi_i``: a 1x1 conv (no bias) + BatchNorm from the student's stage width to the
    teacher's; the conv is the identity when the widths match.

    Shape:
        ``(B, student_channels, H, W)`` -> ``(B, teacher_channels, H, W)``.

    Example:
        >>> phi = hybrid_adapter(4, 4).eval()
        >>> x = torch.rand(2, 4, 3, 3)
        >>> torch.allclose(phi(x), x / (1 + phi[1].eps) ** 0.5)
        True
    """
    conv = nn.Conv2d(student_channels, teacher_channels, 1, bias=False)
    if student_channels == teacher_channels:
        with torch.no_grad():
            conv.weight.copy_(torch.eye(student_channels).view_as(conv.weight))
    return nn.Sequential(conv, nn.BatchNorm2d(teacher_channels))


@register_method("hybrid")
class HybridBlockwise(Method):
    """``hybrid``: hybrid block-wise replacement, trained by rate-based backprop or by BPTT.

    The adapters ``phi_i`` (:func:`hybrid_adapter`) belong to the method, are trained with the
    student and are made on the student's device and dtype; the teacher's stages run in
    ``eval()`` with frozen parameters but inside the autograd graph.

    Args:
        student: a spiking :class:`~snnrs.models.StagedNet`.
        teacher: an ANN ``StagedNet`` with as many stages, stage by stage of the same spatial
            size (e.g. the ANN twin of the student's topology); frozen.
        schedule: ``"all"``, ``"progressive"`` or a callable; see :class:`HybridScheduler`.
            Until :meth:`start_epoch` is first called every hybrid has its base weight.
        backprop: ``"rate"`` (rate-based backprop, :func:`~snnrs.distill.rate.rate_forward`;
            the loss gradient scaled by ``grad_scale``) or ``"bptt"`` (surrogate-gradient BPTT,
            ``r_i`` the stage output averaged over T), for comparison.
        weights: base weights ``w_i`` (default ``2^-(N - i)``). ramp_epochs: the progressive
            ramp. temperature: ``tau_kd`` (3). ce_weight: ``c`` (1).
        grad_scale: ``"rate"`` only: factor on the loss gradient, ``None`` for ``1 / T``.

    Returns (forward):
        ``{"loss", "ce", "kd", "hybrid_i"...}``: a ``hybrid_i`` part (``KD(y_Mi, y_A) +
        c * CE(y_Mi, y)``, unweighted) for each hybrid active this epoch (weight > 0).

    Example:
        >>> from snnrs import models
        >>> teacher = models.create("resnet20", kind="ann")       # 3 stages: hybrids M_1, M_2
        >>> student = models.create("resnet20", kind="snn", T=2)
        >>> method = HybridBlockwise(student, teacher, schedule="progressive")
        >>> method.start_epoch(0, 4)
        >>> method.weights
        (0.125, 0.0)
        >>> out = method(torch.rand(4, 3, 16, 16), torch.tensor([0, 1, 2, 3]))
        >>> sorted(out)
        ['ce', 'hybrid_1', 'kd', 'loss']
        >>> out["loss"].backward()
    """

    find_unused_parameters = True  # a block's adapter sits out until its turn comes

    def __init__(
        self, student: StagedNet, teacher: StagedNet, schedule: str | ScheduleFn = "all",
        backprop: str = "rate", weights: Sequence[float] | None = None,
        ramp_epochs: int | None = None, temperature: float = 3.0, ce_weight: float = 1.0,
        grad_scale: float | None = None,
    ) -> None:
        super().__init__(student, teacher)
        check_spiking_net(student)
        if not isinstance(teacher, StagedNet) or teacher.spiking:
            raise ValueError("the hybrid method's teacher must be an ANN StagedNet (kind='ann')")
        n = len(student.stages)
        if len(teacher.stages) != n:
            raise ValueError(f"student and teacher must have the same number of stages, got "
                             f"{n} and {len(teacher.stages)}")
        check_backprop(backprop, grad_scale)
        if not ce_weight >= 0:
            raise ValueError(f"ce_weight must be >= 0, got {ce_weight}")
        self.scheduler = HybridScheduler(n - 1, schedule, weights, ramp_epochs)
        self.weights = self.scheduler.base_weights
        self.backprop, self.grad_scale, self.ce_weight = backprop, grad_scale, float(ce_weight)
        self.rate_backprop = backprop == "rate"  # decided once, not in every forward
        self.kd = KD(temperature)
        like = next(student.parameters())
        self.phis = nn.ModuleList(
            hybrid_adapter(stage_channels(student, i), stage_channels(teacher, i))
            for i in range(n - 1)).to(device=like.device, dtype=like.dtype)

    def start_epoch(self, epoch: int, epochs: int) -> None:
        """Sets :attr:`weights` to the schedule's weights of epoch ``epoch`` of ``epochs``."""
        self.weights = self.scheduler(epoch, epochs)

    def hybrid(self, i: int, rate: Tensor) -> Tensor:
        """Logits ``[B, classes]`` of ``M_i`` (1-based) from the student's rate ``r_i``
        ``[B, C, H, W]``: ``phi_i``, then the teacher's stages ``i+1..N`` and head."""
        h = self.phis[i - 1](rate)
        for stage in self.teacher.stages[i:]:
            h = stage(h)
        return self.teacher.head(h)

    def _student(self, images: Tensor) -> tuple[Tensor, list[Tensor], bool]:
        """Logits, stage rates ``r_i`` and whether they came from the rate pass."""
        if self.rate_backprop and torch.is_grad_enabled():
            out = rate_forward(self.student, images)
            return out.logits, out.stages, True
        out = self.student.forward_features(images)
        return out.logits, [s.mean(0) for s in out.stages], False

    def forward(self, images: Tensor, labels: Tensor) -> dict[str, Tensor]:
        with torch.no_grad():
            teacher_out = self.teacher.forward_features(images)
        z_a = teacher_out.logits
        z_s, rates, rate_based = self._student(images)
        ce, kd = F.cross_entropy(z_s, labels), self.kd(z_s, z_a)
        total, parts = ce + kd, {"ce": ce, "kd": kd}
        for i, w in enumerate(self.weights, start=1):
            if w == 0:
                continue
            r, expected = rates[i - 1], teacher_out.stages[i - 1]
            if r.shape[0] != expected.shape[0] or r.shape[2:] != expected.shape[2:]:
                raise ValueError(f"student stage {i} gives {tuple(r.shape)} but the teacher's "
                                 f"stage {i} gives {tuple(expected.shape)}: batch and spatial "
                                 "sizes must match")
            z_m = self.hybrid(i, r)
            part = self.kd(z_m, z_a) + self.ce_weight * F.cross_entropy(z_m, labels)
            parts[f"hybrid_{i}"] = part
            total = total + w * part
        if rate_based:
            total = scale_grad(total, default_grad_scale(self.student, self.grad_scale))
        return {"loss": total, **parts}

    def extra_repr(self) -> str:
        return f"backprop={self.backprop!r}, weights={self.weights}"
