"""The registered event datasets from their documented layouts: frames as SpikingJelly's
integration gives them, the on-disk cache, the splits, augmentation of frames, networks that
take a frame per step, and a student trained on them through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from event_fixtures import (
    aedat3_packets,
    atis_records,
    write_aedat3,
    write_cifar10_dvs,
    write_gesture_labels,
)
from snnrs import data, models
from snnrs.cli import main
from snnrs.data.events import read_atis_bin, to_frames


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    """A fresh frame cache per test."""
    monkeypatch.setenv("SNNRS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _digit_events(rng: np.random.Generator, digit: int, n: int = 1000) -> dict[str, np.ndarray]:
    """Events whose share of ON polarity grows with the digit: a class signal that flips and
    rolls keep, so a classifier can learn it."""
    return {"t": np.sort(rng.integers(0, 2**23, n)), "x": rng.integers(0, 34, n),
            "y": rng.integers(0, 34, n), "p": (rng.random(n) < (digit + 0.5) / 10).astype(int)}


def write_n_mnist(root: Path, per_digit: tuple[int, int] = (6, 2), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for split, count in zip(("Train", "Test"), per_digit, strict=True):
        for digit in range(10):
            folder = root / split / str(digit)
            folder.mkdir(parents=True)
            for i in range(count):
                e = _digit_events(rng, digit)
                (folder / f"{i:05d}.bin").write_bytes(atis_records(e["x"], e["y"], e["p"],
                                                                   e["t"]))
    return root


def test_n_mnist_frames_are_the_integration_of_each_file(tmp_path):
    root = write_n_mnist(tmp_path / "nmnist")
    splits = data.load("n-mnist", root, T=4)
    assert splits.steps == 4 and splits.image_size == (34, 34) and splits.in_channels == 2
    assert (len(splits.train), len(splits.test), splits.num_classes) == (60, 20, 10)
    assert splits.train.images.dtype == torch.uint8
    first = root / "Train" / "0" / "00000.bin"
    expected = to_frames(read_atis_bin(first), 34, 34, 4, split_by="number")
    assert torch.equal(splits.train.images[0].float(), torch.from_numpy(expected))
    assert splits.train.labels.tolist() == [d for d in range(10) for _ in range(6)]


def test_frames_are_cached_by_their_settings_and_files(tmp_path, cache, monkeypatch):
    root = write_n_mnist(tmp_path / "nmnist", (2, 1))
    first = data.load("n-mnist", root, T=4)
    assert len(list((cache / "frames").glob("n-mnist-*.pt"))) == 2
    from snnrs.data.events import datasets

    monkeypatch.setattr(datasets, "read_atis_bin", lambda path: pytest.fail("not cached"))
    again = data.load("n-mnist", root, T=4)
    assert torch.equal(first.train.images, again.train.images)
    with pytest.raises(pytest.fail.Exception):  # other settings are other frames
        data.load("n-mnist", root, T=5)
    monkeypatch.undo()
    (root / "Test" / "3" / "00000.bin").write_bytes(b"\x00" * 5)  # a changed file
    assert data.load("n-mnist", root, T=4).test.images[3].sum() <= 1


def test_cifar10_dvs_splits_9_to_1_per_class_and_resizes(tmp_path):
    root = write_cifar10_dvs(tmp_path / "cifar10dvs")
    splits = data.load("cifar10-dvs", root, seed=3, T=5)
    assert (len(splits.train), len(splits.test)) == (90, 10)
    assert splits.train.images.shape[1:] == (5, 2, 48, 48)
    assert splits.train.images.dtype == torch.float16
    assert torch.bincount(splits.test.labels, minlength=10).tolist() == [1] * 10
    other = data.load("cifar10-dvs", root, seed=4, T=5)
    assert not torch.equal(splits.test.images, other.test.images)  # the seed draws the split
    full = data.load("cifar10-dvs", root, seed=3, T=5, size=128)
    counts = full.train.images.float().sum((1, 2, 3, 4))
    assert torch.equal(counts, torch.full_like(counts, 500))  # every event once


def test_dvs128_gesture_cuts_recordings_into_labelled_gestures(tmp_path):
    rng = np.random.default_rng(2)
    root = tmp_path / "DvsGesture"
    root.mkdir()
    trials = {"train": ["user01_led.aedat", "user02_lab.aedat"], "test": ["user03_led.aedat"]}
    for split, names in trials.items():
        (root / f"trials_to_{split}.txt").write_text("\n".join(names) + "\n")
        for name in names:
            t = np.sort(rng.integers(0, 3_000_000, 3000))
            packets = aedat3_packets(rng.integers(0, 128, 3000), rng.integers(0, 128, 3000),
                                     rng.integers(0, 2, 3000), t)
            write_aedat3(root / name, packets)
            write_gesture_labels(root / name.replace(".aedat", "_labels.csv"),
                                 [(c, 100_000 * c, 100_000 * c + 150_000) for c in range(1, 12)])
    splits = data.load("dvs128-gesture", tmp_path, T=3)
    assert (len(splits.train), len(splits.test), splits.num_classes) == (22, 11, 11)
    assert splits.train.labels.tolist() == list(range(11)) * 2
    (tmp_path / "elsewhere").mkdir()  # a folder, but not a DVS128 Gesture release
    with pytest.raises(FileNotFoundError, match=r"trials_to_train\.txt is missing"):
        data.load("dvs128-gesture", tmp_path / "elsewhere", T=3)
    with pytest.raises(FileNotFoundError, match=r"'.*nowhere' does not exist or is not a folder"):
        data.load("dvs128-gesture", tmp_path / "nowhere", T=3)


def test_missing_folders_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Train is missing: expected the Train folder"):
        data.load("n-mnist", tmp_path, T=4)
    with pytest.raises(FileNotFoundError, match="airplane is missing"):
        data.load("cifar10-dvs", tmp_path, T=4)
    with pytest.raises(ValueError, match="split_by must be one of"):
        data.load("n-mnist", write_n_mnist(tmp_path / "n", (1, 1)), T=4, split_by="random")


def test_frames_augment_alike_over_time():
    frames = torch.rand(3, 4, 2, 16, 16)
    aug = data.default_augment("cifar10-dvs")
    out = aug(frames, generator=torch.Generator().manual_seed(0))
    assert out.shape == frames.shape
    for b in range(3):  # one flip and roll per sample: every frame moved the same way
        moved = [(dy, dx, flip) for dy in range(-5, 6) for dx in range(-5, 6)
                 for flip in (False, True)
                 if torch.equal(out[b], torch.roll(frames[b].flip(-1) if flip else frames[b],
                                                   (dy, dx), (-2, -1)))]
        assert len(moved) == 1


@pytest.mark.parametrize("name", ["n-mnist", "dvs128-gesture"])
def test_digits_and_gestures_are_rolled_never_mirrored(name):
    # An asymmetric frame: a mirror image is never a roll of it.
    frames = torch.zeros(64, 2, 2, 16, 16)
    frames[..., 3, 2] = 1
    frames[..., 3, 3] = 2
    out = data.default_augment(name)(frames, generator=torch.Generator().manual_seed(0))
    for b in range(len(frames)):
        assert any(torch.equal(out[b], torch.roll(frames[b], (dy, dx), (-2, -1)))
                   for dy in range(-5, 6) for dx in range(-5, 6))
    assert not torch.equal(out, frames)  # some sample did move


def test_networks_take_one_frame_per_step_and_the_ann_their_mean():
    frames = torch.rand(2, 3, 2, 34, 34)
    snn = models.create("convnet", kind="snn", T=3, in_channels=2)
    ann = models.create("convnet", kind="ann", in_channels=2)
    assert snn(frames).shape == ann(frames).shape == (2, 10)
    torch.testing.assert_close(ann(frames), ann(frames.mean(1)))
    first = snn.encode(frames)[:2]  # step 0 of both samples comes from frame 0 only
    torch.testing.assert_close(first, snn.encode(frames[:, :1].expand(2, 3, 2, 34, 34))[:2])
    with pytest.raises(ValueError, match="got 4 frames per sample for a network of T=3"):
        snn(torch.rand(2, 4, 2, 34, 34))


def test_a_student_trains_on_event_frames_through_the_cli(tmp_path):
    root = write_n_mnist(tmp_path / "nmnist", (12, 3))
    out = tmp_path / "run"
    assert main(["distill", "--dataset", "n-mnist", "--data-dir", str(root), "--T", "3",
                 "--batch-size", "20", "--teacher-epochs", "3", "--epochs", "3", "--method",
                 "kd", "--device", "cpu", "--no-baseline", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"] == "n-mnist" and summary["T"] == 3
    assert summary["noise_accuracy"] is None  # pixel noise does not apply to event counts
    assert summary["student_accuracy"] > 0.1 and summary["firing_rate"] > 0
    assert main(["eval", str(out / "checkpoints" / "student.pt")]) == 0
