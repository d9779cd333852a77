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


cdef void heap_argsort(const double *v, long long *order, long long n) noexcept nogil:
    """Heapsort of order[0:n] by v, 1-based heap indexing."""
    cdef long long *a = order - 1
    cdef long long i, j, l, tmp
    l = n >> 1
    while l > 0:
        tmp = a[l]
        i = l
        j = l << 1
        while j <= n:
            if j < n and v[a[j]] < v[a[j + 1]]:
                j += 1
            if v[tmp] < v[a[j]]:
                a[i] = a[j]
                i = j
                j += j
            else:
                break
        a[i] = tmp
        l -= 1
    while n > 1:
        tmp = a[n]
        a[n] = a[1]
        n -= 1
        i = 1
        j = 2
        while j <= n:
            if j < n and v[a[j]] < v[a[j + 1]]:
                j += 1
            if v[tmp] < v[a[j]]:
                a[i] = a[j]
                i = j
                j += j
            else:
                break
        a[i] = tmp


def argsort_numpy123(values):
    """values: (N,) float64 without NaN -> (N,) int64, the permutation numpy 1.23's np.argsort(values) returns."""
    cdef double[::1] view = np.ascontiguousarray(values, dtype=np.float64)
    cdef long long n = view.shape[0]
    result = np.arange(n, dtype=np.int64)
    if n < 2:
        return result
    cdef long long[::1] order = result
    cdef const double *v = &view[0]
    cdef long long *pl = &order[0]
    cdef long long *pr = pl + n - 1
    cdef long long *stack[STACK]
    cdef long long **sptr = stack
    cdef int depth[STACK]
    cdef int *psdepth = depth
    cdef int cdepth = 0
    cdef long long m = n
    cdef long long *pm
    cdef long long *pi
    cdef long long *pj
    cdef long long *pk
    cdef long long vi
    cdef double vp
    while m > 1:  # 2 floor(log2(n))
        m >>= 1
        cdepth += 1
    cdepth *= 2
    with nogil:
        while True:
            if cdepth < 0:
                heap_argsort(v, pl, pr - pl + 1)
            else:
                while pr - pl > SMALL:
                    pm = pl + ((pr - pl) >> 1)
                    if v[pm[0]] < v[pl[0]]:
                        swap(pm, pl)
                    if v[pr[0]] < v[pm[0]]:
                        swap(pr, pm)
                    if v[pm[0]] < v[pl[0]]:
                        swap(pm, pl)
                    vp = v[pm[0]]
                    pi = pl
                    pj = pr - 1
                    swap(pm, pj)
                    while True:
                        pi += 1
                        while v[pi[0]] < vp:
                            pi += 1
                        pj -= 1
                        while vp < v[pj[0]]:
                            pj -= 1
                        if pi >= pj:
                            break
                        swap(pi, pj)
                    pk = pr - 1
                    swap(pi, pk)
                    # the larger part waits on the stack, the smaller is sorted next
                    if pi - pl < pr - pi:
                        sptr[0] = pi + 1
                        sptr[1] = pr
                        sptr += 2
                        pr = pi - 1
                    else:
                        sptr[0] = pl
                        sptr[1] = pi - 1
                        sptr += 2
                        pl = pi + 1
                    cdepth -= 1
                    psdepth[0] = cdepth
                    psdepth += 1
                pi = pl + 1
                while pi <= pr:
                    vi = pi[0]
                    vp = v[vi]
                    pj = pi
                    pk = pi - 1
                    while pj > pl and vp < v[pk[0]]:
                        pj[0] = pk[0]
                        pj -= 1
                        pk -= 1
                    pj[0] = vi
                    pi += 1
            if sptr == stack:
                break
            sptr -= 2
            pl = sptr[0]
            pr = sptr[1]
            psdepth -= 1
            cdepth = psdepth[0]
    return result
