"""Every data file snnrs reads is bounded by what it holds, every error about a file names the
file, a split missing classes is refused, and the frame cache keys on content and degrades to
a warning.

Files are written byte by byte here (event_fixtures, cifar_fixtures); corrupted files are
checked against small scalar decoders written from the formats' descriptions (the readers'
docstrings), and "refused before any large allocation" is checked in a child process whose
address space is capped at its own size after import plus CHILD_HEADROOM.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import struct
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from cifar_fixtures import dump, write_cifar10
from event_fixtures import (
    AEDAT2_HEADER,
    AEDAT3_HEADER,
    POLARITY,
    aedat3_packets,
    atis_records,
    dvs128_address,
    nmnist_with_overflow,
    other_packet,
    polarity_packet,
    random_events,
    write_aedat2,
    write_aedat3,
    write_cifar10_dvs,
    write_gesture_labels,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from snnrs import data
from snnrs.data.cifar import load_cifar10
from snnrs.data.events import (
    MAX_FRAME_VALUES,
    read_aedat2,
    read_aedat3,
    read_atis_bin,
    read_gesture_labels,
    to_frames,
    to_frames_by_duration,
)
from snnrs.data.events import cache as frame_cache
from snnrs.data.events.datasets import CIFAR10_CLASSES
from snnrs.data.events.gesture import GESTURE_NAMES, MAX_TIME_US
from snnrs.files import DiskFullError

LABELS_HEADER = "class,startTime_usec,endTime_usec"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    """A fresh frame cache per test."""
    monkeypatch.setenv("SNNRS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def starts_with_path(path: Path) -> str:
    return "^" + re.escape(f"{path}: ")


# -------------------------------------------------------------------------------- releases

def nmnist_release(root: Path, events: int = 30, seed: int = 0) -> Path:
    """N-MNIST's layout with one recording of ``events`` random events per digit and split."""
    rng = np.random.default_rng(seed)
    for split in ("Train", "Test"):
        for digit in range(10):
            folder = root / split / str(digit)
            folder.mkdir(parents=True)
            e = random_events(rng, events, 34, 34, span=2**23)
            (folder / "00000.bin").write_bytes(atis_records(e["x"], e["y"], e["p"], e["t"]))
    return root


def gesture_release(root: Path, classes=range(1, 12), x: int | None = None,
                    at: int = 0) -> Path:
    """DVS128 Gesture's layout: one train and one test recording of 300 events, labelled with
    ``classes``; with ``x``, event ``at`` of the train recording has that column."""
    folder = root / "DvsGesture"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    for split, name in (("train", "user01_led.aedat"), ("test", "user02_led.aedat")):
        (folder / f"trials_to_{split}.txt").write_text(name + "\n")
        e = random_events(rng, 300, 128, 128, span=1_300_000)
        if x is not None and split == "train":
            e["x"][at] = x
        write_aedat3(folder / name, aedat3_packets(e["x"], e["y"], e["p"], e["t"]))
        write_gesture_labels(folder / name.replace(".aedat", "_labels.csv"),
                             [(c, 100_000 * c, 100_000 * c + 150_000) for c in classes])
    return root


def corrupt_atis(path: Path, index: int, x: int) -> None:
    """Sets the column of event ``index`` of an ATIS file to ``x``."""
    blob = bytearray(path.read_bytes())
    blob[5 * index] = x
    path.write_bytes(bytes(blob))


# ---------------------------------------------------------------- labels: numbers and lines

@pytest.mark.parametrize(("row", "problem"), [
    ("3,10," + "9" * 30, r"line 3: the time range \[10, 9{30}\) must have 0 <= start <= end "
                         r"<= 9223372036854775807 \(MAX_TIME_US"),
    ("3,-5,10", r"line 3: the time range \[-5, 10\)"),
    ("1" + "0" * 40 + ",1,2", r"line 3: class 10{40} is outside 1\.\.11"),
    ("4,1," + "7" * 5000, r"line 3: expected three integers 'class,start,end', got '4,1,7{56}"
                          r"\.\.\. \(5004 characters\)'$"),
])
def test_huge_or_negative_label_numbers_name_the_file_and_line(tmp_path, row, problem):
    path = tmp_path / "user07_natural_labels.csv"
    path.write_text(f"{LABELS_HEADER}\n1,0,5\n{row}\n")
    with pytest.raises(ValueError, match=starts_with_path(path) + problem):
        read_gesture_labels(path)


