"""Datasets as uint8 tensors, DDP-sharded batches, and on-device augmentation and noise.

``load`` returns a :class:`DataSplits`: a train and a test :class:`ImageSet` (images
``[N, C, H, W]`` uint8 on the CPU, labels ``[N]`` int64), the class names and the train
split's per-channel mean and std.
``batches`` yields index-gathered mini-batches of one rank's shard; ``to_float``,
``Augment``, ``Normalize`` and the noise functions then run on the training device.

Example:
    >>> from snnrs import data
    >>> splits = data.load("mnist", seed=0)
    >>> aug, norm = data.default_augment(splits.name), data.Normalize(*data.normalization(splits))
    >>> for images, labels in data.batches(splits.train, 64, shuffle=True, epoch=0):
    ...     x = norm(aug(data.to_float(images)))           # [64, 1, 28, 28] float32
    ...     break
    >>> x.shape, labels.shape, data.num_batches(splits.train, 64)
    (torch.Size([64, 1, 28, 28]), torch.Size([64]), 63)
"""

from . import builtin, events  # noqa: F401  (register the image and event datasets)
from .datasets import DATASETS, Dataset, default_augment, load, normalization, register_dataset
from .loader import batches, num_batches, shard_indices
from .noise import gaussian_noise, salt_and_pepper
from .options import check_dataset_options, dataset_options, loader_kwargs
from .policies import POLICIES, AutoAugment, Erase, TrainTransform
from .sets import (
    DataSplits,
    ImageSet,
    balanced_subset,
    check_every_class,
    hold_out,
    missing_classes,
)
from .transforms import (
    Augment,
    Normalize,
    cutout,
    random_crop,
    random_flip,
    to_float,
)

__all__ = [
    "DATASETS",
    "POLICIES",
    "Augment",
    "AutoAugment",
    "DataSplits",
    "Dataset",
    "Erase",
    "ImageSet",
    "Normalize",
    "TrainTransform",
    "balanced_subset",
    "batches",
    "check_dataset_options",
    "check_every_class",
    "cutout",
    "dataset_options",
    "default_augment",
    "gaussian_noise",
    "hold_out",
    "load",
    "loader_kwargs",
    "missing_classes",
    "normalization",
    "num_batches",
    "random_crop",
    "random_flip",
    "register_dataset",
    "salt_and_pepper",
    "shard_indices",
    "to_float",
]
