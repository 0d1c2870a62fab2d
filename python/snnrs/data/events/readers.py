"""Readers for the original event files of N-MNIST, CIFAR10-DVS and DVS128 Gesture.

Each reader returns an events dict: ``"t"``, ``"x"``, ``"y"``, ``"p"`` -> 1-D numpy arrays
``[N]`` in file order, with the values SpikingJelly 2.0.0's readers give for the same file
(``spikingjelly.datasets.utils.load_ATIS_bin``, ``cifar10_dvs._load_origin_data`` and
``utils.load_aedat_v3``) and their dtypes:

============================  ==========  ===========  ===========  ============
reader                        ``t``       ``x``        ``y``        ``p``
============================  ==========  ===========  ===========  ============
:func:`read_atis_bin`         uint32      uint32       uint32       uint32
:func:`read_aedat2`           uint32 [*]  uint32       uint32       int64
:func:`read_aedat3`           int64       int64        int64        int64
============================  ==========  ===========  ===========  ============

[*] SpikingJelly's CIFAR10-DVS ``t`` is a big-endian view (``>u4``) of the file; ours holds
the same values in native byte order.

A truncated or malformed file raises a ValueError that starts with the file's path and says
what is wrong; a missing file raises FileNotFoundError.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from snnrs.data.events import read_atis_bin
    >>> with tempfile.TemporaryDirectory() as root:
    ...     path = Path(root, "00002.bin")
    ...     _ = path.write_bytes(bytes([3, 4, 0x80, 0x01, 0x02]))   # x 3, y 4, ON, t 258 us
    ...     events = read_atis_bin(path)
    >>> {k: v.tolist() for k, v in events.items()}
    {'t': [258], 'x': [3], 'y': [4], 'p': [1]}
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from ._checks import Events, bad_file

ATIS_EVENT_BYTES = 5
"""N-MNIST: one event is 40 bits: x (8), y (8), polarity (1), timestamp (23, microseconds)."""

ATIS_OVERFLOW_Y = 240
"""N-MNIST: a record with ``y == 240`` is a timestamp-overflow marker, not an event."""

ATIS_OVERFLOW_STEP = 2**13
"""N-MNIST: what each overflow marker adds to the timestamps after it (Orchard's loader)."""

AEDAT2_EVENT_BYTES = 8
"""AEDAT 2.0: big-endian uint32 address, then big-endian uint32 timestamp (microseconds)."""

AEDAT3_PACKET_HEADER = struct.Struct("<HHIIIIII")
"""AEDAT 3.1 packet header (28 bytes, little-endian): eventType, eventSource, eventSize,
eventTSOffset, eventTSOverflow, eventCapacity, eventNumber, eventValid."""

AEDAT3_POLARITY = 1
"""AEDAT 3.1 eventType of polarity events (8 bytes: uint32 data, int32 timestamp)."""

_END_HEADER = b"#!END-HEADER"


def _read(path: str | os.PathLike) -> tuple[Path, bytes]:
    path = Path(path)
    return path, path.read_bytes()


def read_atis_bin(path: str | os.PathLike, *, overflow: bool = True) -> Events:
    """Events of one N-MNIST (ATIS) ``.bin`` file.

    Each event is 5 bytes: x (byte 0), y (byte 1), polarity (top bit of byte 2), timestamp
    (the low 7 bits of byte 2, then bytes 3 and 4: 23 bits, big-endian, microseconds).

    Args:
        path: the ``.bin`` file.
        overflow: handle timestamp-overflow markers as the dataset's authors' loader does
            (G. Orchard's ``eventvision.read_dataset``, also tonic's ``read_mnist_file``): a
            record with ``y == 240`` is no event; it adds ``2**13`` to its own and every later
            timestamp, and is dropped. N-MNIST recordings (about 300 ms, far below the 23-bit
            range) hold no markers, so then the result equals SpikingJelly's ``load_ATIS_bin``,
            which does not look for them; ``overflow=False`` reads like SpikingJelly on any
            file (markers kept as events with ``y == 240``).

    Returns:
        ``t``, ``x``, ``y``, ``p``: uint32 arrays ``[N]``; ``p`` is 1 for ON, 0 for OFF.

    Raises:
        ValueError: the file's size is not a multiple of 5 bytes, or the markers push a
            timestamp past the uint32 range.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> records = bytes([1, 2, 0x00, 0, 9,   0, 240, 0, 0, 0,   5, 6, 0x80, 0, 7])
        >>> with tempfile.TemporaryDirectory() as root:
        ...     path = Path(root, "sample.bin")
        ...     _ = path.write_bytes(records)
        ...     read_atis_bin(path)["t"].tolist(), read_atis_bin(path, overflow=False)["y"]
        ([9, 8199], array([  2, 240,   6], dtype=uint32))
    """
    path, data = _read(path)
    if len(data) % ATIS_EVENT_BYTES:
        raise bad_file(path, f"truncated ATIS event file: {len(data)} bytes is not a whole "
                             f"number of {ATIS_EVENT_BYTES}-byte events "
                             f"({len(data) % ATIS_EVENT_BYTES} bytes left over)")
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, ATIS_EVENT_BYTES)
    x = records[:, 0].astype(np.uint32)
    y = records[:, 1].astype(np.uint32)
    third = records[:, 2].astype(np.uint32)
    p = third >> 7
    t = ((third & 0x7F) << 16) | (records[:, 3].astype(np.uint32) << 8) | records[:, 4]
    if overflow:
        marker = y == ATIS_OVERFLOW_Y
        if marker.any():
            shifted = t + np.cumsum(marker, dtype=np.uint64) * np.uint64(ATIS_OVERFLOW_STEP)
            keep = ~marker
            shifted = shifted[keep]
            if shifted.size and int(shifted.max()) > np.iinfo(np.uint32).max:
                raise bad_file(path, f"{int(marker.sum())} timestamp-overflow markers push "
                                     "timestamps past 2**32 - 1")
            t, x, y, p = shifted.astype(np.uint32), x[keep], y[keep], p[keep]
    return {"t": t, "x": x, "y": y, "p": p}