@given(line=st.integers(1, 5), column=st.integers(0, 2),
       value=st.one_of(st.integers(max_value=-1), st.integers(min_value=MAX_TIME_US + 1)))
def test_any_label_number_out_of_its_range_is_refused_at_its_line(tmp_path, line, column,
                                                                   value):
    rows = [[c, 10 * c, 10 * c + 5] for c in range(1, 7)]
    rows[line][column] = value
    path = tmp_path / "user08_led_labels.csv"
    path.write_text("\n".join([LABELS_HEADER, *(",".join(map(str, r)) for r in rows)]) + "\n")
    with pytest.raises(ValueError, match=starts_with_path(path) + f"line {line + 2}: "):
        read_gesture_labels(path)


# ----------------------------------------------------- an event off the sensor names its file

def test_an_event_off_the_sensor_names_the_recording_and_the_event(tmp_path):
    root = nmnist_release(tmp_path / "nmnist")
    bad = root / "Train" / "6" / "00000.bin"
    corrupt_atis(bad, 3, 200)
    with pytest.raises(ValueError, match=starts_with_path(bad) + r"events\['x'\] must lie in "
                                         r"\[0, 34\), got .* \(event 3 has 200\)"):
        data.load("n-mnist", root, T=4)
    root = gesture_release(tmp_path / "gesture", x=5000, at=17)
    trial = root / "DvsGesture" / "user01_led.aedat"
    with pytest.raises(ValueError, match=starts_with_path(trial) + r"events\['x'\] must lie in "
                                         r"\[0, 128\), got .* \(event 17 has 5000\)"):
        data.load("dvs128-gesture", root, T=2)


@settings(max_examples=12)
@given(digit=st.integers(0, 9), index=st.integers(0, 29), key=st.sampled_from(["x", "y"]),
       value=st.integers(34, 255).filter(lambda v: v != 240))
def test_any_recording_with_an_event_off_the_sensor_is_named(digit, index, key, value):
    with tempfile.TemporaryDirectory() as folder:
        root = nmnist_release(Path(folder))
        bad = root / "Test" / str(digit) / "00000.bin"
        blob = bytearray(bad.read_bytes())
        blob[5 * index + (key == "y")] = value
        bad.write_bytes(bytes(blob))
        with pytest.raises(ValueError, match=starts_with_path(bad) + re.escape(
                f"events[{key!r}] must lie in [0, 34)") + f".*event {index} has {value}"):
            data.load("n-mnist", root, T=3)


# --------------------------------------------------------------- splits missing some classes

def test_a_split_missing_classes_is_refused_naming_them_and_the_folder(tmp_path):
    root = nmnist_release(tmp_path / "nmnist")
    (root / "Train" / "3" / "00000.bin").unlink()
    (root / "Train" / "3").rmdir()
    (root / "Train" / "7" / "00000.bin").unlink()
    with pytest.raises(FileNotFoundError, match=starts_with_path(root / "Train") + re.escape(
            "no recordings of 2 of the 10 classes of n-mnist Train (3 is missing; 7 holds no "
            "*.bin)")):
        data.load("n-mnist", root, T=4)

    dvs = tmp_path / "cifar10dvs"
    write_cifar10_dvs(dvs, per_class=1, events=20,
                      classes=[c for c in CIFAR10_CLASSES if c not in ("cat", "ship")])
    with pytest.raises(FileNotFoundError, match=starts_with_path(dvs) + re.escape(
            "no recordings of 2 of the 10 classes of cifar10-dvs (cat is missing; ship is "
            "missing)")):
        data.load("cifar10-dvs", dvs, T=4)

    gestures = gesture_release(tmp_path / "gesture", classes=[c for c in range(1, 12) if c != 5])
    listing = gestures / "DvsGesture" / "trials_to_train.txt"
    with pytest.raises(ValueError, match=starts_with_path(listing) + re.escape(
            f"the trials it lists label no gesture of 1 of the 11 classes (5 ({GESTURE_NAMES[4]}))"
            )):
        data.load("dvs128-gesture", gestures, T=2)


