"""The built-in distillation methods: ``none``, ``kd``, ``feature-kd``, ``samd-nld`` and
``joint-asnn`` (``hybrid`` lives in :mod:`snnrs.distill.hybrid`). Each registers itself with
:func:`~snnrs.distill.base.register_method`; teachers run in ``eval()`` under ``no_grad``.

Example:
    >>> from snnrs import models
    >>> from snnrs.distill import create_method
    >>> teacher = models.create("convnet", kind="ann").eval()
    >>> student = models.create("convnet", kind="snn", T=2)
    >>> method = create_method("kd", student, teacher)
    >>> out = method(torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3]))
    >>> sorted(out)
    ['ce', 'kd', 'loss']
    >>> out["loss"].backward()
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models.joint import JointNet, set_mode
from ..models.network import StagedNet
from .base import Method, register_method, stage_channels
from .joint import JointASNNLoss
from .losses import KD, NLD, FeatureKD
from .rate import (
    check_backprop,
    check_spiking_net,
    default_grad_scale,
    rate_forward,
    scale_grad,
)
from .samd import SAMD


def _ce(logits: Tensor, labels: Tensor) -> Tensor:
    return F.cross_entropy(logits, labels)


@register_method("none")
class Plain(Method):
    """``none``: the plain SNN baseline, cross-entropy only, trained by BPTT or, with
    ``backprop="rate"``, by rate-based backprop (Yu et al., NeurIPS 2024; its gradient scaled
    by ``grad_scale``, default ``1 / T``, as the reference code does)."""

    needs_teacher = False

    def __init__(self, student: nn.Module, teacher: None = None, backprop: str = "bptt",
                 grad_scale: float | None = None) -> None:
        super().__init__(student, teacher)
        self.rate_backprop, self.grad_scale = check_backprop(backprop, grad_scale), grad_scale
        if self.rate_backprop:
            check_spiking_net(student)

    def forward(self, images: Tensor, labels: Tensor) -> dict[str, Tensor]:
        if self.rate_backprop and torch.is_grad_enabled():
            ce = _ce(rate_forward(self.student, images).logits, labels)
            scale = default_grad_scale(self.student, self.grad_scale)
            return {"loss": scale_grad(ce, scale), "ce": ce}
        ce = _ce(self.student(images), labels)
        return {"loss": ce, "ce": ce}


@register_method("kd")
class ResponseKD(Method):
    """``kd`` (KDSNN): ``(1 - alpha) * CE(z_S, y) + alpha * KD(z_S, z_A)``; ``tau_kd = 4``,
    ``alpha = 0.9``."""

    def __init__(self, student: nn.Module, teacher: nn.Module, alpha: float = 0.9,
                 temperature: float = 4.0) -> None:
        super().__init__(student, teacher)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
        self.alpha, self.kd = float(alpha), KD(temperature)

    def forward(self, images: Tensor, labels: Tensor) -> dict[str, Tensor]:
        z_s = self.student(images)
        with torch.no_grad():
            z_a = self.teacher(images)
        ce, kd = _ce(z_s, labels), self.kd(z_s, z_a)
        return {"loss": (1 - self.alpha) * ce + self.alpha * kd, "ce": ce, "kd": kd}


@register_method("feature-kd")
class FeatureDistillation(Method):
    """``feature-kd`` (KDSNN): ``CE(z_S, y) + weight * MSE(rho(F_S), F_A)`` at one stage (the
    last by default; ``F_S`` averaged over T), ``rho`` a 1x1 conv + BN regressor trained with
    the student when the widths differ."""

    def __init__(self, student: StagedNet, teacher: StagedNet, weight: float = 1.0,
                 stage: int = -1, alpha: float = 0.0, temperature: float = 4.0) -> None:
        super().__init__(student, teacher)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
        self.stage = stage % len(student.stages)
        self.feature_kd = FeatureKD(stage_channels(student, self.stage),
                                    stage_channels(teacher, self.stage), weight)
        self.alpha, self.kd = float(alpha), KD(temperature)

    def forward(self, images: Tensor, labels: Tensor) -> dict[str, Tensor]:
        out = self.student.forward_features(images)
        with torch.no_grad():
            t = self.teacher.forward_features(images)
        ce = _ce(out.logits, labels)
        feat = self.feature_kd(out.stages[self.stage], t.stages[self.stage])
        if not self.alpha:
            return {"loss": ce + feat, "ce": ce, "feature": feat}
        kd = self.kd(out.logits, t.logits)
        loss = (1 - self.alpha) * ce + self.alpha * kd + feat
        return {"loss": loss, "ce": ce, "kd": kd, "feature": feat}


@register_method("samd-nld")
class SAMDNLD(Method):
    """``samd-nld`` (Liu et al., AAAI 2026): ``CE + w_samd * SAMD + w_nld * NLD`` on the last
    stage and the logits; ``variant`` picks the paper's or the reference code's form of both."""

    def __init__(self, student: StagedNet, teacher: StagedNet, variant: str = "paper",
                 cam: str = "cam", w_samd: float = 1.0, w_nld: float = 1.0,
                 tau_s: float = 2.0, temperature: float = 2.0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(student, teacher)
        self.samd = SAMD(tau_s, variant, cam)
        self.nld = NLD(variant, temperature, generator=generator)
        self.w_samd, self.w_nld = float(w_samd), float(w_nld)

    def _teacher_map_inputs(self, images: Tensor) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            feats = self.teacher.forward_features(images).stages[-1]
        if not self.samd.gradcam:
            with torch.no_grad():
                return feats, self.teacher.head(feats)
        f = feats.detach().requires_grad_()
        with torch.enable_grad():  # Grad-CAM differentiates the teacher's head
            return f, self.teacher.head(f)

    def forward(self, images: Tensor, labels: Tensor) -> dict[str, Tensor]:
        out = self.student.forward_features(images)
        f_a, z_a = self._teacher_map_inputs(images)
        samd = self.samd(out.stages[-1], f_a, z_a, self.teacher.head.fc.weight)
        ce, nld = _ce(out.logits, labels), self.nld(out.logits, z_a.detach())
        loss = ce + self.w_samd * samd + self.w_nld * nld
        return {"loss": loss, "ce": ce, "samd": samd, "nld": nld}


@register_method("joint-asnn")
class JointASNN(Method):
    """``joint-asnn`` (Guo et al., 2023): one :class:`~snnrs.models.JointNet` trained in both
    modes; the ANN pass, then the SNN pass, then :class:`JointASNNLoss`. The network is left in
    SNN mode, the mode it is evaluated in. It is its own teacher: pass no other."""

    needs_teacher = False

    def __init__(self, student: JointNet, teacher: None = None, alpha: float = 0.1,
                 beta: float = 1e-6, temperature: float = 3.0) -> None:
        if not isinstance(student, JointNet):
            raise ValueError("joint-asnn trains a JointNet, e.g. models.create('joint_resnet18')")
        if teacher is not None:
            raise ValueError("joint-asnn trains one network in both modes; it takes no teacher")
        super().__init__(student)
        self.loss = JointASNNLoss(alpha, beta, temperature)

    def forward(self, images: Tensor, labels: Tensor) -> dict[str, Tensor]:
        try:
            ann = set_mode(self.student, "ann").forward_branches(images)
        finally:
            set_mode(self.student, "snn")
        snn = self.student.forward_branches(images)
        return self.loss.components(ann, snn, labels)
