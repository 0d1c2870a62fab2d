"""The registered topologies. Each builder takes a :class:`~snnrs.models.layers.Layers` and the
model's options, and forwards to its family's constructor."""

from __future__ import annotations

from .joint import JOINT_NEURON, JointLayers, JointNet, joint_resnet
from .layers import Layers
from .network import StagedNet
from .registry import register_model
from .resnet import resnet
from .vgg import VGG_BLOCKS, conv_stack


@register_model(options_from=resnet)
def resnet18(layers: Layers, **options) -> StagedNet:
    """CIFAR ResNet-18: 64-channel 3x3 stem, stages of 2, 2, 2, 2 blocks at 64-512 channels."""
    return resnet(layers, [2, 2, 2, 2], [64, 128, 256, 512], 64, **options)


@register_model(options_from=resnet)
def resnet34(layers: Layers, **options) -> StagedNet:
    """CIFAR ResNet-34: stages of 3, 4, 6, 3 blocks at 64-512 channels."""
    return resnet(layers, [3, 4, 6, 3], [64, 128, 256, 512], 64, **options)


@register_model(options_from=resnet)
def resnet19(layers: Layers, **options) -> StagedNet:
    """ResNet-19 of the SNN literature (tdBN, SAMD): 128-channel stem, stages of 3, 3, 2
    blocks at 128, 256, 512 channels."""
    return resnet(layers, [3, 3, 2], [128, 256, 512], 128, **options)


@register_model(options_from=resnet)
def resnet20(layers: Layers, **options) -> StagedNet:
    """He et al.'s CIFAR ResNet-20: stages of 3, 3, 3 blocks at 16, 32, 64 channels."""
    return resnet(layers, [3, 3, 3], [16, 32, 64], 16, **options)


@register_model(options_from=conv_stack)
def vgg11(layers: Layers, **options) -> StagedNet:
    """CIFAR VGG-11 with BatchNorm (configuration A), average pooling by default."""
    return conv_stack(layers, VGG_BLOCKS["vgg11"], **options)


@register_model(options_from=conv_stack)
def vgg16(layers: Layers, **options) -> StagedNet:
    """CIFAR VGG-16 with BatchNorm (configuration D), average pooling by default."""
    return conv_stack(layers, VGG_BLOCKS["vgg16"], **options)


@register_model(options_from=conv_stack)
def convnet(layers: Layers, in_channels: int = 1, **options) -> StagedNet:
    """A small convnet for MNIST-sized input (1 x 28 x 28): a 16-channel stem pooled to 14x14,
    then stages of 32 channels (pooled to 7x7) and 64 channels."""
    return conv_stack(layers, [[16], [32], [64]], in_channels=in_channels, **options)


def _joint_layers(kind: str, neuron, T: int) -> JointLayers:
    return JointLayers(neuron, T, mode=kind)


@register_model(layers=_joint_layers, neuron=JOINT_NEURON, options_from=(joint_resnet, resnet))
def joint_resnet18(layers: JointLayers, **options) -> JointNet:
    """Joint A-SNN multi-branch ResNet-18 (``kind`` is the mode it starts in; readout: sum)."""
    return joint_resnet(layers, [2, 2, 2, 2], **options)


@register_model(layers=_joint_layers, neuron=JOINT_NEURON, options_from=(joint_resnet, resnet))
def joint_resnet34(layers: JointLayers, **options) -> JointNet:
    """Joint A-SNN multi-branch ResNet-34 (``kind`` is the mode it starts in; readout: sum)."""
    return joint_resnet(layers, [3, 4, 6, 3], **options)