@settings(max_examples=15)
@given(removed=st.sets(st.integers(0, 9)), emptied=st.sets(st.integers(0, 9)))
def test_any_missing_or_empty_class_folder_is_named(removed, emptied):
    emptied -= removed
    with tempfile.TemporaryDirectory() as folder:
        root = nmnist_release(Path(folder), events=10)
        for digit in removed | emptied:
            (root / "Test" / str(digit) / "00000.bin").unlink()
            if digit in removed:
                (root / "Test" / str(digit)).rmdir()
        if not removed | emptied:
            assert len(data.load("n-mnist", root, T=2).test) == 10
            return
        with pytest.raises(FileNotFoundError) as err:
            data.load("n-mnist", root, T=2)
    message = str(err.value)
    assert message.startswith(f"{root / 'Test'}: no recordings of "
                              f"{len(removed | emptied)} of the 10 classes")
    named = re.findall(r"(\d) (?:is missing|holds no \*\.bin)", message)
    assert sorted(map(int, named)) == sorted(removed | emptied)
    assert all(f"{d} is missing" in message for d in removed)


# -------------------------------------------------------------------- the frame cache's key

def frames_of(path: Path, T: int = 4) -> torch.Tensor:
    return torch.from_numpy(to_frames(read_atis_bin(path), 34, 34, T))


def replace_keeping_size_and_mtime(path: Path, blob: bytes) -> None:
    """What ``cp -p``, ``rsync -t`` or tar do: new bytes, the old modification time."""
    before = path.stat()
    assert len(blob) == before.st_size
    path.write_bytes(blob)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_a_same_size_replacement_with_its_mtime_restored_is_not_stale(tmp_path, cache):
    root = nmnist_release(tmp_path / "nmnist")
    first = data.load("n-mnist", root, T=4)
    target = root / "Train" / "5" / "00000.bin"
    e = random_events(np.random.default_rng(9), 30, 34, 34, span=2**23)
    replace_keeping_size_and_mtime(target, atis_records(e["x"], e["y"], e["p"], e["t"]))
    again = data.load("n-mnist", root, T=4)
    assert torch.equal(again.train.images[5].float(), frames_of(target))
    assert not torch.equal(again.train.images[5], first.train.images[5])
    assert len(list((cache / "frames").glob("n-mnist-*.pt"))) == 3   # Train anew, Test kept


def test_the_same_content_elsewhere_is_read_from_the_cache(tmp_path, monkeypatch):
    first = data.load("n-mnist", nmnist_release(tmp_path / "a"), T=3)
    from snnrs.data.events import datasets

    monkeypatch.setattr(datasets, "read_atis_bin", lambda path: pytest.fail("not cached"))
    moved = data.load("n-mnist", nmnist_release(tmp_path / "b"), T=3)   # same seed: same bytes
    assert torch.equal(first.train.images, moved.train.images)


@settings(max_examples=10)
@given(digit=st.integers(0, 9), seed=st.integers(0, 2**32 - 1))
def test_any_change_of_content_rebuilds_the_frames(digit, seed):
    with tempfile.TemporaryDirectory() as folder:
        root = nmnist_release(Path(folder) / "nmnist", events=20)
        data.load("n-mnist", root, T=2)
        target = root / "Test" / str(digit) / "00000.bin"
        e = random_events(np.random.default_rng(seed), 20, 34, 34, span=2**23)
        replace_keeping_size_and_mtime(target, atis_records(e["x"], e["y"], e["p"], e["t"]))
        again = data.load("n-mnist", root, T=2)
        assert torch.equal(again.test.images[digit].float(), frames_of(target, 2))


def test_hashing_reads_every_byte(tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(bytes(3 << 20))
    b.write_bytes(bytes((3 << 20) - 1) + b"\x01")      # differs in the last byte of 3 chunks
    assert frame_cache.file_digest(a) != frame_cache.file_digest(b)
    assert frame_cache.fingerprint(tmp_path, [a]) != frame_cache.fingerprint(tmp_path, [b])


# ------------------------------------------------------- an unusable cache is only a warning

def unusable_file(tmp_path: Path) -> tuple[Path, str]:
    (tmp_path / "a-file").write_text("not a folder")
    return tmp_path / "a-file", "Not a directory"


def unusable_below_a_file(tmp_path: Path) -> tuple[Path, str]:
    (tmp_path / "a-file").write_text("not a folder")
    return tmp_path / "a-file" / "cache", "Not a directory"


def unusable_read_only(tmp_path: Path) -> tuple[Path, str]:
    if os.geteuid() == 0:
        pytest.skip("root writes in read-only folders")
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o500)
    return folder, "Permission denied"


