"""The event-camera datasets, registered as ``n-mnist``, ``cifar10-dvs`` and ``dvs128-gesture``.

Each reads the extracted original release from ``--data-dir`` (nothing is downloaded), cuts
every sample into ``T`` frames (``split_by="number"``: equal numbers of events; ``"time"``:
equal time slices) as SpikingJelly does, caches the frames on disk (:mod:`.cache`) and returns
:class:`~snnrs.data.DataSplits` of frames ``[N, T, 2, H, W]``. Training augments them with a
random roll of up to 5 pixels, and CIFAR10-DVS also with a random horizontal flip: a mirrored
digit or a mirrored left-arm gesture is another class (on the real N-MNIST recordings the flip
cost an ANN teacher 9 points, ``benches/RESULTS.md``).

Layouts (``DIR`` is ``--data-dir``):

============== =================================================================================
n-mnist        ``DIR/Train/<0..9>/*.bin`` and ``DIR/Test/<0..9>/*.bin`` (Train.zip and Test.zip
               extracted); 34 x 34, frames as uint8 counts
cifar10-dvs    ``DIR/<class>/*.aedat`` for the ten CIFAR-10 classes (``airplane`` ...
               ``truck``); split 9:1 per class by the seed; 128 x 128 resized to ``size``
               (48 by default, as the CIFAR10-DVS papers do), frames as float16
dvs128-gesture ``DIR/DvsGesture/`` (or ``DIR`` itself) holding ``user*_*.aedat``, their
               ``*_labels.csv`` and ``trials_to_train.txt`` / ``trials_to_test.txt``; each
               recording cut into its labelled gestures; 128 x 128, frames as uint8 counts
============== =================================================================================

Counts above 255 in one pixel of one frame are stored as 255 (uint8 frames). A split without
recordings of some class is refused, naming the classes and the folder (for DVS128 Gesture:
the trial list), rather than trained on the classes present; an error about a recording
(an event off the sensor, say) names the file and the event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm  # text bars everywhere (tqdm.auto wants ipywidgets in Jupyter)

from .._checks import check_int
from ..datasets import register_dataset
from ..sets import DataSplits, ImageSet, hold_out
from ._checks import about_file, check_events, read_text
from .cache import cached, fingerprint
from .frames import SPLITS, SplitBy, resize_frames, to_frames
from .gesture import (
    GESTURE_CLASSES,
    GESTURE_NAMES,
    GestureLabels,
    read_gesture_labels,
    split_gestures,
)
from .readers import read_aedat2, read_aedat3, read_atis_bin

#: What CIFAR10-DVS frames train with: a flip and a roll of up to 5 pixels, as the reference code.
EVENT_AUGMENT = {"crop_padding": 0, "flip": True, "roll": 5}
#: Digits and gestures are not mirror-symmetric (a mirrored "left arm clockwise" is another
#: class), so they train with the roll only.
UNMIRRORED_EVENT_AUGMENT = {**EVENT_AUGMENT, "flip": False}
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")


def _check_settings(T: int, split_by: str) -> int:
    if split_by not in SPLITS:
        raise ValueError(f"split_by must be one of {', '.join(SPLITS)}, got {split_by!r}")
    return check_int("T (frames per sample)", T, 1, 10_000)


def _folder(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is missing: expected {what}")
    return path


def _class_files(root: Path, classes: Sequence[str], pattern: str,
                 what: str) -> list[tuple[Path, int]]:
    """``(file, label)`` for the files matching ``pattern`` in each ``root/<class>`` (label: the
    class's index), sorted; a FileNotFoundError naming ``root`` and every class without files,
    e.g. ``"DIR/Train: no recordings of 2 of the 10 classes of n-mnist Train (3 is missing; 7
    holds no *.bin); ..."``.
    """
    files, absent = [], []
    for label, name in enumerate(classes):
        folder = root / name
        found = sorted(folder.glob(pattern)) if folder.is_dir() else []
        if not found:
            absent.append(f"{name} {_why_empty(folder, pattern)}")
        files += [(f, label) for f in found]
    if absent:
        raise FileNotFoundError(
            f"{root}: no recordings of {len(absent)} of the {len(classes)} classes of {what} "
            f"({'; '.join(absent)}); a network trained without them cannot learn them")
    return files


def _why_empty(folder: Path, pattern: str) -> str:
    if folder.is_dir():
        return f"holds no {pattern}"
    return "is not a folder" if folder.exists() else "is missing"


def _file_frames(path: Path, events: dict[str, np.ndarray], H: int, W: int, T: int,
                 split_by: str, size: int | None = None) -> np.ndarray:
    """The frames of one recording (``[T, 2, H, W]``, resized to ``size``); an error names it."""
    with about_file(path):
        frames = to_frames(events, H, W, T, split_by=split_by)
    return frames if size is None else resize_frames(frames, size)


def _stack(samples: Sequence[np.ndarray], dtype: torch.dtype) -> Tensor:
    """Frames ``[N, T, 2, H, W]`` (uint8 counts saturate at 255)."""
    out = torch.from_numpy(np.stack(samples)) if samples else torch.zeros(0)
    return out.clamp_(max=255).to(dtype) if dtype == torch.uint8 else out.to(dtype)


def _frames_of(files: list[tuple[Path, int]], read: Callable, H: int, W: int, T: int,
               split_by: str, dtype: torch.dtype, what: str,
               size: int | None = None) -> dict[str, Tensor]:
    samples = [_file_frames(path, read(path), H, W, T, split_by, size)
               for path, _ in tqdm(files, f"{what}: integrating events", leave=False,
                                   unit="file", disable=len(files) < 200)]
    labels = torch.tensor([label for _, label in files], dtype=torch.int64)
    return {"frames": _stack(samples, dtype), "labels": labels}


@register_dataset("n-mnist", augment=UNMIRRORED_EVENT_AUGMENT, time_steps=True, shape=(10, 2))
def n_mnist(data_dir: Path, seed: int, T: int = 10, split_by: SplitBy = "number") -> DataSplits:
    """N-MNIST from its ``Train`` and ``Test`` folders of ``.bin`` recordings."""
    T = _check_settings(T, split_by)
    splits = {}
    for split in ("Train", "Test"):
        root = _folder(data_dir / split, f"the {split} folder of N-MNIST with <digit>/*.bin")
        files = _class_files(root, [str(d) for d in range(10)], "*.bin", f"n-mnist {split}")
        key = {"dataset": "n-mnist", "split": split, "T": T, "split_by": split_by,
               "files": fingerprint(root, [f for f, _ in files])}
        t = cached(key, lambda files=files, split=split: _frames_of(
            files, read_atis_bin, 34, 34, T, split_by, torch.uint8, f"n-mnist {split}"))
        splits[split] = ImageSet(t["frames"], t["labels"])
    return DataSplits("n-mnist", splits["Train"], splits["Test"], tuple(map(str, range(10))))


@register_dataset("cifar10-dvs", augment=EVENT_AUGMENT, time_steps=True, shape=(10, 2))
def cifar10_dvs(data_dir: Path, seed: int, T: int = 10, split_by: SplitBy = "number",
                size: int = 48) -> DataSplits:
    """CIFAR10-DVS from its ten class folders of ``.aedat`` recordings, split 9:1 per class
    by ``seed``."""
    T = _check_settings(T, split_by)
    size = check_int("size", size, 1, 128)
    files = _class_files(data_dir, CIFAR10_CLASSES, "*.aedat", "cifar10-dvs")
    key = {"dataset": "cifar10-dvs", "T": T, "split_by": split_by, "size": size,
           "files": fingerprint(data_dir, [f for f, _ in files])}
    t = cached(key, lambda: _frames_of(files, read_aedat2, 128, 128, T, split_by,
                                       torch.float16, "cifar10-dvs",
                                       None if size == 128 else size))
    train, test = hold_out(ImageSet(t["frames"], t["labels"]), 0.1, seed)
    return DataSplits("cifar10-dvs", train, test, CIFAR10_CLASSES)


@register_dataset("dvs128-gesture", augment=UNMIRRORED_EVENT_AUGMENT, time_steps=True,
                  shape=(GESTURE_CLASSES, 2))
def dvs128_gesture(data_dir: Path, seed: int, T: int = 16,
                   split_by: SplitBy = "number") -> DataSplits:
    """DVS128 Gesture from its recordings, cut into the labelled gestures, with the release's
    train and test trial lists."""
    T = _check_settings(T, split_by)
    root = data_dir / "DvsGesture" if (data_dir / "DvsGesture").is_dir() else data_dir
    splits = {}
    for split in ("train", "test"):
        listing = root / f"trials_to_{split}.txt"
        if not listing.is_file():
            raise FileNotFoundError(f"{listing} is missing: expected the DvsGesture folder of "
                                    "the release")
        trials = [root / line.strip() for line in read_text(listing).splitlines()
                  if line.strip()]
        for trial in trials:
            for needed in (trial, _labels_of(trial)):
                if not needed.is_file():
                    raise FileNotFoundError(f"{needed} is missing ({listing} lists {trial.name})")
        labels = {trial: read_gesture_labels(_labels_of(trial)) for trial in trials}
        _check_gesture_classes(listing, labels.values())
        key = {"dataset": "dvs128-gesture", "split": split, "T": T, "split_by": split_by,
               "files": fingerprint(root, trials + [_labels_of(t) for t in trials])}
        t = cached(key, lambda labels=labels: _gestures(labels, T, split_by))
        splits[split] = ImageSet(t["frames"], t["labels"])
    return DataSplits("dvs128-gesture", splits["train"], splits["test"], GESTURE_NAMES)


def _labels_of(trial: Path) -> Path:
    """``userNN_<lighting>_labels.csv`` of ``userNN_<lighting>.aedat``."""
    return trial.with_name(trial.stem + "_labels.csv")


def _check_gesture_classes(listing: Path, labels: Iterable[GestureLabels]) -> None:
    """A ValueError naming ``listing`` and the classes no trial of it labels."""
    present = set().union(*(cut["label"].tolist() for cut in labels))
    absent = [f"{c + 1} ({GESTURE_NAMES[c]})" for c in range(GESTURE_CLASSES) if c not in present]
    if absent:
        raise ValueError(f"{listing}: the trials it lists label no gesture of {len(absent)} of "
                         f"the {GESTURE_CLASSES} classes ({', '.join(absent)}); a network "
                         "trained without them cannot learn them")


def _gestures(labels: dict[Path, GestureLabels], T: int, split_by: str) -> dict[str, Tensor]:
    samples, classes = [], []
    for trial, cut in tqdm(labels.items(), "dvs128-gesture: cutting and integrating",
                           leave=False, unit="recording", disable=len(labels) < 20):
        events = read_aedat3(trial)
        with about_file(trial):
            check_events(events, 128, 128)
        for i, (label, part) in enumerate(split_gestures(events, cut)):
            with about_file(trial, f"gesture {i + 1} of {_labels_of(trial).name}: "):
                samples.append(to_frames(part, 128, 128, T, split_by=split_by))
            classes.append(label)
    return {"frames": _stack(samples, torch.uint8),
            "labels": torch.tensor(classes, dtype=torch.int64)}
