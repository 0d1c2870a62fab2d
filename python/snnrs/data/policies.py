"""Augmentation policies drawn per image: torchvision's AutoAugment, Cutout and RandomErasing.

torchvision's transforms draw one set of random parameters per call, so a batch passed whole
would share them; these modules call them image by image (torch's global generator, re-seeded
by the trainer at every epoch, so a resumed run draws the same). :class:`AutoAugment` runs in
the trainer before normalisation, on the images' exact ``uint8`` values. :class:`Erase` runs
after normalisation by default, so that an erased pixel is 0 in normalised units (the
dataset's mean colour), as the SAMD + NLD code's transform order makes it; or before it
(:class:`TrainTransform`'s ``erase_before_normalize``), so that an erased pixel is black, as
the Cutout of the Joint A-SNN and rate-based backprop codes makes it.

Example:
    >>> x = torch.randint(0, 256, (4, 3, 8, 8)).float() / 255
    >>> AutoAugment("cifar10")(x).shape
    torch.Size([4, 3, 8, 8])
    >>> erased = Erase(cutout=4)(torch.ones(4, 3, 8, 8))
    >>> zeros = (erased == 0).flatten(1).sum(1)  # a 4 x 4 square on 3 channels, or less
    >>> bool((zeros <= 48).all() and (zeros > 0).all())
    True
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._checks import check_int
from .transforms import cutout

#: torchvision's AutoAugment policies by name.
POLICIES = ("cifar10", "imagenet", "svhn")


def _check_images(x: Tensor, what: str) -> None:
    if x.dim() != 4:
        raise ValueError(f"{what} applies to images [B, C, H, W], got shape {tuple(x.shape)} "
                         "(event frames take flips and rolls only)")


class AutoAugment(nn.Module):
    """torchvision's AutoAugment ``policy`` (``"cifar10"``, ``"imagenet"`` or ``"svhn"``),
    one sub-policy drawn per image. Identity in ``eval()`` mode.

    ``fill`` is the ``uint8`` grey level (0 to 255) of the pixels that a rotation, shear or
    translation uncovers: torchvision's default 0 (black), or 128 (mid-grey) as the PIL
    ``CIFAR10Policy`` of the Joint A-SNN and rate-based backprop codes fills them.

    Each image draws its sub-policy, whether each of its two operations applies (with the
    policy's probability) and the sign of a signed magnitude, as torchvision's AutoAugment does
    per call; the images that drew the same operation, magnitude and sign then go through
    torchvision's operation together, one call per group (at most about a hundred per batch,
    whatever its size) instead of one per image.

    Shape: ``[B, C, H, W]`` floats in ``[0, 1]`` that are multiples of 1/255 (images read as
    ``uint8``) in and out; the policy sees the ``uint8`` values, as on a PIL image.
    """

    def __init__(self, policy: str = "cifar10", fill: int = 0) -> None:
        super().__init__()
        if policy not in POLICIES:
            raise ValueError(f"unknown autoaugment policy {policy!r}; expected one of: "
                             f"{', '.join(POLICIES)}")
        self.fill = check_int("autoaugment fill", fill, 0, 255)
        from torchvision.transforms import v2  # only when asked for: a slow import

        self.policy = policy
        self.transform = v2.AutoAugment(v2.AutoAugmentPolicy(policy), fill=self.fill)

    def forward(self, x: Tensor) -> Tensor:
        _check_images(x, "autoaugment")
        if not self.training:
            return x
        images = x.mul(255).round_().clamp_(0, 255).to(torch.uint8)
        return self.augment(images).to(x.dtype).div_(255)

    def augment(self, images: Tensor) -> Tensor:
        """The policy on ``uint8`` images ``[B, C, H, W]``, drawn per image."""
        aa = self.transform
        b, (h, w) = images.shape[0], images.shape[-2:]
        choice = torch.randint(len(aa._policies), (b,))
        out = images.clone()
        for k in choice.unique().tolist():
            members = (choice == k).nonzero().flatten()
            group = out[members]
            for transform_id, probability, magnitude_idx in aa._policies[k]:
                applies = torch.rand(len(members)) <= probability
                magnitudes_fn, signed = aa._AUGMENTATION_SPACE[transform_id]
                magnitudes = magnitudes_fn(10, h, w)
                magnitude = 0.0 if magnitudes is None else float(magnitudes[magnitude_idx])
                negative = torch.rand(len(members)) <= 0.5
                if not signed or magnitudes is None:
                    negative[:] = False
                for sign in (False, True):
                    picked = applies & (negative == sign)
                    if picked.any():
                        group[picked] = aa._apply_image_or_video_transform(
                            group[picked], transform_id, -magnitude if sign else magnitude,
                            interpolation=aa.interpolation, fill=aa._fill)
            out[members] = group
        return out

    def extra_repr(self) -> str:
        return f"policy={self.policy!r}, fill={self.fill}"


class Erase(nn.Module):
    """Cutout (a ``cutout x cutout`` square per image, all channels, centred on a random
    pixel and clipped at the borders) and torchvision's RandomErasing (with probability
    ``random_erasing`` a rectangle of ``0.02`` to ``max_area`` of the image, aspect ratio
    0.3 to 3.3, set to 0), each image drawn on its own. Identity in ``eval()`` mode.

    Shape: ``[B, C, H, W]`` in and out.
    """

    def __init__(self, cutout: int = 0, random_erasing: float = 0.0,
                 max_area: float = 0.33) -> None:
        super().__init__()
        self.cutout = check_int("cutout", cutout, 0)
        if not 0.0 <= random_erasing <= 1.0:
            raise ValueError(f"random_erasing is a probability in [0, 1], got {random_erasing}")
        if not 0.02 < max_area <= 1.0:
            raise ValueError(f"max_area must lie in (0.02, 1], got {max_area}")
        self.random_erasing, self.max_area = float(random_erasing), float(max_area)
        self.eraser = None
        if self.random_erasing:
            from torchvision.transforms import v2

            self.eraser = v2.RandomErasing(self.random_erasing, scale=(0.02, self.max_area),
                                           ratio=(0.3, 3.3), value=0)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_images(x, "cutout and random erasing")
        if not self.training:
            return x
        if self.cutout:
            x = cutout(x, self.cutout, generator)
        if self.eraser is not None:
            x = torch.stack([self.eraser(image) for image in x])
        return x

    def extra_repr(self) -> str:
        return (f"cutout={self.cutout}, random_erasing={self.random_erasing}, "
                f"max_area={self.max_area}")


class TrainTransform(nn.Module):
    """A training batch from ``[0, 1]`` floats to what the network sees: ``augment`` (crops,
    flips, rolls: :class:`~snnrs.data.Augment`), ``policy`` (:class:`AutoAugment`),
    ``normalize``, then ``erase`` (:class:`Erase`); each optional but ``normalize``. With
    ``erase_before_normalize``, ``erase`` runs just before ``normalize`` instead, so an erased
    pixel is 0 in pixel space (black, ``-mean / std`` after normalisation) rather than 0 after
    it (the mean colour). In ``eval()`` mode only ``normalize`` acts.

    Shape: ``[B, C, H, W]`` (or frames ``[B, T, C, H, W]``: no policy, no erasing) in and out.

    Example:
        >>> from snnrs.data import Normalize
        >>> t = TrainTransform(Normalize((0.5,), (0.25,)), erase=Erase(cutout=64),
        ...                    erase_before_normalize=True)
        >>> t(torch.ones(1, 1, 4, 4)).unique().tolist()       # every pixel erased, then black
        [-2.0]
    """

    def __init__(self, normalize: nn.Module, augment: nn.Module | None = None,
                 policy: AutoAugment | None = None, erase: Erase | None = None,
                 erase_before_normalize: bool = False) -> None:
        super().__init__()
        self.augment, self.policy = augment, policy
        self.normalize, self.erase = normalize, erase
        self.erase_before_normalize = bool(erase_before_normalize)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if self.augment is not None:
            x = self.augment(x, generator=generator)
        if self.policy is not None:
            x = self.policy(x)
        if self.erase is not None and self.erase_before_normalize:
            x = self.erase(x, generator)
        x = self.normalize(x)
        if self.erase is not None and not self.erase_before_normalize:
            x = self.erase(x, generator)
        return x

    def extra_repr(self) -> str:
        return f"erase_before_normalize={self.erase_before_normalize}"