@pytest.mark.parametrize("make", [unusable_file, unusable_below_a_file, unusable_read_only])
def test_an_unusable_cache_folder_warns_before_building_and_the_run_goes_on(
        tmp_path, monkeypatch, make):
    root = nmnist_release(tmp_path / "nmnist")
    expected = data.load("n-mnist", root, T=3)
    folder, why = make(tmp_path)
    monkeypatch.setenv("SNNRS_CACHE", str(folder))
    from snnrs.data.events import datasets

    read, warned_first = datasets.read_atis_bin, []

    def read_after_the_warning(path):
        warned_first.append(len(caught) > 0)
        return read(path)

    monkeypatch.setattr(datasets, "read_atis_bin", read_after_the_warning)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        splits = data.load("n-mnist", root, T=3)
    assert torch.equal(splits.train.images, expected.train.images)
    assert warned_first and all(warned_first)   # said before the first recording was read
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2 and all(w.category is frame_cache.FrameCacheWarning
                                      for w in caught)             # one per split ...
    assert len(set(messages)) == 1                                 # ... shown once
    assert messages[0].startswith(f"frame cache {folder / 'frames'} is not usable: {why}")
    assert "\n" not in messages[0]


def test_a_failed_cache_write_warns_after_building_and_keeps_the_frames(tmp_path, monkeypatch):
    def full(path, write):
        raise DiskFullError(28, f"no space left on the disk to write {path} (nothing written)")

    monkeypatch.setattr(frame_cache, "write_atomic", full)
    built = {"frames": torch.arange(6, dtype=torch.uint8)}
    with pytest.warns(frame_cache.FrameCacheWarning,
                      match=re.escape(f"frame cache {tmp_path / 'cache' / 'frames'} is not "
                                      "usable: no space left on the disk")):
        out = frame_cache.cached({"dataset": "toy"}, lambda: built)
    assert out is built


# --------------------------------------------------------------------- the cap on frame size

@given(T=st.integers(1, 10**6), H=st.integers(1, 10**9), W=st.integers(1, 10**9))
def test_frames_over_the_cap_are_refused_before_allocating(T, H, W):
    events = {k: np.zeros(1, np.int64) for k in "txyp"}
    if T * 2 * H * W <= MAX_FRAME_VALUES:
        return
    with pytest.raises(ValueError, match=re.escape(f"{T} frames of 2 x {H} x {W} hold ") +
                       ".* over the cap MAX_FRAME_VALUES = 2\\*\\*30"):
        to_frames(events, H, W, T)


