"""Batch transforms on the training device: uint8 to float, augmentation, normalisation.

They act on whole batches ``[B, C, H, W]`` on whatever device the batch is on (one random draw
per image, from an optional ``torch.Generator`` on that device), so augmentation never sends
data back to the CPU.

Example:
    >>> from snnrs import data
    >>> x = data.to_float(torch.full((2, 3, 8, 8), 255, dtype=torch.uint8))
    >>> aug = data.Augment(crop_padding=4, flip=True)
    >>> aug(x).shape, bool(aug.eval()(x).equal(x))
    (torch.Size([2, 3, 8, 8]), True)
    >>> data.Normalize((0.5,) * 3, (0.25,) * 3)(x)[0, :, 0, 0]
    tensor([2., 2., 2.])
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._checks import check_int


def to_float(images: Tensor, device: torch.device | str | None = None) -> Tensor:
    """A batch as float32 on ``device`` (default: where it is): uint8 images ``[B, C, H, W]``
    scaled to ``[0, 1]``; event frames ``[B, T, C, H, W]`` as counts, unscaled.

    The stored tensor is moved first, a quarter (or half) of the bytes of its float32 form.
    """
    if images.dim() == 5 and images.dtype in (torch.uint8, torch.float16):
        return images.to(device).float()
    if images.dtype != torch.uint8:
        raise TypeError(f"to_float expects uint8 images, got {images.dtype}")
    return images.to(device).float().div_(255)


def _check_batch(x: Tensor) -> None:
    if x.dim() not in (4, 5):
        raise ValueError(f"expected images [B, C, H, W] or frames [B, T, C, H, W], got shape "
                         f"{tuple(x.shape)}")


def random_crop(x: Tensor, padding: int, generator: torch.Generator | None = None) -> Tensor:
    """Each image shifted by its own random ``(dy, dx)`` in ``[-padding, padding]``, zero fill.

    Equivalent to zero-padding by ``padding`` and cropping ``H x W`` at a random offset.
    Shape: ``[B, C, H, W]`` in and out.
    """
    b, _, h, w = x.shape
    offsets = torch.randint(0, 2 * padding + 1, (2, b, 1), generator=generator, device=x.device)
    rows = offsets[0] + torch.arange(h, device=x.device)  # [B, H] rows of the padded image
    cols = offsets[1] + torch.arange(w, device=x.device)  # [B, W]
    padded = F.pad(x, (padding,) * 4).permute(0, 2, 3, 1)  # [B, H + 2p, W + 2p, C]
    batch = torch.arange(b, device=x.device)[:, None, None]
    return padded[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def random_flip(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Each image mirrored left-right with probability 1/2. Shape: ``[B, C, H, W]``."""
    flip = torch.rand(x.shape[0], generator=generator, device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def cutout(x: Tensor, size: int, generator: torch.Generator | None = None) -> Tensor:
    """Zeroes a ``size x size`` square (all channels) per image, centred on a random pixel
    and clipped at the borders. Shape: ``[B, C, H, W]``.

    The square covers rows ``cy - size // 2`` to ``cy - size // 2 + size - 1`` (and columns
    likewise) for a centre ``(cy, cx)`` drawn uniformly over the image.
    """
    b, _, h, w = x.shape
    cy = torch.randint(0, h, (b, 1), generator=generator, device=x.device) - size // 2
    cx = torch.randint(0, w, (b, 1), generator=generator, device=x.device) - size // 2
    ys, xs = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    in_rows = (ys >= cy) & (ys < cy + size)  # [B, H]
    in_cols = (xs >= cx) & (xs < cx + size)  # [B, W]
    return x.masked_fill((in_rows[:, :, None] & in_cols[:, None, :])[:, None], 0)


def random_roll(x: Tensor, shift: int, generator: torch.Generator | None = None) -> Tensor:
    """Each image rolled (circularly) by its own random ``(dy, dx)`` in ``[-shift, shift]``,
    as event-camera training code augments frames. Shape: ``[B, C, H, W]``."""
    b, _, h, w = x.shape
    offsets = torch.randint(-shift, shift + 1, (2, b, 1), generator=generator, device=x.device)
    rows = (torch.arange(h, device=x.device) - offsets[0]) % h  # [B, H]: source row of each
    cols = (torch.arange(w, device=x.device) - offsets[1]) % w  # [B, W]
    batch = torch.arange(b, device=x.device)[:, None, None]
    return x.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


class Augment(nn.Module):
    """Random crop with zero padding, horizontal flip, roll and cutout, in that order, per image
    (or per sample of event frames: every frame of a sample moves alike).

    Args:
        crop_padding: largest shift in pixels of the random crop (0: no crop).
        flip: mirror left-right with probability 1/2.
        cutout: side of the zeroed square (0: none).
        roll: largest circular shift in pixels, each axis (0: none).

    Shape: ``[B, C, H, W]`` or ``[B, T, C, H, W]`` in and out, same device and dtype. Identity
    in ``eval()`` mode.
    """

    def __init__(self, crop_padding: int = 4, flip: bool = True, cutout: int = 0,
                 roll: int = 0) -> None:
        super().__init__()
        self.crop_padding = check_int("crop_padding", crop_padding, 0)
        self.flip = bool(flip)
        self.cutout = check_int("cutout", cutout, 0)
        self.roll = check_int("roll", roll, 0)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_batch(x)
        if not self.training:
            return x
        frames = x.shape if x.dim() == 5 else None
        if frames is not None:  # [B, T, C, H, W] -> [B, T * C, H, W]: one draw per sample
            x = x.flatten(1, 2)
        if self.crop_padding:
            x = random_crop(x, self.crop_padding, generator)
        if self.flip:
            x = random_flip(x, generator)
        if self.roll:
            x = random_roll(x, self.roll, generator)
        if self.cutout:
            x = cutout(x, self.cutout, generator)
        return x if frames is None else x.reshape(frames)

    def extra_repr(self) -> str:
        roll = f", roll={self.roll}" if self.roll else ""
        return (f"crop_padding={self.crop_padding}, flip={self.flip}, cutout={self.cutout}"
                f"{roll}")


def check_mean_std(mean: Sequence[float], std: Sequence[float],
                   names: tuple[str, str] = ("mean", "std"),
                   ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel normalisation constants as tuples of floats, if they are one finite number
    per channel each and every ``std`` is positive; else a ValueError naming them by ``names``.

    Example:
        >>> check_mean_std([0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.2010])[1]
        (0.2023, 0.1994, 0.201)
        >>> check_mean_std([0.5], [0.0], ("normalize_mean", "normalize_std"))
        Traceback (most recent call last):
        ...
        ValueError: normalize_std must be positive, got (0.0,)
    """
    m, s = names
    values = (*mean, *std)
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
        raise ValueError(f"{m} and {s} must be numbers, got {list(mean)} and {list(std)}")
    mean, std = tuple(map(float, mean)), tuple(map(float, std))
    if len(mean) != len(std) or not mean:
        raise ValueError(f"{m} and {s} need one value per channel, got {len(mean)} and "
                         f"{len(std)}")
    if not all(map(math.isfinite, mean + std)):
        raise ValueError(f"{m} and {s} must be finite, got {mean} and {std}")
    if any(v <= 0 for v in std):
        raise ValueError(f"{s} must be positive, got {std}")
    return mean, std


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel; ``mean`` and ``std`` are buffers (saved, moved),
    checked by :func:`check_mean_std`.

    Shape: ``[..., C, H, W]`` in and out.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        mean, std = check_mean_std(mean, std)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32)[:, None, None])
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32)[:, None, None])

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 3 or x.shape[-3] != self.mean.shape[0]:
            raise ValueError(f"expected [..., {self.mean.shape[0]}, H, W], got {tuple(x.shape)}")
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def extra_repr(self) -> str:
        return f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}"
