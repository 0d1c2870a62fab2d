"""snnrs.data.events: the event-file readers and the frame integration, held to the file
formats (files written byte by byte in event_fixtures) and to SpikingJelly 2.0.0's own readers
and integrators on the same files and events."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from event_fixtures import (
    AEDAT2_HEADER,
    AEDAT3_HEADER,
    OVERFLOW_STEP,
    PACKET_HEADER,
    POLARITY,
    aedat3_packets,
    atis_records,
    dvs128_address,
    nmnist_with_overflow,
    other_packet,
    polarity_packet,
    random_events,
    spikingjelly_datasets,
    write_aedat2,
    write_aedat3,
    write_atis_bin,
    write_gesture_labels,
)
from hypothesis import example, given
from hypothesis import strategies as st
from PIL import Image
from snnrs.data.events import (
    read_aedat2,
    read_aedat3,
    read_atis_bin,
    read_gesture_labels,
    resize_frames,
    split_gestures,
    to_frames,
    to_frames_by_duration,
)

KEYS = ("t", "x", "y", "p")


@pytest.fixture(scope="module")
def sj():
    """SpikingJelly's readers and integrators (its dataset package imported behind stand-ins
    for torchvision, torchaudio and h5py); the test skips if that import fails."""
    pytest.importorskip("spikingjelly")
    stack = contextlib.ExitStack()
    try:
        functions = stack.enter_context(spikingjelly_datasets())
    except (ImportError, AttributeError, TypeError) as err:   # a stand-in falls short
        pytest.skip(f"spikingjelly.datasets does not import here: {err!r}")
    with stack:
        yield functions


def assert_events(ours: dict, expected: dict, dtypes: tuple) -> None:
    assert set(ours) == set(KEYS)
    for key, dtype in zip(KEYS, dtypes, strict=True):
        assert ours[key].dtype == np.dtype(dtype), (key, ours[key].dtype)
        assert ours[key].ndim == 1
        np.testing.assert_array_equal(ours[key], np.asarray(expected[key]), err_msg=key)


def assert_same_as_sj(ours: dict, theirs: dict) -> None:
    """Same values; same dtypes up to byte order (SpikingJelly's empty AEDAT 3 arrays are
    float64, ours stay int64)."""
    for key in KEYS:
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)
        if theirs[key].size:
            assert ours[key].dtype == theirs[key].dtype.newbyteorder("="), key


def columns(rows: list[tuple], n: int) -> list[np.ndarray]:
    return [np.array([r[i] for r in rows], dtype=np.int64) for i in range(n)]


# ------------------------------------------------------------------------- N-MNIST (ATIS)

atis_event = st.tuples(st.integers(0, 255), st.integers(0, 255).filter(lambda v: v != 240),
                       st.integers(0, 1), st.integers(0, 2**23 - 1))
atis_marker = st.tuples(st.integers(0, 255), st.just(240), st.integers(0, 1),
                        st.integers(0, 2**23 - 1))        # other fields: whatever is there


@given(st.lists(atis_event, max_size=40))
@example([])
@example([(0, 0, 0, 0)])
@example([(255, 255, 1, 2**23 - 1), (0, 239, 0, 0), (255, 241, 1, 1)])
def test_atis_reads_back_exactly(tmp_path, rows):
    x, y, p, ts = columns(rows, 4)
    path = write_atis_bin(tmp_path / "sample.bin", atis_records(x, y, p, ts))
    expected = {"t": ts, "x": x, "y": y, "p": p}
    assert_events(read_atis_bin(path), expected, ("uint32",) * 4)
    assert_events(read_atis_bin(path, overflow=False), expected, ("uint32",) * 4)


@given(st.lists(st.one_of(atis_event, atis_marker), max_size=40))
@example([(7, 240, 1, 5)])
@example([(0, 240, 0, 0), (1, 2, 1, 2**23 - 1), (0, 240, 1, 9), (0, 240, 0, 9), (3, 4, 0, 0)])
def test_atis_overflow_markers_are_dropped_and_shift_later_timestamps(tmp_path, rows):
    x, y, p, ts = columns(rows, 4)
    path = write_atis_bin(tmp_path / "sample.bin", atis_records(x, y, p, ts))
    marker = y == 240
    shift = np.cumsum(marker) * OVERFLOW_STEP
    expected = {"t": (ts + shift)[~marker], "x": x[~marker], "y": y[~marker], "p": p[~marker]}
    assert_events(read_atis_bin(path), expected, ("uint32",) * 4)
    raw = read_atis_bin(path, overflow=False)         # as stored: markers are events
    assert_events(raw, {"t": ts, "x": x, "y": y, "p": p}, ("uint32",) * 4)


@given(st.lists(st.integers(0, 3 * OVERFLOW_STEP), max_size=40), st.integers(0, 2**24))
def test_atis_timestamps_cross_the_overflow(tmp_path, steps, start):
    t = start + np.cumsum(np.array(steps, dtype=np.int64))
    rng = np.random.default_rng(len(steps))
    x, y, p = rng.integers(0, 34, t.size), rng.integers(0, 34, t.size), rng.integers(0, 2, t.size)
    path = write_atis_bin(tmp_path / "sample.bin", nmnist_with_overflow(x, y, p, t))
    assert_events(read_atis_bin(path), {"t": t, "x": x, "y": y, "p": p}, ("uint32",) * 4)
    assert path.stat().st_size == 5 * (t.size + int(t[-1] // OVERFLOW_STEP if t.size else 0))


@given(st.lists(st.one_of(atis_event, atis_marker), max_size=30))
def test_atis_matches_spikingjelly(sj, tmp_path, rows):
    x, y, p, ts = columns(rows, 4)
    path = write_atis_bin(tmp_path / "sample.bin", atis_records(x, y, p, ts))
    theirs = sj.load_atis_bin(path)
    assert_same_as_sj(read_atis_bin(path, overflow=False), theirs)   # always
    if not (y == 240).any():                                           # N-MNIST: no markers
        assert_same_as_sj(read_atis_bin(path), theirs)


def test_atis_too_many_overflow_markers_is_an_error(tmp_path):
    n = 2**32 // OVERFLOW_STEP
    y = np.full(n + 1, 240)
    y[-1] = 0
    path = write_atis_bin(tmp_path / "huge.bin", atis_records(np.zeros(n + 1, int), y,
                                                              np.zeros(n + 1, int),
                                                              np.zeros(n + 1, int)))
    with pytest.raises(ValueError, match=re.escape(f"{path}: ") + r".*2\*\*32 - 1"):
        read_atis_bin(path)


# ------------------------------------------------------------------ CIFAR10-DVS (AEDAT 2.0)

# The last field fills the address bits the DVS128 layout leaves unused (15 to 23; the top
# byte stays 0, as in the recordings: a first byte '#' would read as a header line).
dvs128_event = st.tuples(st.integers(0, 127), st.integers(0, 127), st.integers(0, 1),
                         st.integers(0, 2**32 - 1), st.integers(0, 2**24 - 1))


def write_dvs128(path: Path, rows: list[tuple], header: bytes = AEDAT2_HEADER):
    column, row, pol, ts, junk = columns(rows, 5)
    path = write_aedat2(path, dvs128_address(column, row, pol, junk), ts, header)
    return path, {"t": ts, "x": 127 - row, "y": 127 - column, "p": 1 - pol}


@given(st.lists(dvs128_event, max_size=40))
@example([])
@example([(0, 0, 0, 0, 0)])
@example([(127, 127, 1, 2**32 - 1, 2**24 - 1), (0, 127, 0, 0, 2**32 - 1), (127, 0, 1, 1, 0)])
def test_aedat2_reads_back_exactly(tmp_path, rows):
    for header in (AEDAT2_HEADER, b"", b"#!AER-DAT2.0\n# unix line ends\n"):
        path, expected = write_dvs128(tmp_path / "cifar10_cat_0.aedat", rows, header)
        assert_events(read_aedat2(path), expected, ("uint32", "uint32", "uint32", "int64"))


# SpikingJelly cannot read a file without header lines reliably (it decodes the first line
# of binary data as UTF-8 outside its try block).
@pytest.mark.parametrize("header", [AEDAT2_HEADER, b"# no version line\r\n",
                                    b"#!AER-DAT2.0\n#unix line ends\n"])
@given(rows=st.lists(dvs128_event, max_size=30))
def test_aedat2_matches_spikingjelly(sj, tmp_path, header, rows):
    path, _ = write_dvs128(tmp_path / "cifar10_dog_7.aedat", rows, header)
    assert_same_as_sj(read_aedat2(path), sj.load_cifar10_dvs(path))


# ---------------------------------------------------------------- DVS128 Gesture (AEDAT 3.1)

gesture_event = st.tuples(st.integers(0, 2**15 - 1), st.integers(0, 2**15 - 1),
                          st.integers(0, 1), st.integers(0, 2**29))


def gesture_file(path: Path, rows: list[tuple], start: int, seed: int, others: bool):
    """A recording whose times start at ``start`` and step by the rows' last field, so that
    they cross multiples of 2**31 (new eventTSOverflow values)."""
    x, y, p, steps = columns(rows, 4)
    t = start + np.cumsum(steps)
    packets = aedat3_packets(x, y, p, t, packet_events=7, others=others,
                             rng=np.random.default_rng(seed))
    return write_aedat3(path, packets), {"t": t, "x": x, "y": y, "p": p}


@given(st.lists(gesture_event, max_size=60), st.integers(0, 2**33), st.integers(0, 99),
       st.booleans())
@example([], 0, 0, True)
@example([(0, 0, 0, 0)], 2**31 - 1, 0, False)
@example([(2**15 - 1, 2**15 - 1, 1, 0), (0, 2**15 - 1, 0, 1), (2**15 - 1, 0, 1, 2**29)],
         2**31 - 1, 1, True)
def test_aedat3_reads_back_exactly(tmp_path, rows, start, seed, others):
    path, expected = gesture_file(tmp_path / "user01_led.aedat", rows, start, seed, others)
    assert_events(read_aedat3(path), expected, ("int64",) * 4)


@given(st.lists(gesture_event, max_size=40), st.integers(0, 2**33), st.integers(0, 99),
       st.booleans())
def test_aedat3_matches_spikingjelly(sj, tmp_path, rows, start, seed, others):
    path, _ = gesture_file(tmp_path / "user02_lab.aedat", rows, start, seed, others)
    assert_same_as_sj(read_aedat3(path), sj.load_aedat_v3(path))


def test_aedat3_reads_all_of_a_packets_capacity_and_ignores_the_valid_bit(sj, tmp_path):
    packet = bytearray(polarity_packet(np.array([1, 2]), np.array([3, 4]), np.array([0, 1]),
                                       np.array([10, 20])))
    packet[20:28] = (1).to_bytes(4, "little") * 2       # eventNumber = eventValid = 1 of 2
    packet[28] &= 0xFE                                  # first event marked invalid
    path = write_aedat3(tmp_path / "odd.aedat", [bytes(packet)])
    ours = read_aedat3(path)
    assert ours["t"].tolist() == [10, 20]
    assert_same_as_sj(ours, sj.load_aedat_v3(path))


# ---------------------------------------------------------------------- DVS128 Gesture labels

def test_gesture_labels_and_split_match_spikingjelly(sj, tmp_path):
    rng = np.random.default_rng(0)
    events = random_events(rng, 3000, 128, 128, span=2_000_000, start=2**31 - 500_000)
    path = write_aedat3(tmp_path / "user26_fluorescent.aedat",
                        aedat3_packets(events["x"], events["y"], events["p"], events["t"],
                                       packet_events=256, rng=rng))
    base = 2**31 - 500_000
    rows = [(1, base, base + 200_000), (2, base + 150_000, base + 400_000),    # overlap
            (8, base + 400_000, base + 400_000),                                # empty
            (8, base + 500_000, base + 1_100_000), (11, base + 1_500_000, base + 2_100_000),
            (8, base - 10, base + 5)]
    csv = write_gesture_labels(tmp_path / "user26_fluorescent_labels.csv", rows)
    labels = read_gesture_labels(csv)
    assert labels["label"].tolist() == [c - 1 for c, _, _ in rows]
    assert labels["start"].tolist() == [s for _, s, _ in rows]
    assert labels["end"].tolist() == [e for _, _, e in rows]
    assert all(labels[k].dtype == np.int64 for k in labels)

    out = tmp_path / "split"
    for label in range(11):
        (out / str(label)).mkdir(parents=True)
    sj.split_gesture_file("user26_fluorescent", path, csv, out)
    ours = split_gestures(read_aedat3(path), labels)
    seen = [0] * 11
    for label, part in ours:
        with np.load(out / str(label) / f"user26_fluorescent_{seen[label]}.npz") as theirs:
            assert_same_as_sj(part, {k: theirs[k] for k in KEYS})
        seen[label] += 1
    assert sum(len(list((out / str(c)).iterdir())) for c in range(11)) == len(rows)
    assert sum(part["t"].size for _, part in ours[:2]) > 0


@pytest.mark.parametrize(("text", "problem"), [
    ("", "empty labels file"),
    ("1,2,3\n", "line 1: expected the header"),
    ("class,startTime_usec,endTime_usec\n1,2\n", "line 2: expected three integers"),
    ("class,startTime_usec,endTime_usec\n1,2,3\n4,5.5,6\n", "line 3: expected three"),
    ("class,startTime_usec,endTime_usec\n0,2,3\n", "class 0 is outside"),
    ("class,startTime_usec,endTime_usec\n12,2,3\n", "class 12 is outside"),
    ("class,startTime_usec,endTime_usec\n3,9,3\n", r"line 2: the time range \[9, 3\)"),
    ("class,startTime_usec,endTime_usec\n3,-1,3\n", "0 <= start <= end"),
])
def test_gesture_labels_errors_name_the_file(tmp_path, text, problem):
    path = tmp_path / "user03_led_labels.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=re.escape(f"{path}: ") + f".*{problem}"):
        read_gesture_labels(path)
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(ValueError, match=re.escape(f"{path}: not a text file")):
        read_gesture_labels(path)


def test_gesture_labels_accept_crlf_blank_lines_and_a_bom(tmp_path):
    path = tmp_path / "user04_led_labels.csv"
    path.write_bytes(b"\xef\xbb\xbfclass,startTime_usec,endTime_usec\r\n1,5,9\r\n\r\n"
                     b" 2 , 9 , 12 \r\n\r\n")
    labels = read_gesture_labels(path)
    assert [labels[k].tolist() for k in ("label", "start", "end")] == [[0, 1], [5, 9], [9, 12]]
    header_only = tmp_path / "user05_led_labels.csv"
    header_only.write_text("class,startTime_usec,endTime_usec\n")
    assert all(v.shape == (0,) and v.dtype == np.int64
               for v in read_gesture_labels(header_only).values())


# ---------------------------------------------------------------------------- malformed files

def cut_file(tmp_path: Path, name: str, data: bytes, cut: int) -> Path:
    path = tmp_path / name
    path.write_bytes(data[:cut])
    return path


@given(st.data())
def test_truncated_files_raise_value_errors_naming_the_file(tmp_path, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    ev = random_events(rng, 50, 34, 34, span=2**24)
    atis = atis_records(ev["x"], ev["y"], ev["p"], ev["t"] % 2**23)
    cut = data.draw(st.integers(0, len(atis)))
    path = cut_file(tmp_path, "cut.bin", atis, cut)
    if cut % 5:
        with pytest.raises(ValueError, match=re.escape(f"{path}: truncated ATIS")):
            read_atis_bin(path)
    else:
        assert read_atis_bin(path)["x"].tolist() == ev["x"][:cut // 5].tolist()

    aedat2 = AEDAT2_HEADER + np.array([[5, 6]] * 20, dtype=">u4").tobytes()
    cut = data.draw(st.integers(0, len(aedat2)))
    path = cut_file(tmp_path, "cut2.aedat", aedat2, cut)
    body = cut - len(AEDAT2_HEADER)
    if body < 0:                       # cut in the header: no events, or a bad version line
        try:
            assert read_aedat2(path)["t"].size == 0
        except ValueError as err:
            assert str(err).startswith(f"{path}: AEDAT ")
    elif body % 8:
        with pytest.raises(ValueError, match=re.escape(f"{path}: truncated AEDAT 2.0")):
            read_aedat2(path)
    else:
        assert read_aedat2(path)["t"].tolist() == [6] * (body // 8)

    packets = aedat3_packets(ev["x"], ev["y"], ev["p"], ev["t"], packet_events=16, rng=rng)
    aedat3 = AEDAT3_HEADER + b"".join(packets)
    boundaries = len(AEDAT3_HEADER) + np.cumsum([0, *map(len, packets)])
    cut = data.draw(st.integers(0, len(aedat3)))
    path = cut_file(tmp_path, "cut3.aedat", aedat3, cut)
    if cut in boundaries:              # whole packets: a shorter recording
        whole = packets[:int(np.searchsorted(boundaries, cut))]
        kept = sum(PACKET_HEADER.unpack_from(pk)[5] for pk in whole if pk[0] == POLARITY)
        assert read_aedat3(path)["t"].size == kept
    else:
        with pytest.raises(ValueError, match=re.escape(f"{path}: ")):
            read_aedat3(path)


def test_malformed_aedat_files(tmp_path):
    def error(path: Path, text: str) -> str:
        return "^" + re.escape(f"{path}: {text}")

    three = [np.array([1, 2, 3]), np.array([4, 5, 6]), np.array([0, 1, 1]), np.array([7, 8, 9])]
    gesture = write_aedat3(tmp_path / "g.aedat", [polarity_packet(*three)])
    with pytest.raises(ValueError, match=error(gesture, "AEDAT 3.1 file, expected AEDAT 2.0 "
                                                       "(read it with read_aedat3)")):
        read_aedat2(gesture)
    cifar = write_aedat2(tmp_path / "c.aedat", [1, 2], [3, 4])
    with pytest.raises(ValueError, match=error(cifar, "'#!AER-DAT2.0': expected an AEDAT 3.x")):
        read_aedat3(cifar)
    raw = tmp_path / "raw.aedat"
    raw.write_bytes(np.arange(8, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match=error(raw, "not an AEDAT file")):
        read_aedat3(raw)
    no_end = write_aedat3(tmp_path / "n.aedat", [], header=b"#!AER-DAT3.1\r\n#Format: RAW\r\n")
    with pytest.raises(ValueError, match=error(no_end, "the header has no '#!END-HEADER'")):
        read_aedat3(no_end)
    wide = bytearray(other_packet(POLARITY, 2))          # polarity events of 8 bytes ...
    wide[4:8] = (16).to_bytes(4, "little")              # ... declared as 16 bytes
    wide += bytes(16)
    wide_path = write_aedat3(tmp_path / "w.aedat", [bytes(wide)])
    with pytest.raises(ValueError, match=error(wide_path, f"polarity packet at byte "
                                                          f"{len(AEDAT3_HEADER)} has 16-byte")):
        read_aedat3(wide_path)
    huge = bytearray(polarity_packet(*(a[:2] for a in three)))
    huge[16:20] = (2**31).to_bytes(4, "little")          # eventCapacity far past the file
    huge_path = write_aedat3(tmp_path / "h.aedat", [bytes(huge)])
    at = len(AEDAT3_HEADER)
    with pytest.raises(ValueError, match=error(huge_path, f"truncated packet at byte {at}:")):
        read_aedat3(huge_path)
    with pytest.raises(FileNotFoundError):
        read_aedat3(tmp_path / "missing.aedat")


def test_other_packet_types_are_skipped(tmp_path):
    ev = {"x": np.array([9]), "y": np.array([8]), "p": np.array([1]), "t": np.array([77])}
    packets = [other_packet(0, 3, fill=0xFF), other_packet(3, 1),
               polarity_packet(ev["x"], ev["y"], ev["p"], ev["t"]), other_packet(0, 0)]
    path = write_aedat3(tmp_path / "mixed.aedat", packets)
    assert_events(read_aedat3(path), ev, ("int64",) * 4)


# ------------------------------------------------------------------------------------ frames

def reference_time_frames(events: dict, H: int, W: int, T: int) -> np.ndarray:
    """SpikingJelly's documented time slicing, one mask per frame."""
    t = events["t"].astype(np.int64)
    frames = np.zeros((T, 2, H, W))
    if t.size == 0:
        return frames
    dt = (t[-1] - t[0]) // T
    for i in range(T):
        keep = t >= t[0] + i * dt
        if i < T - 1:
            keep &= t < t[0] + (i + 1) * dt
        channel = (events["p"][keep] != 0).astype(int)
        np.add.at(frames[i], (channel, events["y"][keep], events["x"][keep]), 1)
    return frames