@given(span=st.integers(1, 2**63 - 1), duration=st.integers(1, 2**40), size=st.integers(1, 128))
def test_a_time_span_cut_into_too_many_frames_is_refused(span, duration, size):
    T = -(-span // duration)
    events = {"t": np.array([0, span]), "x": np.zeros(2, int), "y": np.zeros(2, int),
              "p": np.zeros(2, int)}
    if T * 2 * size * size <= 2**22:
        assert to_frames_by_duration(events, size, size, duration).shape[0] == T
    elif T * 2 * size * size > MAX_FRAME_VALUES:
        with pytest.raises(ValueError, match=re.escape(f"(a span of {span} in frames of "
                                                       f"{duration})") + ".* MAX_FRAME_VALUES"):
            to_frames_by_duration(events, size, size, duration)


def test_a_span_past_the_int64_range_in_one_frame_counts_every_event():
    events = {"t": np.array([-2**63, 2**63 - 1]), "x": np.zeros(2, int),
              "y": np.zeros(2, int), "p": np.zeros(2, int)}
    assert to_frames(events, 1, 1, 1, split_by="time").sum() == 2


# ------------------------------------------------------------------------------- CIFAR pickles

def test_cifar_labels_out_of_range_or_not_integers_are_refused_naming_the_file(tmp_path):
    write_cifar10(tmp_path)
    batch = tmp_path / "data_batch_4"
    rows = np.zeros((3, 3072), np.uint8)
    for labels, problem in (([0, 10**30, 1], r"labels must lie in \[0, 10\) .* label 1 is "
                                             r"10{30}$"),
                            ([0, 2**63, 1], "label 1 is 9223372036854775808$"),
                            ([0, 1.0, 2], "'labels' must be a list of integers, got float 1.0 "
                                          "at index 1$"),
                            (np.array([0.5, 1, 2]), "got an array of float64$"),
                            ([0, True, 2], "got bool True at index 1$"),
                            ([0, 1, -4], r"label 2 is -4$")):
        dump(batch, {b"data": rows, b"labels": labels})
        with pytest.raises(ValueError, match=starts_with_path(batch) + ".*" + problem):
            load_cifar10(tmp_path)


# ---------------------------------------------- refused before any large allocation (child)

CHILD_HEADROOM = 2 << 30
"""Address space the child may add to what it maps after importing torch and snnrs (about
3 GiB on Linux x86-64 with torch 2.15): far more than the tiny files here need, far less than
what any of them declares."""

CHILD = r"""
import json, resource, sys
from snnrs import data
from snnrs.data import events as ev
from snnrs.data.cifar import load_cifar10

def mapped():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) * 1024 for l in status if l.startswith("VmSize:"))

READ = {"atis": ev.read_atis_bin, "aedat2": ev.read_aedat2, "aedat3": ev.read_aedat3}
CALLS = {**READ, "labels": ev.read_gesture_labels, "cifar10": load_cifar10,
         "load": lambda name, folder, T: data.load(name, folder, T=T),
         "frames": lambda H, W, T: ev.to_frames({k: [0] for k in "txyp"}, H, W, T),
         "by_duration": lambda reader, path, size: ev.to_frames_by_duration(
             READ[reader](path), size, size, 1)}
baseline = mapped()
resource.setrlimit(resource.RLIMIT_AS, (baseline + int(sys.argv[2]),) * 2)
out = {"baseline": baseline}
for name, (call, args) in json.loads(sys.argv[1]).items():
    try:
        CALLS[call](*args)
        out[name] = ["returned", ""]
    except BaseException as err:
        out[name] = [type(err).__name__, str(err)]
print(json.dumps(out))
"""


def numpy_pickle(reconstruct_args: tuple, state: tuple | None = None,
                 protocol: int = 2) -> bytes:
    """A pickle that calls numpy's ``_reconstruct`` with ``reconstruct_args`` (and sets
    ``state``), as a hostile file would."""
    reconstruct = np.empty(0).__reduce__()[0]

    class Hostile:
        def __reduce__(self):
            return (reconstruct, reconstruct_args) + (() if state is None else (state,))

    return pickle.dumps({b"data": Hostile(), b"labels": [0]}, protocol=protocol)


def hostile_pickles() -> dict[str, tuple[bytes, str]]:
    """Pickles that declare far more than they hold, with the message each must give."""
    empty = np.zeros(0, np.uint8).__reduce__()
    numbers = (1, (2**40,), np.dtype(np.uint8), False, b"1234")
    objects = (1, (2**40,), np.dtype(object), False, [1, 2, 3])
    return {
        "bytes8": (b"\x80\x04\x8e" + struct.pack("<Q", 2**40) + b"abc.",
                   "opcode BINBYTES8 at byte 2: expected 1099511627776 bytes"),
        "frame": (b"\x80\x04\x95" + struct.pack("<Q", 2**40) + b"K\x01.",
                  "opcode FRAME at byte 2: a frame of 1099511627776 bytes"),
        "memo": (b"\x80\x02K\x01r" + struct.pack("<I", 2**32 - 1) + b".",
                 "opcode LONG_BINPUT at byte 4: memo index 4294967295 is past"),
        "reconstruct": (numpy_pickle((np.ndarray, (2**40,), b"b")),
                        r"refusing numpy _reconstruct of an ndarray with shape \(1099511627776,"),
        "ndarray call": (b"\x80\x02cnumpy\nndarray\nJ\x00\x00\x00\x40\x85R.",
                         "refusing to call numpy.ndarray"),
        "object array": (numpy_pickle(empty[1], objects), "refusing numpy dtype object"),
        "short data": (numpy_pickle(empty[1], numbers), "buffer size does not match"),
        "huge label": (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8),
                                     b"labels": [1, 10**30]}, protocol=2),
                       r"labels must lie in \[0, 10\) .* label 1 is 10{30}"),
    }


