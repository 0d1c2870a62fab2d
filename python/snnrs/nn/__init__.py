"""Neuron layers, containers and neuron replacement.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from snnrs.nn import LIF, TimeDistributed, reset
    >>> net = nn.Sequential(TimeDistributed(nn.Linear(16, 8)), LIF(tau=2.0, step_mode="m"))
    >>> spikes = net(torch.rand(4, 2, 16))               # [T, B, 16] -> [T, B, 8]
    >>> _ = reset(net)
"""

from .containers import MultiStepBatchNorm1d, MultiStepBatchNorm2d, TimeDistributed
from .neurons import IF, LIF, PLIF, BaseNode, reset
from .replace import SnnTorchLeaky, Unsupported, replace_neurons
from .spec import NEURONS, NeuronSpec, register_neuron

__all__ = [
    "IF",
    "LIF",
    "NEURONS",
    "PLIF",
    "BaseNode",
    "MultiStepBatchNorm1d",
    "MultiStepBatchNorm2d",
    "NeuronSpec",
    "SnnTorchLeaky",
    "TimeDistributed",
    "Unsupported",
    "register_neuron",
    "replace_neurons",
    "reset",
]