def _aedat2_header_end(path: Path, data: bytes) -> int:
    """Offset of the first event: after the leading lines that start with ``#``."""
    pos = 0
    while data.startswith(b"#", pos):
        newline = data.find(b"\n", pos)
        line_end = len(data) if newline < 0 else newline + 1
        if pos == 0 and data.startswith(b"#!AER-DAT", 0):
            version = data[9:line_end].strip().decode("ascii", "replace")
            if not version.startswith("2."):
                hint = " (read it with read_aedat3)" if version.startswith("3.") else ""
                raise bad_file(path, f"AEDAT {version} file, expected AEDAT 2.0{hint}")
        pos = line_end
    return pos


def read_aedat2(path: str | os.PathLike) -> Events:
    """Events of one CIFAR10-DVS ``.aedat`` file (jAER AEDAT 2.0, DVS128 addresses).

    The file is a header of lines starting with ``#`` (the first one ``#!AER-DAT2.0``), then
    8-byte events: a big-endian uint32 address and a big-endian uint32 timestamp
    (microseconds). The DVS128 address holds the polarity in bit 0, the sensor column in bits
    1-7 and the sensor row in bits 8-14; other bits are ignored. As SpikingJelly's
    ``cifar10_dvs`` reader (which follows events-tfds), the image is rotated and the polarity
    inverted: ``x = 127 - row``, ``y = 127 - column``, ``p = 1 - bit 0``.

    Returns:
        ``t`` uint32, ``x`` and ``y`` uint32 in ``[0, 127]``, ``p`` int64 in ``{0, 1}``,
        each ``[N]``.

    Raises:
        ValueError: the event data is not a whole number of 8-byte events, or the header
            names another AEDAT version.

    Example:
        >>> import tempfile
        >>> import numpy as np
        >>> from pathlib import Path
        >>> address = (5 << 8) | (9 << 1) | 1            # row 5, column 9, bit 0 set
        >>> body = np.array([[address, 1000]], dtype=">u4").tobytes()
        >>> with tempfile.TemporaryDirectory() as root:
        ...     path = Path(root, "cifar10_cat_0.aedat")
        ...     _ = path.write_bytes(b"#!AER-DAT2.0\\r\\n# jAER\\r\\n" + body)
        ...     events = read_aedat2(path)
        >>> {k: v.tolist() for k, v in events.items()}
        {'t': [1000], 'x': [122], 'y': [118], 'p': [0]}
    """
    path, data = _read(path)
    start = _aedat2_header_end(path, data)
    size = len(data) - start
    if size % AEDAT2_EVENT_BYTES:
        raise bad_file(path, f"truncated AEDAT 2.0 event data: {size} bytes after the "
                             f"{start}-byte header is not a whole number of "
                             f"{AEDAT2_EVENT_BYTES}-byte events")
    words = np.frombuffer(data, dtype=">u4", offset=start).reshape(-1, 2)
    address = words[:, 0].astype(np.uint32)
    row = (address >> 8) & 0x7F
    column = (address >> 1) & 0x7F
    return {"t": words[:, 1].astype(np.uint32), "x": np.uint32(127) - row,
            "y": np.uint32(127) - column, "p": 1 - (address & 1).astype(np.int64)}