def write_child_cases(tmp_path: Path) -> dict[str, tuple[str, list, str]]:
    """Files that declare more than they hold or hold values out of range, one per case:
    ``name -> (call, args, expected message)``."""
    cases: dict[str, tuple[str, list, str]] = {}

    def case(name: str, call: str, args: list, path: Path | None, message: str) -> None:
        prefix = ".*" if path is None else re.escape(f"{path}: ")
        cases[name] = (call, [str(a) if isinstance(a, Path) else a for a in args],
                       prefix + message)

    nmnist = nmnist_release(tmp_path / "nmnist")
    corrupt_atis(nmnist / "Train" / "2" / "00000.bin", 4, 250)
    case("atis: off the sensor", "load", ["n-mnist", nmnist, 4],
         nmnist / "Train" / "2" / "00000.bin", r"events\['x'\] must lie in \[0, 34\)")
    cut = tmp_path / "cut.bin"
    cut.write_bytes(bytes(7))
    case("atis: cut", "atis", [cut], cut, "truncated ATIS event file")
    markers = tmp_path / "markers.bin"                  # 1,000 overflow markers: 8.2 s
    markers.write_bytes(nmnist_with_overflow([1, 2], [3, 4], [0, 1], [0, 1000 * 2**13]))
    case("atis: long span", "by_duration", ["atis", markers, 34], None,
         r"frames of 2 x 34 x 34 \(a span of 8192000 in frames of 1\) .*MAX_FRAME_VALUES")

    version = write_aedat2(tmp_path / "v.aedat", [], [], header=AEDAT3_HEADER)
    case("aedat2: version", "aedat2", [version], version, "AEDAT 3.1 file, expected AEDAT 2.0")
    short = tmp_path / "short2.aedat"
    short.write_bytes(AEDAT2_HEADER + bytes(13))
    case("aedat2: cut", "aedat2", [short], short, "truncated AEDAT 2.0 event data")
    span2 = write_aedat2(tmp_path / "span2.aedat", dvs128_address([0, 1], [0, 1], [0, 1]),
                         [0, 2**32 - 1])
    case("aedat2: long span", "by_duration", ["aedat2", span2, 128], None,
         r"\(a span of 4294967295 in frames of 1\) .*MAX_FRAME_VALUES")

    ev = {k: np.array([1, 2]) for k in ("x", "y", "p")}
    capacity = bytearray(polarity_packet(ev["x"], ev["y"], ev["p"], np.array([5, 6])))
    capacity[16:20] = (2**31).to_bytes(4, "little")
    capacity_path = write_aedat3(tmp_path / "capacity.aedat", [bytes(capacity)])
    case("aedat3: capacity", "aedat3", [capacity_path], capacity_path,
         f"truncated packet at byte {len(AEDAT3_HEADER)}: 2147483648 events of 8 bytes")
    wide = bytearray(other_packet(3, 1))
    wide[4:8] = (2**31).to_bytes(4, "little")
    wide[16:20] = (2**31).to_bytes(4, "little")
    wide_path = write_aedat3(tmp_path / "wide.aedat", [bytes(wide)])
    case("aedat3: event size", "aedat3", [wide_path], wide_path, "truncated packet at byte")
    late = struct.pack("<HHIIIIII", POLARITY, 1, 8, 4, 2**32 - 1, 1, 1, 1) + struct.pack(
        "<Ii", 1 << 17 | 1, 7)                         # eventTSOverflow 2**32 - 1
    span3 = write_aedat3(tmp_path / "span3.aedat",
                         [polarity_packet(*(a[:1] for a in ev.values()), np.array([0])), late])
    case("aedat3: long span", "by_duration", ["aedat3", span3, 128], None,
         r"\(a span of 9223372034707292167 in frames of 1\) .*MAX_FRAME_VALUES")
    gestures = gesture_release(tmp_path / "gesture", x=2**15 - 1, at=5)
    case("aedat3: off the sensor", "load", ["dvs128-gesture", gestures, 2],
         gestures / "DvsGesture" / "user01_led.aedat",
         r"events\['x'\] must lie in \[0, 128\), got .* \(event 5 has 32767\)")

    labels = tmp_path / "user09_led_labels.csv"
    labels.write_text(f"{LABELS_HEADER}\n2,0,{10**30}\n")
    case("labels: huge time", "labels", [labels], labels, r"line 2: the time range \[0, 10")
    case("frames: huge sensor", "frames", [10**9, 10**9, 1], None,
         r"1 frames of 2 x 1000000000 x 1000000000 hold .* MAX_FRAME_VALUES")

    for name, (blob, message) in hostile_pickles().items():
        folder = tmp_path / f"cifar-{name.replace(' ', '-')}"
        write_cifar10(folder)
        (folder / "data_batch_2").write_bytes(blob)
        case(f"cifar pickle: {name}", "cifar10", [folder], folder / "data_batch_2",
             ".*" + message)
    return cases