def reference_duration_frames(events: dict, H: int, W: int, duration: int) -> np.ndarray:
    since = events["t"].astype(np.int64) - int(events["t"][0])
    T = max(int(np.ceil(since[-1] / duration)), 1)
    frames = np.zeros((T, 2, H, W))
    index = np.minimum(since // duration, T - 1)
    np.add.at(frames, (index, (events["p"] != 0).astype(int), events["y"], events["x"]), 1)
    return frames


@st.composite
def event_cases(draw, max_n: int = 120):
    """Random events (sorted times, mixed dtypes) with their frame size."""
    n, H, W = draw(st.integers(0, max_n)), draw(st.integers(1, 6)), draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    span = draw(st.sampled_from([1, 5, 50, 10_000, 2**40]))
    events = random_events(rng, n, H, W, span=span, start=draw(st.integers(0, 2**31)))
    dtype = draw(st.sampled_from(["int64", "uint32", "int32", "uint8"]))
    for key in ("x", "y", "p"):
        events[key] = events[key].astype(dtype)
    if (n == 0 or events["t"].max() < 2**32) and draw(st.booleans()):
        events["t"] = events["t"].astype(np.uint32)
    if draw(st.booleans()):
        events["p"] = events["p"].astype(bool)
    return events, H, W


def sj_has_empty_window(t: np.ndarray, T: int) -> bool:
    """Whether one of SpikingJelly's time windows holds no event (its IndexError)."""
    t = t.astype(np.int64)
    if t.size == 0:
        return True
    dt = (t[-1] - t[0]) // T
    return any(not ((t >= t[0] + i * dt) & (t < t[0] + (i + 1) * dt)).any() for i in range(T))


def pixel_counts(events: dict, H: int, W: int) -> np.ndarray:
    return np.bincount(((events["p"] != 0) * H + events["y"].astype(int)) * W
                       + events["x"].astype(int), minlength=2 * H * W).reshape(2, H, W)


@given(event_cases(), st.integers(1, 12))
def test_number_split_matches_spikingjelly_and_counts_every_event_once(sj, case, T):
    events, H, W = case
    shuffled = {k: v[::-1].copy() for k, v in events.items()}     # no time order needed
    for ev in (events, shuffled):
        frames = to_frames(ev, H, W, T, split_by="number")
        assert frames.dtype == np.float32 and frames.shape == (T, 2, H, W)
        theirs = sj.by_frames_number(ev, "number", T, H, W)
        np.testing.assert_array_equal(frames, theirs)
        n = ev["t"].size
        np.testing.assert_array_equal(frames.sum(0), pixel_counts(ev, H, W))
        assert frames.sum((1, 2, 3)).tolist() == [n // T] * (T - 1) + [n - (n // T) * (T - 1)]


@given(event_cases(), st.integers(1, 12))
def test_time_split_matches_spikingjelly(sj, case, T):
    events, H, W = case
    frames = to_frames(events, H, W, T, split_by="time")
    assert frames.dtype == np.float32 and frames.shape == (T, 2, H, W)
    expected = reference_time_frames(events, H, W, T)
    np.testing.assert_array_equal(frames, expected)
    np.testing.assert_array_equal(frames.sum(0), pixel_counts(events, H, W))
    try:
        theirs = sj.by_frames_number(events, "time", T, H, W)
    except IndexError:        # SpikingJelly fails on a time slice without events
        assert sj_has_empty_window(events["t"], T)
    else:
        assert not sj_has_empty_window(events["t"], T)
        np.testing.assert_array_equal(frames, theirs)


@given(event_cases(), st.integers(1, 40), st.integers(0, 7))
@example((random_events(np.random.default_rng(1), 30, 4, 4, 1), 4, 4), 1, 3)  # one time
def test_duration_matches_spikingjelly(sj, case, frames_wanted, extra):
    events, H, W = case
    span = int(events["t"][-1]) - int(events["t"][0]) if events["t"].size else 0
    duration = max(span // frames_wanted, 1) + extra         # at most about 40 frames
    frames = to_frames_by_duration(events, H, W, duration)
    assert frames.dtype == np.float32 and frames.shape[1:] == (2, H, W)
    if events["t"].size == 0:
        assert frames.shape[0] == 0
        return
    np.testing.assert_array_equal(frames, reference_duration_frames(events, H, W, duration))
    np.testing.assert_array_equal(frames.sum(0), pixel_counts(events, H, W))
    if events["t"][-1] == events["t"][0]:      # SpikingJelly makes no frame, then fails
        assert frames.shape[0] == 1
        with pytest.raises(IndexError):
            sj.by_duration(events, duration, H, W)
    else:
        np.testing.assert_array_equal(frames, sj.by_duration(events, duration, H, W))


def test_frames_of_no_events():
    empty = {k: np.zeros(0, np.int64) for k in KEYS}
    for split_by in ("number", "time"):
        assert not to_frames(empty, 2, 3, 4, split_by).any()
        assert to_frames(empty, 2, 3, 4, split_by).shape == (4, 2, 2, 3)
    assert to_frames_by_duration(empty, 2, 3, 10).shape == (0, 2, 2, 3)


def test_frames_of_readers_events_match_spikingjelly(sj, tmp_path):
    rng = np.random.default_rng(3)
    ev = random_events(rng, 5000, 128, 128, span=1_000_000)
    path = write_aedat2(tmp_path / "c.aedat", dvs128_address(ev["x"], ev["y"], ev["p"]),
                        ev["t"])
    ours, theirs = read_aedat2(path), sj.load_cifar10_dvs(path)
    for split_by in ("number", "time"):
        np.testing.assert_array_equal(to_frames(ours, 128, 128, 10, split_by),
                                      sj.by_frames_number(theirs, split_by, 10, 128, 128))
    np.testing.assert_array_equal(to_frames_by_duration(ours, 128, 128, 100_000),
                                  sj.by_duration(theirs, 100_000, 128, 128))


@pytest.mark.parametrize(("change", "problem"), [
    ({"x": np.array([0, 4])}, r"events\['x'\] must lie in \[0, 4\), got values in \[0, 4\]"),
    ({"y": np.array([-1, 0])}, r"events\['y'\] must lie in \[0, 3\)"),
    ({"x": np.array([0.0, 1.0])}, r"events\['x'\] must hold integers"),
    ({"p": np.array([0.5, 1.0])}, r"events\['p'\] must hold integers"),
    ({"t": np.array([1, 2, 3])}, "differ in length"),
    ({"t": np.array([[1, 2]])}, "must be 1-D"),
])
def test_bad_events_are_value_errors(change, problem):
    events = {"t": np.array([5, 6]), "x": np.array([0, 1]), "y": np.array([2, 0]),
              "p": np.array([0, 1]), **change}
    with pytest.raises(ValueError, match=problem):
        to_frames(events, 3, 4, 2)
    with pytest.raises(ValueError, match=problem):
        to_frames_by_duration(events, 3, 4, 2)


def test_bad_arguments_are_value_errors():
    events = {"t": np.array([5, 3]), "x": np.array([0, 1]), "y": np.array([0, 0]),
              "p": np.array([0, 1])}
    for kwargs, problem in [({"H": 0}, "H must be >= 1"), ({"W": 2.0}, "W must be an integer"),
                            ({"frames_number": 0}, "frames_number must be >= 1"),
                            ({"split_by": "count"}, "split_by must be one of"),
                            ({"split_by": "time"}, r"sorted by time, but t\[1\] = 3 < t\[0\]")]:
        args = {"H": 1, "W": 2, "frames_number": 2, **kwargs}
        with pytest.raises(ValueError, match=problem):
            to_frames(events, **args)
    assert to_frames(events, 1, 2, 2).sum() == 2                  # number: any order
    with pytest.raises(ValueError, match="sorted by time"):
        to_frames_by_duration(events, 1, 2, 5)
    for duration in (0, True, 1.5):
        with pytest.raises(ValueError, match="duration must be"):
            to_frames_by_duration(events, 1, 2, duration)
    with pytest.raises(ValueError, match="events has no 'p'"):
        to_frames({"t": events["t"], "x": events["x"], "y": events["y"]}, 1, 2, 2)
    with pytest.raises(ValueError, match="dict of arrays"):
        to_frames([1, 2], 1, 2, 2)


@pytest.mark.parametrize(("shape", "size"), [((3, 2, 128, 128), 48), ((2, 34, 34), (48, 48)),
                                             ((128, 128), (64, 32)), ((1, 10, 7), (3, 5))])
def test_resize_is_pils_bilinear_filter(shape, size):
    rng = np.random.default_rng(0)
    frames = rng.poisson(3.0, shape).astype(np.float32)
    out = resize_frames(frames, size)
    h, w = (size, size) if isinstance(size, int) else size
    assert out.shape == (*shape[:-2], h, w) and out.dtype == np.float32
    planes = frames.reshape(-1, *shape[-2:])
    pil = np.stack([np.asarray(Image.fromarray(plane).resize((w, h), Image.Resampling.BILINEAR))
                    for plane in planes]).reshape(out.shape)
    np.testing.assert_allclose(out, pil, atol=1e-4)
    plain = torch.nn.functional.interpolate(torch.from_numpy(planes)[:, None], size=(h, w),
                                            mode="bilinear", align_corners=False)
    np.testing.assert_allclose(resize_frames(frames, size, antialias=False),
                               plain.reshape(out.shape).numpy())


def test_resize_errors():
    for frames, size, problem in [(np.zeros(5), 4, "non-empty array"),
                                  (np.zeros((0, 4, 4)), 4, "non-empty array"),
                                  (np.zeros((4, 4), dtype=bool), 2, "must hold numbers"),
                                  (np.zeros((4, 4)), (1, 2, 3), "int or"),
                                  (np.zeros((4, 4)), 0, "size must be >= 1")]:
        with pytest.raises(ValueError, match=problem):
            resize_frames(frames, size)