def _aedat3_header_end(path: Path, data: bytes) -> int:
    """Offset of the first packet: after the ``#!END-HEADER`` line."""
    if not data.startswith(b"#!AER-DAT"):
        raise bad_file(path, f"not an AEDAT file: it starts with {data[:16]!r}, "
                             "not '#!AER-DAT3.1'")
    newline = data.find(b"\n")
    first = data[:len(data) if newline < 0 else newline].strip().decode("ascii", "replace")
    if not first[len("#!AER-DAT"):].startswith("3."):
        raise bad_file(path, f"{first!r}: expected an AEDAT 3.x file")
    pos = 0
    while data.startswith(b"#", pos):
        newline = data.find(b"\n", pos)
        if newline < 0:
            break
        line, pos = data[pos:newline], newline + 1
        if line.rstrip(b"\r") == _END_HEADER:
            return pos
    raise bad_file(path, f"the header has no '#!END-HEADER' line (header ends at byte {pos})")


def read_aedat3(path: str | os.PathLike) -> Events:
    """Polarity events of one DVS128 Gesture ``.aedat`` file (AEDAT 3.1).

    After the text header (``#!AER-DAT3.1`` ... ``#!END-HEADER``) the file is a sequence of
    packets: a 28-byte little-endian header (:data:`AEDAT3_PACKET_HEADER`) then
    ``eventCapacity`` events of ``eventSize`` bytes. As SpikingJelly's ``load_aedat_v3``, only
    packets of polarity events (eventType 1) are kept, all ``eventCapacity`` of their events
    are read and the valid bit is not looked at. A polarity event is a uint32 (bit 1
    polarity, bits 2-16 y, bits 17-31 x) and a 31-bit timestamp; the full timestamp is
    ``timestamp | eventTSOverflow << 31`` (microseconds).

    Returns:
        ``t``, ``x``, ``y``, ``p``: int64 arrays ``[N]``, in file order. (SpikingJelly gives
        float64 arrays when the file holds no polarity events; these stay int64.)

    Raises:
        ValueError: no AEDAT 3.x header or no ``#!END-HEADER`` line, a packet header or
            packet cut short, or polarity events that are not 8 bytes.

    Example:
        >>> import struct, tempfile
        >>> import numpy as np
        >>> from pathlib import Path
        >>> data = (100 << 17) | (7 << 2) | (1 << 1) | 1  # x 100, y 7, ON, valid
        >>> event = np.array([(data, 5)], dtype=[("data", "<u4"), ("ts", "<i4")]).tobytes()
        >>> packet = struct.pack("<hhiiiiii", 1, 1, 8, 4, 2, 1, 1, 1) + event  # overflow 2
        >>> with tempfile.TemporaryDirectory() as root:
        ...     path = Path(root, "user01_fluorescent.aedat")
        ...     _ = path.write_bytes(b"#!AER-DAT3.1\\r\\n#!END-HEADER\\r\\n" + packet)
        ...     events = read_aedat3(path)
        >>> {k: v.tolist() for k, v in events.items()}
        {'t': [4294967301], 'x': [100], 'y': [7], 'p': [1]}
    """
    path, data = _read(path)
    pos = _aedat3_header_end(path, data)
    header_size = AEDAT3_PACKET_HEADER.size
    starts: list[int] = []
    counts: list[int] = []
    overflows: list[int] = []
    end = len(data)
    while pos < end:
        if end - pos < header_size:
            raise bad_file(path, f"truncated packet header at byte {pos}: {end - pos} of "
                                 f"{header_size} bytes")
        kind, _, size, _, overflow, capacity, _, _ = AEDAT3_PACKET_HEADER.unpack_from(data, pos)
        body = size * capacity
        if pos + header_size + body > end:
            raise bad_file(path, f"truncated packet at byte {pos}: {capacity} events of {size} "
                                 f"bytes need {body} bytes, {end - pos - header_size} remain")
        if kind == AEDAT3_POLARITY:
            if size != 8:
                raise bad_file(path, f"polarity packet at byte {pos} has {size}-byte events, "
                                     "expected 8")
            if capacity:
                starts.append(pos + header_size)
                counts.append(capacity)
                overflows.append(overflow)
        pos += header_size + body
    words = np.concatenate([np.frombuffer(data, dtype="<u4", count=2 * n, offset=s)
                            for s, n in zip(starts, counts, strict=True)]
                           ) if starts else np.zeros(0, dtype=np.uint32)
    words = words.reshape(-1, 2)
    address = words[:, 0].astype(np.int64)
    wraps = np.repeat(np.asarray(overflows, dtype=np.int64), counts)
    return {"t": words[:, 1].astype(np.int64) | (wraps << 31),
            "x": (address >> 17) & 0x7FFF, "y": (address >> 2) & 0x7FFF,
            "p": (address >> 1) & 1}
