"""Model zoo: ANN teachers and spiking students built from one topology.

Every model is stem + stages + head (global average pool + linear) and comes as an ANN
(``kind="ann"``, ReLU) or an SNN (``kind="snn"``, snnrs neurons over ``T`` steps) with the same
parameter names, so :func:`transfer_weights` initialises a student from its teacher.

Example:
    >>> from snnrs import models
    >>> teacher = models.create("resnet19", kind="ann", num_classes=10)
    >>> student = models.create("resnet19", kind="snn", num_classes=10, T=4, leak=0.5)
    >>> _ = models.transfer_weights(teacher, student)
    >>> student(torch.rand(2, 3, 32, 32)).shape
    torch.Size([2, 10])
"""

from ..nn import NeuronSpec
from . import zoo  # noqa: F401  (registers the built-in models)
from .layers import Layers, Spiking, SpikingLayers, Steps
from .measure import LayerStats, Summary, count_parameters, measure, recording
from .network import Features, Head, StagedNet
from .registry import (
    MODELS,
    check_model_options,
    create,
    list_models,
    model_options,
    register_model,
    unregister_model,
)
from .resnet import BasicBlock, resnet
from .spec import ModelSpec
from .transfer import transfer_weights
from .vgg import conv_stack

__all__ = [
    "MODELS",
    "BasicBlock",
    "Features",
    "Head",
    "LayerStats",
    "Layers",
    "ModelSpec",
    "NeuronSpec",
    "Spiking",
    "SpikingLayers",
    "StagedNet",
    "Steps",
    "Summary",
    "check_model_options",
    "conv_stack",
    "count_parameters",
    "create",
    "list_models",
    "measure",
    "model_options",
    "recording",
    "register_model",
    "resnet",
    "transfer_weights",
    "unregister_model",
]
