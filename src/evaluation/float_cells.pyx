# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# distutils: extra_compile_args = -O3
"""The passes over a frame's pixels that the smiyc protocol makes, one loop each instead of a dozen NumPy passes:
for a float32 frame (protocols._frame_bins_float32) the histogram of the pixels' cells, the gathering of the
pixels of the cells it wants sorted and their sort; for a float16 frame the histogram of its bit patterns.

A pixel's cell is its row (0 in-distribution, 1 OoD, 2 any other label) and the top `cell_bits` bits of its
order key (the float's bits with the 31 value bits of a negative float flipped, -0.0 taken as +0.0:
pixel_metrics.float_order_keys), numbered row * 2**cell_bits + top bits + 2**(cell_bits - 1). The frame comes
as its float32 bits (score.view(np.int32)).
"""
import numpy as np
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t


cdef inline int32_t order_key(int32_t bits) noexcept nogil:
    if bits == -2147483647 - 1:  # -0.0 equals +0.0
        return 0
    if bits < 0:
        return bits ^ 0x7FFFFFFF
    return bits


cdef inline Py_ssize_t cell_of(int32_t key, uint8_t label, int cell_bits) noexcept nogil:
    cdef Py_ssize_t row = label if label < 2 else 2
    return (row << cell_bits) + (key >> (32 - cell_bits)) + (1 << (cell_bits - 1))


def cell_histogram(const int32_t[::1] bits, const uint8_t[::1] label, int cell_bits):
    """(3 * 2**cell_bits,) int32 number of pixels in each cell."""
    if bits.shape[0] >= 2**31:
        raise ValueError("a frame of 2**31 pixels or more")
    # int32 counts: half the table of int64, and the table's cache misses are most of the pass
    histogram = np.zeros(3 << cell_bits, np.int32)
    cdef int32_t[::1] counts = histogram
    cdef Py_ssize_t i
    with nogil:
        for i in range(bits.shape[0]):
            counts[cell_of(order_key(bits[i]), label[i], cell_bits)] += 1
    return histogram


def gather_cells(const int32_t[::1] bits, const uint8_t[::1] label, const int32_t[::1] rank_of, int32_t first,
                 int cell_bits, Py_ssize_t total):
    """(total,) int32 entries, in pixel order, of the pixels whose cell has a rank of at least `first`
    (rank_of[cell], -1 for a cell without one): the rank shifted left by the key's low 32 - cell_bits bits, or-ed
    with them. `total` is how many pixels those cells hold (from cell_histogram); ranks must stay below
    2**(cell_bits - 1)."""
    # one slot more than wanted: every pixel is written at the next free slot (the last one while full), and the
    # slot advances only for a wanted one, so that the loop has no branch to mispredict
    entries = np.empty(total + 1, np.int32)
    cdef int32_t[::1] out = entries
    cdef int low_bits = 32 - cell_bits
    cdef int32_t mask = (1 << low_bits) - 1
    cdef int32_t key, rank
    cdef Py_ssize_t i, found = 0
    with nogil:
        for i in range(bits.shape[0]):
            key = order_key(bits[i])
            rank = rank_of[cell_of(key, label[i], cell_bits)]
            out[found if found < total else total] = (rank << low_bits) | (key & mask)
            found += rank >= first
    if found != total:
        raise ValueError(f"the wanted cells hold {found} pixels, not {total}")
    return entries[:total]


def float16_histogram(const uint16_t[::1] bits, const uint8_t[::1] label):
    """(3, 65536) int64 number of pixels of each row with each float16 bit pattern (a float16 frame's cells are
    its bit patterns)."""
    histogram = np.zeros((3, 1 << 16), np.int64)
    cdef int64_t[:, ::1] counts = histogram
    cdef Py_ssize_t i
    with nogil:
        for i in range(bits.shape[0]):
            counts[label[i] if label[i] < 2 else 2, bits[i]] += 1
    return histogram


def sort_entries(int32_t[::1] entries):
    """Sorts non-negative int32 in place: a radix sort of two 16-bit digits, a few times faster than np.sort on
    the gathered entries of a frame (a few 10**5)."""
    cdef Py_ssize_t n = entries.shape[0], i, shift
    if n < 2:
        return
    cdef int32_t[::1] other = np.empty(n, np.int32)
    cdef int32_t[::1] src = entries, dst = other
    cdef Py_ssize_t[::1] start = np.empty(1 << 16, np.intp)
    cdef Py_ssize_t total, count
    for shift in (0, 16):
        with nogil:
            start[:] = 0
            for i in range(n):
                start[(src[i] >> shift) & 0xFFFF] += 1
            total = 0
            for i in range(1 << 16):
                count = start[i]
                start[i] = total
                total += count
            for i in range(n):
                dst[start[(src[i] >> shift) & 0xFFFF]] = src[i]
                start[(src[i] >> shift) & 0xFFFF] += 1
        src, dst = dst, src
    # two passes: the sorted entries are back in `entries`