def test_every_reader_refuses_what_a_file_cannot_hold_before_allocating_it(tmp_path):
    cases = write_child_cases(tmp_path)
    env = {**os.environ, "MALLOC_ARENA_MAX": "2", "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps({k: v[:2] for k, v in cases.items()}),
         str(CHILD_HEADROOM)], capture_output=True, text=True, env=env, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout.splitlines()[-1])
    assert 0 < results.pop("baseline") < 16 << 30
    for name, (_, _, message) in cases.items():
        kind, text = results[name]
        assert kind in ("ValueError", "FileNotFoundError"), (name, kind, text)
        assert re.match(message, text), (name, text)


def test_the_child_limit_does_catch_a_large_allocation(tmp_path):
    """The child's cap is low enough that allocating what the files above declare (8 GiB at
    the least: the ndarray call) fails: the test above would see MemoryError, not snnrs's
    message, if the checks came after the allocation."""
    code = CHILD.replace('out = {"baseline": baseline}',
                         'out = {"baseline": baseline}\nimport numpy; numpy.ones(2**33, "u1")')
    assert code != CHILD
    run = subprocess.run([sys.executable, "-c", code, "{}", str(CHILD_HEADROOM)],
                         capture_output=True, text=True, timeout=240,
                         env={**os.environ, "MALLOC_ARENA_MAX": "2"})
    assert run.returncode != 0 and "MemoryError" in run.stderr


# --------------------------------------------------- corrupted files: clean refusal or truth

def atis_truth(blob: bytes) -> dict | None:
    """N-MNIST records decoded one by one (None: the reader must refuse the bytes)."""
    if len(blob) % 5:
        return None
    out: dict[str, list] = {k: [] for k in "txyp"}
    markers = 0
    for x, y, b2, b3, b4 in (blob[i:i + 5] for i in range(0, len(blob), 5)):
        if y == 240:
            markers += 1
            continue
        t = ((b2 & 0x7F) << 16 | b3 << 8 | b4) + markers * 2**13
        if t >= 2**32:
            return None
        for k, v in zip("txyp", (t, x, y, b2 >> 7), strict=True):
            out[k].append(v)
    return out


def aedat2_truth(blob: bytes) -> dict | None:
    pos = 0
    while blob.startswith(b"#", pos):
        end = blob.find(b"\n", pos)
        end = len(blob) if end < 0 else end + 1
        version = blob[9:end].strip().decode("ascii", "replace")
        if pos == 0 and blob.startswith(b"#!AER-DAT") and not version.startswith("2."):
            return None
        pos = end
    if (len(blob) - pos) % 8:
        return None
    out: dict[str, list] = {k: [] for k in "txyp"}
    for i in range(pos, len(blob), 8):
        address, t = struct.unpack_from(">II", blob, i)
        for k, v in zip("txyp", (t, 127 - (address >> 8 & 0x7F), 127 - (address >> 1 & 0x7F),
                                 1 - (address & 1)), strict=True):
            out[k].append(v)
    return out


def aedat3_truth(blob: bytes) -> dict | None:
    first = blob.split(b"\n", 1)[0].strip().decode("ascii", "replace")
    if not blob.startswith(b"#!AER-DAT") or not first[9:].startswith("3."):
        return None
    lines = blob.split(b"\n")
    ends = [i for i, line in enumerate(lines[:-1]) if line.rstrip(b"\r") == b"#!END-HEADER"
            and all(x.startswith(b"#") for x in lines[:i + 1])]
    if not ends:
        return None
    pos = sum(len(line) + 1 for line in lines[:ends[0] + 1])
    out: dict[str, list] = {k: [] for k in "txyp"}
    while pos < len(blob):
        if len(blob) - pos < 28:
            return None
        kind, _, size, _, overflow, capacity, _, _ = struct.unpack_from("<HHIIIIII", blob, pos)
        if pos + 28 + size * capacity > len(blob) or (kind == 1 and size != 8):
            return None
        for i in range(capacity if kind == 1 else 0):
            word, t = struct.unpack_from("<II", blob, pos + 28 + 8 * i)
            for k, v in zip("txyp", (t | overflow << 31, word >> 17 & 0x7FFF,
                                     word >> 2 & 0x7FFF, word >> 1 & 1), strict=True):
                out[k].append(v)
        pos += 28 + size * capacity
    return out


