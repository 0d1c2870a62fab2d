"""snnrs: Rust-accelerated spiking neurons for PyTorch, and ANN-to-SNN distillation.

Example:
    >>> import torch, snnrs
    >>> node = snnrs.nn.LIF(tau=2.0, step_mode="m")
    >>> spikes = node(torch.randn(4, 8, 16))            # [T, B, features]
"""

from . import distill, models, nn, ops, reference, surrogate
from ._core import __version__

__all__ = ["__version__", "distill", "models", "nn", "ops", "reference", "surrogate"]
