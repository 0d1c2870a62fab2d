"""Distillation for spiking students with ANN teachers: losses and method objects and
rate-based backpropagation (docs/methods.md).

Example:
    >>> from snnrs import distill
    >>> z_s, z_a = torch.randn(4, 10), torch.randn(4, 10)
    >>> bool(distill.KD(temperature=4.0)(z_s, z_a) >= 0)
    True
"""

from . import methods  # noqa: F401  (registers the built-in methods first, hybrid after them)
from .base import (
    METHODS,
    Method,
    check_method_neuron,
    check_method_options,
    create_method,
    register_method,
)
from .hybrid import HybridBlockwise, hybrid_adapter
from .joint import JointASNNLoss, masked_feature_loss
from .losses import KD, NLD, FeatureKD, kd_loss, nld_noise, soft_cross_entropy
from .methods import SAMDNLD, FeatureDistillation, JointASNN, Plain, ResponseKD
from .rate import RateBackprop, RatePass, rate_forward, scale_grad
from .samd import SAMD, cam, grad_cam, normalize_map, samd_loss, student_map
from .schedule import HybridScheduler, default_weights

__all__ = [
    "KD",
    "METHODS",
    "NLD",
    "SAMD",
    "SAMDNLD",
    "FeatureDistillation",
    "FeatureKD",
    "HybridBlockwise",
    "HybridScheduler",
    "JointASNN",
    "JointASNNLoss",
    "Method",
    "Plain",
    "RateBackprop",
    "RatePass",
    "ResponseKD",
    "cam",
    "check_method_neuron",
    "check_method_options",
    "create_method",
    "default_weights",
    "grad_cam",
    "hybrid_adapter",
    "kd_loss",
    "masked_feature_loss",
    "nld_noise",
    "normalize_map",
    "rate_forward",
    "register_method",
    "samd_loss",
    "scale_grad",
    "soft_cross_entropy",
    "student_map",
]
