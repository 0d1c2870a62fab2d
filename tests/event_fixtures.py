"""Byte-level writers of event files, written from the formats' specifications, for the
readers' tests and benchmark; and SpikingJelly's own event readers and integrators to compare
with, imported behind stand-ins for the torchvision / torchaudio / h5py modules its dataset
package imports but these functions never use.

Formats:

- N-MNIST (ATIS ``.bin``, G. Orchard's dataset page): 40 bits per event, big-endian:
  x (bits 39-32), y (31-24), polarity (23), timestamp in microseconds (22-0). The authors'
  loader treats a record with ``y == 240`` as a timestamp-overflow marker that adds ``2**13``
  to later timestamps.
- CIFAR10-DVS (jAER AEDAT 2.0): ``#``-prefixed CRLF header lines, the first ``#!AER-DAT2.0``,
  then per event a big-endian int32 address and int32 timestamp. DVS128 addresses: polarity
  bit 0, column bits 1-7, row bits 8-14.
- DVS128 Gesture (iniVation AEDAT 3.1): ``#!AER-DAT3.1`` ... ``#!END-HEADER`` CRLF lines,
  then packets: a 28-byte little-endian header (int16 eventType, int16 eventSource, int32
  eventSize, eventTSOffset, eventTSOverflow, eventCapacity, eventNumber, eventValid), then the
  events. Polarity events (type 1, 8 bytes): uint32 with valid bit 0, polarity bit 1, y bits
  2-16, x bits 17-31; int32 timestamp, the low 31 bits of the 64-bit time whose upper bits
  are the packet's eventTSOverflow. Special events (type 0) are 8 bytes, IMU6 (type 3) 36.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import struct
import sys
import types
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from snnrs.data.events.datasets import CIFAR10_CLASSES

OVERFLOW_Y = 240
OVERFLOW_STEP = 2**13
AEDAT2_HEADER = (b"#!AER-DAT2.0\r\n"
                 b"# This is a raw AE data file - do not edit\r\n"
                 b"# Data format is int32 address, int32 timestamp (8 bytes total), "
                 b"repeated for each event\r\n"
                 b"# Timestamps tick is 1 us\r\n"
                 b"# created Thu Jan 01 00:00:00 UTC 2015\r\n")
AEDAT3_HEADER = (b"#!AER-DAT3.1\r\n"
                 b"#Format: RAW\r\n"
                 b"#Source 1: DVS128\r\n"
                 b"#Start-Time: 2016-01-01 00:00:00 (TZ+0000)\r\n"
                 b"#!END-HEADER\r\n")
PACKET_HEADER = struct.Struct("<hhiiiiii")
SPECIAL, POLARITY, IMU6 = 0, 1, 3
EVENT_SIZE = {SPECIAL: 8, POLARITY: 8, IMU6: 36}


# ------------------------------------------------------------------------------------ N-MNIST


def atis_records(x: Sequence[int], y: Sequence[int], p: Sequence[int],
                 ts: Sequence[int]) -> bytes:
    """The 5-byte records of raw events (``ts`` < 2**23, each field as stored)."""
    x, y, p, ts = (np.asarray(a, dtype=np.int64) for a in (x, y, p, ts))
    assert ((0 <= x) & (x < 256) & (0 <= y) & (y < 256)).all() and ((p == 0) | (p == 1)).all()
    assert ((0 <= ts) & (ts < 2**23)).all()
    word = (x << 32) | (y << 24) | (p << 23) | ts           # 40 bits, written big-endian
    as_u8 = word.astype(">u8").view(np.uint8).reshape(-1, 8)
    return as_u8[:, 3:].tobytes()


def nmnist_with_overflow(x: Sequence[int], y: Sequence[int], p: Sequence[int],
                         t: Sequence[int]) -> bytes:
    """Records for events at non-decreasing absolute times ``t``: an overflow marker
    (``y == 240``) wherever ``t >> 13`` steps up, and ``t mod 2**13`` in each event."""
    x, y, p, t = (np.asarray(a, dtype=np.int64) for a in (x, y, p, t))
    assert (np.diff(t) >= 0).all() and (y != OVERFLOW_Y).all()
    wraps = t // OVERFLOW_STEP
    markers = np.diff(wraps, prepend=0)                     # markers before each event
    position = np.arange(t.size) + np.cumsum(markers)       # each event's record index
    size = t.size + int(markers.sum())
    rx, ry, rp, rts = (np.zeros(size, np.int64) for _ in range(4))
    ry[:] = OVERFLOW_Y
    rx[position], ry[position], rp[position], rts[position] = x, y, p, t % OVERFLOW_STEP
    return atis_records(rx, ry, rp, rts)


def write_atis_bin(path: Path, records: bytes) -> Path:
    path.write_bytes(records)
    return path


# -------------------------------------------------------------------------------- CIFAR10-DVS


def dvs128_address(column: Sequence[int], row: Sequence[int], polarity: Sequence[int],
                   junk: Sequence[int] | int = 0) -> np.ndarray:
    """jAER DVS128 addresses; ``junk`` fills the bits the address layout does not use."""
    column, row, polarity = (np.asarray(a, dtype=np.uint64) for a in (column, row, polarity))
    assert (column < 128).all() and (row < 128).all() and (polarity < 2).all()
    unused = np.asarray(junk, dtype=np.uint64) & np.uint64(0xFFFF8000)
    return (unused | (row << np.uint64(8)) | (column << np.uint64(1)) | polarity).astype(
        np.uint32)


def write_aedat2(path: Path, address: Sequence[int], timestamp: Sequence[int],
                 header: bytes = AEDAT2_HEADER) -> Path:
    """An AEDAT 2.0 file: ``header``, then (address, timestamp) as big-endian 32-bit pairs."""
    events = np.empty(len(address), dtype=[("address", ">u4"), ("timestamp", ">u4")])
    events["address"], events["timestamp"] = address, timestamp
    path.write_bytes(header + events.tobytes())
    return path


# ----------------------------------------------------------------------------- DVS128 Gesture


def polarity_packet(x: np.ndarray, y: np.ndarray, p: np.ndarray, t: np.ndarray) -> bytes:
    """One polarity packet; all ``t`` must share ``t >> 31``."""
    overflow = {int(v) for v in np.asarray(t, dtype=np.int64) >> 31}
    assert len(overflow) <= 1
    assert all(((0 <= np.asarray(a)) & (np.asarray(a) < 2**15)).all() for a in (x, y))
    events = np.empty(len(t), dtype=[("data", "<u4"), ("timestamp", "<i4")])
    events["data"] = ((np.asarray(x, np.uint64) << np.uint64(17))
                      | (np.asarray(y, np.uint64) << np.uint64(2))
                      | (np.asarray(p, np.uint64) << np.uint64(1)) | np.uint64(1))
    events["timestamp"] = np.asarray(t, np.int64) & 0x7FFFFFFF
    n = len(t)
    head = PACKET_HEADER.pack(POLARITY, 1, 8, 4, overflow.pop() if overflow else 0, n, n, n)
    return head + events.tobytes()


def other_packet(kind: int, n: int, fill: int = 0x23) -> bytes:
    """A packet of ``n`` events of another type (their bytes all ``fill``)."""
    size = EVENT_SIZE[kind]
    return PACKET_HEADER.pack(kind, 1, size, 4, 0, n, n, n) + bytes([fill]) * (size * n)


def aedat3_packets(x: Sequence[int], y: Sequence[int], p: Sequence[int], t: Sequence[int],
                   packet_events: int = 4096, others: bool = True,
                   rng: np.random.Generator | None = None) -> list[bytes]:
    """The packets of a recording: polarity packets of at most ``packet_events`` events, cut
    where ``t >> 31`` changes (random sizes with ``rng``), with special and IMU6 packets
    between them when ``others``."""
    x, y, p, t = (np.asarray(a, dtype=np.int64) for a in (x, y, p, t))
    cuts = set(np.flatnonzero(np.diff(t >> 31)) + 1)
    start, packets = 0, []
    if others:
        packets.append(other_packet(SPECIAL, 1))
    while start < t.size:
        size = packet_events if rng is None else int(rng.integers(1, packet_events + 1))
        stop = min([start + size, t.size, *[c for c in cuts if c > start]])
        packets.append(polarity_packet(x[start:stop], y[start:stop], p[start:stop],
                                       t[start:stop]))
        if others and len(packets) % 3 == 0:
            packets.append(other_packet(IMU6, 2))
            packets.append(other_packet(SPECIAL, 0))
        start = stop
    return packets


def write_aedat3(path: Path, packets: Sequence[bytes], header: bytes = AEDAT3_HEADER) -> Path:
    path.write_bytes(header + b"".join(packets))
    return path


def write_gesture_labels(path: Path, rows: Sequence[tuple[int, int, int]]) -> Path:
    """A ``*_labels.csv``: header, then ``class,start,end`` lines."""
    lines = ["class,startTime_usec,endTime_usec", *(f"{c},{s},{e}" for c, s, e in rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


# ------------------------------------------------------------------------------------ events


def write_cifar10_dvs(root: Path, per_class: int = 10, events: int = 500, seed: int = 1,
                      classes: Sequence[str] = CIFAR10_CLASSES) -> Path:
    """CIFAR10-DVS's layout in ``root``: ``per_class`` AEDAT 2.0 recordings of ``events``
    random DVS128 events in each class folder."""
    rng = np.random.default_rng(seed)
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            address = dvs128_address(rng.integers(0, 128, events), rng.integers(0, 128, events),
                                     rng.integers(0, 2, events))
            write_aedat2(root / name / f"cifar10_{name}_{i}.aedat", address,
                         np.sort(rng.integers(0, 10**6, events)))
    return root


def random_events(rng: np.random.Generator, n: int, H: int, W: int, span: int,
                  start: int = 0) -> dict[str, np.ndarray]:
    """``n`` events at sorted random times in ``[start, start + span)``, int64 fields."""
    return {"t": np.sort(rng.integers(start, start + span, n)), "x": rng.integers(0, W, n),
            "y": rng.integers(0, H, n), "p": rng.integers(0, 2, n)}


# ------------------------------------------------------------------------------ SpikingJelly


def _stand_ins() -> dict[str, types.ModuleType]:
    """Modules ``spikingjelly.datasets`` imports that are not installed, as empty stand-ins."""
    def unavailable(*args: object, **kwargs: object) -> None:
        raise RuntimeError("stand-in for a module that is not installed")

    names = {"torchvision": {}, "torchvision.transforms": {},
             "torchvision.datasets": {"DatasetFolder": type("DatasetFolder", (), {})},
             "torchvision.datasets.utils": dict.fromkeys(
                 ("extract_archive", "check_integrity", "download_url", "verify_str_arg"),
                 unavailable),
             "torchaudio": {}, "h5py": {"File": type("File", (), {})}}
    fakes: dict[str, types.ModuleType] = {}
    for name, attrs in names.items():
        root = name.split(".")[0]
        if importlib.util.find_spec(root) is not None:
            continue
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        fakes[name] = module
        parent, _, child = name.rpartition(".")
        if parent in fakes:
            setattr(fakes[parent], child, module)
    return fakes


@contextlib.contextmanager
def spikingjelly_datasets() -> Iterator[types.SimpleNamespace]:
    """SpikingJelly's event functions; ``sys.modules`` is as before once the block exits.

    Raises ImportError when SpikingJelly's dataset package cannot be imported."""
    before = set(sys.modules)
    fakes = _stand_ins()
    sj = sys.modules.get("spikingjelly")
    had_datasets = sj is not None and hasattr(sj, "datasets")
    sys.modules.update(fakes)
    try:
        utils = importlib.import_module("spikingjelly.datasets.utils")
        cifar = importlib.import_module("spikingjelly.datasets.cifar10_dvs")
        gesture = importlib.import_module("spikingjelly.datasets.dvs128_gesture")
        yield types.SimpleNamespace(
            load_atis_bin=utils.load_ATIS_bin, load_aedat_v3=utils.load_aedat_v3,
            load_cifar10_dvs=cifar._load_origin_data,
            split_gesture_file=gesture._split_aedat_files_to_np,
            by_frames_number=utils.integrate_events_by_fixed_frames_number,
            by_duration=utils.integrate_events_by_fixed_duration)
    finally:
        for name in set(sys.modules) - before:
            if name in fakes or name.startswith("spikingjelly.datasets"):
                del sys.modules[name]
        sj = sys.modules.get("spikingjelly")
        if sj is not None and not had_datasets and hasattr(sj, "datasets"):
            delattr(sj, "datasets")
