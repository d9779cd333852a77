# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# distutils: extra_compile_args = -O3
"""np.argsort(values) of float64 values exactly as numpy 1.23 (the SegmentMeIfYouCan benchmark's pin) orders them.

The benchmark merges the frames' thresholds with np.argsort (kind "quicksort"), and the first point of its
curve depends on which of several equal thresholds that sort puts last. numpy 1.23 sorts with an introsort
(median-of-three quicksort, insertion sort up to 16 elements, heapsort past a depth of 2 log2(n)); numpy 2
sorts with SIMD networks that order equal values differently. This module is our implementation of that
introsort, checked against numpy 1.23's np.argsort by bench/smiyc_agreement.py; it needs values without NaN.
"""
import numpy as np

cdef enum:
    SMALL = 15  # partitions of at most this many + 1 elements are insertion-sorted
    STACK = 128


cdef inline void swap(long long *a, long long *b) noexcept nogil:
    cdef long long t = a[0]
    a[0] = b[0]
    b[0] = t


cdef inline void sift_down(const double *v, long long *heap, long long node, long long size) noexcept nogil:
    """Moves heap[node] down the max-heap heap[1..size] (1-based) to where it belongs."""
    cdef long long moving = heap[node]
    cdef long long child = 2 * node
    while child <= size:
        if child < size and v[heap[child]] < v[heap[child + 1]]:
            child += 1
        if not v[moving] < v[heap[child]]:
            break
        heap[node] = heap[child]
        node = child
        child = 2 * node
    heap[node] = moving


cdef void heap_argsort(const double *v, long long *order, long long n) noexcept nogil:
    """Heapsort of order[0:n] by v: a max-heap built bottom-up, then its top swapped to the end n - 1 times."""
    cdef long long *heap = order - 1  # 1-based, so the children of k are 2k and 2k + 1
    cdef long long k, top
    for k in range(n >> 1, 0, -1):
        sift_down(v, heap, k, n)
    while n > 1:
        top = heap[1]
        heap[1] = heap[n]
        heap[n] = top
        n -= 1
        sift_down(v, heap, 1, n)


def argsort_numpy123(values):
    """values: (N,) float64 without NaN -> (N,) int64, the permutation numpy 1.23's np.argsort(values) returns."""
    cdef double[::1] view = np.ascontiguousarray(values, dtype=np.float64)
    cdef long long n = view.shape[0]
    result = np.arange(n, dtype=np.int64)
    if n < 2:
        return result
    cdef long long[::1] order = result
    cdef const double *v = &view[0]
    cdef long long *lo = &order[0]
    cdef long long *hi = lo + n - 1
    cdef long long *stack[STACK]
    cdef long long **top = stack
    cdef int depth[STACK]
    cdef int *depth_top = depth
    cdef int depth_left = 0
    cdef long long m = n
    cdef long long *mid
    cdef long long *left
    cdef long long *right
    cdef long long *prev
    cdef long long moving
    cdef double pivot
    while m > 1:  # 2 floor(log2(n))
        m >>= 1
        depth_left += 1
    depth_left *= 2
    with nogil:
        while True:
            if depth_left < 0:
                heap_argsort(v, lo, hi - lo + 1)
            else:
                while hi - lo > SMALL:
                    mid = lo + ((hi - lo) >> 1)
                    if v[mid[0]] < v[lo[0]]:
                        swap(mid, lo)
                    if v[hi[0]] < v[mid[0]]:
                        swap(hi, mid)
                    if v[mid[0]] < v[lo[0]]:
                        swap(mid, lo)
                    pivot = v[mid[0]]
                    left = lo
                    right = hi - 1
                    swap(mid, right)
                    while True:
                        left += 1
                        while v[left[0]] < pivot:
                            left += 1
                        right -= 1
                        while pivot < v[right[0]]:
                            right -= 1
                        if left >= right:
                            break
                        swap(left, right)
                    prev = hi - 1
                    swap(left, prev)
                    # the larger part waits on the stack, the smaller is sorted next
                    if left - lo < hi - left:
                        top[0] = left + 1
                        top[1] = hi
                        top += 2
                        hi = left - 1
                    else:
                        top[0] = lo
                        top[1] = left - 1
                        top += 2
                        lo = left + 1
                    depth_left -= 1
                    depth_top[0] = depth_left
                    depth_top += 1
                left = lo + 1
                while left <= hi:
                    moving = left[0]
                    pivot = v[moving]
                    right = left
                    prev = left - 1
                    while right > lo and pivot < v[prev[0]]:
                        right[0] = prev[0]
                        right -= 1
                        prev -= 1
                    right[0] = moving
                    left += 1
            if top == stack:
                break
            top -= 2
            lo = top[0]
            hi = top[1]
            depth_top -= 1
            depth_left = depth_top[0]
    return result
