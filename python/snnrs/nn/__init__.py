"""Neuron layers, containers and neuron replacement.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from snnrs.nn import LIF, TimeDistributed, reset
    >>> net = nn.Sequential(TimeDistributed(nn.Linear(16, 8)), LIF(tau=2.0, step_mode="m"))
    >>> spikes = net(torch.rand(4, 2, 16))               # [T, B, 16] -> [T, B, 8]
    >>> _ = reset(net)
"""

from .alif import ALIF  # the families beyond IF / LIF / PLIF: one file each
from .containers import MultiStepBatchNorm1d, MultiStepBatchNorm2d, TimeDistributed
from .cuba import CubaLIF
from .family import BaseNode, kernel_for, register_kernel, unregister_kernel
from .li import LI
from .neurons import IF, LIF, PLIF, LIFFamily, reset
from .pool import AvgPool2d
from .replace import SnnTorchLeaky, Unsupported, replace_neurons
from .spec import NEURONS, NeuronSpec, register_family, register_neuron

__all__ = [
    "ALIF",
    "IF",
    "LI",
    "LIF",
    "NEURONS",
    "PLIF",
    "AvgPool2d",
    "BaseNode",
    "CubaLIF",
    "LIFFamily",
    "MultiStepBatchNorm1d",
    "MultiStepBatchNorm2d",
    "NeuronSpec",
    "SnnTorchLeaky",
    "TimeDistributed",
    "Unsupported",
    "kernel_for",
    "register_family",
    "register_kernel",
    "register_neuron",
    "replace_neurons",
    "reset",
    "unregister_kernel",
]