def labels_truth(blob: bytes) -> dict | None:
    try:
        text = blob.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or [f.strip().lower() for f in lines[0].split(",")] != \
            LABELS_HEADER.lower().split(","):
        return None
    out: dict[str, list] = {"label": [], "start": [], "end": []}
    for line in lines[1:]:
        try:
            c, s, e = (int(f) for f in line.split(","))
        except ValueError:
            return None
        if not (1 <= c <= 11 and 0 <= s <= e <= MAX_TIME_US):
            return None
        for k, v in zip(out, (c - 1, s, e), strict=True):
            out[k].append(v)
    return out


def atis_file(rng: np.random.Generator) -> bytes:
    e = random_events(rng, 12, 34, 34, span=5 * 2**13)
    return nmnist_with_overflow(e["x"], e["y"], e["p"], e["t"])


def aedat2_file(rng: np.random.Generator) -> bytes:
    e = random_events(rng, 12, 128, 128, span=10**6)
    events = np.empty(12, dtype=[("a", ">u4"), ("t", ">u4")])
    events["a"], events["t"] = dvs128_address(e["x"], e["y"], e["p"]), e["t"]
    return AEDAT2_HEADER + events.tobytes()


def aedat3_file(rng: np.random.Generator) -> bytes:
    e = random_events(rng, 16, 128, 128, span=2**32, start=2**31 - 2**30)
    return AEDAT3_HEADER + b"".join(aedat3_packets(e["x"], e["y"], e["p"], e["t"],
                                                   packet_events=5, rng=rng))


def labels_file(rng: np.random.Generator) -> bytes:
    rows = [(int(c), 1000 * i, 1000 * i + 999) for i, c in enumerate(rng.integers(1, 12, 4))]
    return "\n".join([LABELS_HEADER, *(f"{c},{s},{e}" for c, s, e in rows)]).encode() + b"\n"


READERS: dict[str, tuple[Callable, Callable, Callable]] = {
    "n-mnist.bin": (atis_file, read_atis_bin, atis_truth),
    "cifar10-dvs.aedat": (aedat2_file, read_aedat2, aedat2_truth),
    "gesture.aedat": (aedat3_file, read_aedat3, aedat3_truth),
    "gesture_labels.csv": (labels_file, read_gesture_labels, labels_truth),
}


@st.composite
def corruptions(draw: st.DrawFn, blob: bytes) -> bytes:
    """``blob`` cut short, with bytes overwritten, or with bytes inserted."""
    where = draw(st.integers(0, len(blob)))
    chunk = draw(st.binary(min_size=1, max_size=9))
    return draw(st.sampled_from([blob[:where], blob[:where] + chunk + blob[where + len(chunk):],
                                 blob[:where] + chunk + blob[where:]]))


@pytest.mark.parametrize("name", READERS)
@given(seed=st.integers(0, 2**32 - 1), data_=st.data())
def test_a_corrupted_file_is_refused_naming_it_or_read_as_its_bytes_say(tmp_path, name, seed,
                                                                       data_):
    make, read, truth = READERS[name]
    blob = data_.draw(corruptions(make(np.random.default_rng(seed))))
    path = tmp_path / name
    path.write_bytes(blob)
    expected = truth(blob)
    if expected is None:
        with pytest.raises(ValueError, match=starts_with_path(path)):
            read(path)
        return
    got = read(path)
    assert {k: v.tolist() for k, v in got.items()} == expected


def cifar_batches(folder: Path, seed: int) -> None:
    write_cifar10(folder, n=2, protocol=[2, 4, 5][seed % 3])


@settings(max_examples=30)
@given(seed=st.integers(0, 2**32 - 1), data_=st.data())
def test_a_corrupted_cifar_pickle_is_refused_naming_it_or_loads_sound(tmp_path, seed, data_):
    folder = tmp_path / f"cifar-{seed}"
    cifar_batches(folder, seed)
    batch = folder / "data_batch_1"
    blob = batch.read_bytes()
    corrupted = data_.draw(corruptions(blob))
    batch.write_bytes(corrupted)
    try:
        splits = load_cifar10(folder)
    except ValueError as err:
        assert str(err).startswith(f"{batch}: ")
        return
    for split in (splits.train, splits.test):
        assert split.images.dtype == torch.uint8 and split.images.shape[1:] == (3, 32, 32)
        assert split.labels.shape == (len(split.images),)
        assert bool(((split.labels >= 0) & (split.labels < 10)).all())
    if corrupted == blob:
        assert len(splits.train) == 10

