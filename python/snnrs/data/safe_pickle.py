"""Loading untrusted pickle files that may hold only numpy arrays and plain Python data.

A pickle can name any importable callable and call it while loading; the standard CIFAR
batches need just numpy's array reconstruction, so every other global is refused before it
is imported, let alone called. A pickle can also declare sizes that make the unpickler
allocate far more than the file holds; every such size is checked against the file first:

- each opcode's length (a ``BINBYTES8`` of 2**40 bytes, say) and each frame must fit in the
  bytes that follow it, and a memo index must be below the file's size (:func:`check_sizes`,
  before anything is unpickled);
- arrays are only rebuilt the way numpy pickles them: an empty array (``_reconstruct`` with a
  shape of no elements), then filled from data that numpy checks covers the declared shape;
  ``numpy.ndarray`` cannot be called, and only number dtypes (bool, integers, floats) are made,
  never object or record ones.

Example:
    >>> import io, pickle, numpy as np
    >>> from snnrs.data.safe_pickle import load_pickle
    >>> blob = pickle.dumps({b"data": np.arange(3, dtype=np.uint8)}, protocol=2)
    >>> load_pickle(io.BytesIO(blob))[b"data"]
    array([0, 1, 2], dtype=uint8)
    >>> load_pickle(io.BytesIO(pickle.dumps(print)))
    Traceback (most recent call last):
    ...
    _pickle.UnpicklingError: refusing to load builtins.print: only numpy arrays are allowed ...
"""

from __future__ import annotations

import codecs
import io
import math
import pickle
import pickletools
from typing import IO, Any

import numpy as np

# Resolved from numpy itself, not imported by name: numpy 2 moved numpy.core to numpy._core and
# warns when the old path is imported, yet the CIFAR files (pickled by numpy 1) name the old one.
_RECONSTRUCT = np.empty(0).__reduce__()[0]
_FROMBUFFER = np.empty(0).__reduce_ex__(5)[0]
_NUMBER_KINDS = "biuf"
_MEMO_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})


class _ArrayType:
    """What a pickle's ``numpy.ndarray`` stands for: a name that only :func:`_reconstruct`
    accepts, so no pickle can call the array constructor with a shape of its choosing."""

    def __new__(cls, *args: Any, **kwargs: Any) -> _ArrayType:
        raise pickle.UnpicklingError("refusing to call numpy.ndarray: numpy pickles rebuild "
                                     "arrays with _reconstruct, from an empty one")


def _reconstruct(subtype: object, shape: object, dtype: object) -> np.ndarray:
    # numpy pickles rebuild an array as _reconstruct(ndarray, (0,), b"b") and then fill it
    if subtype is not _ArrayType or not isinstance(shape, tuple) or not all(
            isinstance(n, int) and n >= 0 for n in shape) or math.prod(shape) != 0:
        what = "an ndarray" if subtype is _ArrayType else f"a {type(subtype).__name__}"
        raise pickle.UnpicklingError(
            f"refusing numpy _reconstruct of {what} with shape {shape!r:.80}: numpy pickles "
            "start from an empty ndarray and fill it from the data that follows")
    return _RECONSTRUCT(np.ndarray, shape, dtype)


def _number_dtype(*args: Any) -> np.dtype:
    dtype = np.dtype(*args)
    if dtype.kind not in _NUMBER_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise pickle.UnpicklingError(f"refusing numpy dtype {dtype}: only arrays of numbers "
                                     "(bool, integers, floats) are allowed in data files")
    return dtype


def _latin1(text: str, encoding: str) -> bytes:
    # Python 3 writes bytes into protocol-2 pickles as _codecs.encode(text, "latin1").
    if encoding != "latin1":
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    # protocol 5 (Python 3.14's default) writes arrays through _frombuffer instead
    ("numpy.core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy._core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy", "ndarray"): _ArrayType,
    ("numpy", "dtype"): _number_dtype,
    ("_codecs", "encode"): _latin1,
}


class SafeUnpickler(pickle.Unpickler):
    """An unpickler whose ``find_class`` knows only numpy's array reconstruction (give it a
    file whose sizes :func:`check_sizes` checked: :func:`load_pickle` does)."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[module, name]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: only numpy arrays are allowed in data files"
            ) from None


def check_sizes(data: bytes) -> None:
    """An UnpicklingError, saying which size and where, unless every length, frame and memo
    index that the pickle ``data`` declares fits in ``data``: walks the opcodes without
    building anything (:func:`pickletools.genops`).

    Example:
        >>> import struct
        >>> check_sizes(b"\\x80\\x04\\x8e" + struct.pack("<Q", 2**40) + b"abc.")
        Traceback (most recent call last):
        ...
        _pickle.UnpicklingError: opcode BINBYTES8 at byte 2: expected 1099511627776 bytes ...
    """
    stream = io.BytesIO(data)
    start = 0  # where the opcode being read starts
    try:
        for opcode, arg, pos in pickletools.genops(stream):
            if opcode.name in _MEMO_PUTS and arg >= len(data):
                problem = f"memo index {arg} is past what {len(data)} bytes can hold"
            elif opcode.name == "FRAME" and arg > len(data) - stream.tell():
                problem = f"a frame of {arg} bytes, but only {len(data) - stream.tell()} remain"
            else:
                start = stream.tell()
                continue
            raise pickle.UnpicklingError(f"opcode {opcode.name} at byte {pos}: {problem}")
    except ValueError as err:   # a length past the end, an unknown opcode, no STOP
        opcode = pickletools.code2op.get(chr(data[start])) if start < len(data) else None
        raise pickle.UnpicklingError(
            f"opcode {opcode.name if opcode else '(none)'} at byte {start}: {err}") from None


def load_pickle(file: IO[bytes]) -> Any:
    """Unpickles ``file`` (read whole) with :class:`SafeUnpickler` once :func:`check_sizes`
    passed; Python 2 strings come back as bytes."""
    data = file.read()
    check_sizes(data)
    return SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
