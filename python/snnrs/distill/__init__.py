"""Distillation losses for training spiking students with ANN teachers (METHODS.md 1-3).

Example:
    >>> from snnrs import distill
    >>> z_s, z_a = torch.randn(4, 10), torch.randn(4, 10)
    >>> bool(distill.KD(temperature=4.0)(z_s, z_a) >= 0)
    True
"""

from .joint import JointASNNLoss, masked_feature_loss
from .losses import KD, NLD, FeatureKD, kd_loss, nld_noise, soft_cross_entropy
from .methods import (
    METHODS,
    SAMDNLD,
    FeatureDistillation,
    JointASNN,
    Method,
    Plain,
    ResponseKD,
    create_method,
)
from .samd import SAMD, cam, grad_cam, normalize_map, samd_loss, student_map

__all__ = [
    "KD",
    "METHODS",
    "NLD",
    "SAMD",
    "SAMDNLD",
    "FeatureDistillation",
    "FeatureKD",
    "JointASNN",
    "JointASNNLoss",
    "Method",
    "Plain",
    "ResponseKD",
    "cam",
    "create_method",
    "grad_cam",
    "kd_loss",
    "masked_feature_loss",
    "nld_noise",
    "normalize_map",
    "samd_loss",
    "soft_cross_entropy",
    "student_map",
]
