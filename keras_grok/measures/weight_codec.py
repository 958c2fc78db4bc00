"""Bytes of weights: serialization of coarse-grained weights and their compression.

Paper B (DeMoss et al., *The Complexity Dynamics of Grokking*, arXiv 2412.09810)
measures complexity as the compressed size of the coarse-grained weights (bzip2),
against a naive baseline: the raw float32 weights, compressed. Compression is
inherently host-side, so this module is NumPy and the standard library's codecs.
"""

from __future__ import annotations

import bz2
import lzma
import math
import struct
import zlib
from collections.abc import Callable, Sequence

import numpy as np

from keras_grok.measures.coarse_graining import CoarseGrained, finite_array

CODECS: dict[str, Callable[[bytes], bytes]] = {
    "bzip2": lambda data: bz2.compress(data, 9),
    "lzma": lambda data: lzma.compress(data, preset=9),
    "zlib": lambda data: zlib.compress(data, 9),
}
"""Compressors by name; paper B uses bzip2."""


def compressor(codec: str) -> Callable[[bytes], bytes]:
    """The compressor named ``codec``; ValueError listing the allowed names."""
    if codec not in CODECS:
        raise ValueError(f"Unknown codec {codec!r}. Allowed: {', '.join(CODECS)}.")
    return CODECS[codec]


def _zigzag(codes: np.ndarray) -> np.ndarray:
    """Maps signed to unsigned integers: 0, -1, 1, -2, ... -> 0, 1, 2, 3, ..."""
    codes = codes.astype(np.int64)
    return ((codes << 1) ^ (codes >> 63)).astype(np.uint64)


def _smallest_unsigned(values: np.ndarray) -> np.ndarray:
    top = int(values.max()) if values.size else 0
    for dtype in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max:
            return values.astype(dtype)
    return values


def _array_bytes(codes: np.ndarray) -> bytes:
    """One array: rank, integer width and shape (int32s), then its zig-zag codes."""
    packed = _smallest_unsigned(_zigzag(codes.ravel()))
    header = struct.pack(
        f"<{2 + codes.ndim}I", codes.ndim, packed.itemsize, *codes.shape
    )
    return header + packed.astype(packed.dtype.newbyteorder("<")).tobytes()


def serialize(coarse: CoarseGrained) -> bytes:
    """A deterministic byte string of the coarse-grained weights.

    Header: the bin size (float64) and the number of arrays; if the weights have
    different bin sizes the header's bin size is NaN and one float64 per weight
    follows. Then per stored array its rank, shape and integer width
    (little-endian int32s), then its grid codes, zig-zag encoded (0, -1, 1, -2 ->
    0, 1, 2, 3) as the smallest unsigned integer type that holds them,
    little-endian. Small integers compress far better than the float bytes of the
    quantized values they stand for.
    """
    arrays = [c for parts in coarse.codes for c in parts]
    common = coarse.bin_size
    chunks = [struct.pack("<dI", common, len(arrays))]
    if math.isnan(common):
        chunks.append(struct.pack(f"<{len(coarse.bin_sizes)}d", *coarse.bin_sizes))
    chunks.extend(_array_bytes(codes) for codes in arrays)
    return b"".join(chunks)


def compressed_size(coarse: CoarseGrained, codec: str = "bzip2") -> int:
    """Bytes of ``serialize(coarse)`` compressed with ``codec`` (paper B: bzip2).

    Args:
        coarse: coarse-grained weights.
        codec: ``"bzip2"``, ``"lzma"`` or ``"zlib"``. Defaults to `"bzip2"`.
    """
    return len(compressor(codec)(serialize(coarse)))


def weight_sizes(coarse: CoarseGrained, codec: str = "bzip2") -> tuple[int, ...]:
    """Per weight, the compressed bytes of its arrays alone.

    Their sum approximates ``compressed_size(coarse)`` (which compresses them
    together); the per-matrix complexity search ranks its moves by it.

    Args:
        coarse: coarse-grained weights.
        codec: ``"bzip2"``, ``"lzma"`` or ``"zlib"``. Defaults to `"bzip2"`.
    """
    compress = compressor(codec)
    return tuple(
        len(compress(b"".join(_array_bytes(c) for c in parts)))
        for parts in coarse.codes
    )


def naive_size(weights: Sequence, codec: str = "bzip2") -> int:
    """Bytes of the raw float32 weights, compressed: paper B's naive baseline.

    Args:
        weights: arrays (or variables) in a fixed order.
        codec: ``"bzip2"``, ``"lzma"`` or ``"zlib"``. Defaults to `"bzip2"`.
    """
    raw = b"".join(
        np.ascontiguousarray(finite_array(w, i), dtype="<f4").tobytes()
        for i, w in enumerate(weights)
    )
    return len(compressor(codec)(raw))
