"""Reusable big arrays for the kernels' caches and outputs.

On this kind of machine (a small VM) the first write to freshly allocated
memory is expensive: every new 4 KiB page is a fault into the hypervisor. A
forward pass allocates tens of MB of caches; with plain np.empty, glibc hands
big blocks back to the OS when they are freed, and the next call faults them
in again -- measured at more than the whole time loop costs (see
docs/kernels.md). So big arrays come from a small pool and are reused once
nothing else refers to them.

"Nothing else refers to it" is the array's reference count: the pool's own
reference plus the ones made while checking. Any view, cache dict or user
variable holding the array (or a view of it, which holds its base) keeps it
out of reuse, so a pooled array is never handed out twice while alive.
"""
import sys
import threading

import numpy as np

MIN_BYTES = 1 << 18            # smaller arrays come from np.empty directly
MAX_POOL_BYTES = 1 << 30       # free pooled arrays beyond this are let go

_pool = []                     # [array], most recently used last
_lock = threading.Lock()


def _is_free(pool, i, free_count):
    # True when only the pool refers to pool[i] (and this frame, while checking)
    return sys.getrefcount(pool[i]) == free_count


def _calibrate():
    # the reference count _is_free sees for an array held by nothing but its pool
    probe = [np.empty(1)]
    return sys.getrefcount(probe[0])


_FREE = _calibrate()


def empty(shape, dtype):
    """Like np.empty(shape, dtype) (C order), but reusing a free pooled array of the same size."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    if nbytes < MIN_BYTES:
        return np.empty(shape, dtype)
    with _lock:
        for i in range(len(_pool)):
            if _pool[i].nbytes == nbytes and _pool[i].dtype == dtype and _is_free(_pool, i, _FREE):
                a = _pool.pop(i)
                _pool.append(a)
                return a.reshape(shape)
        _evict(nbytes)
        a = np.empty(nbytes // dtype.itemsize, dtype)
        _pool.append(a)
        return a.reshape(shape)


def _evict(incoming):
    total = sum(a.nbytes for a in _pool) + incoming
    i = 0
    while total > MAX_POOL_BYTES and i < len(_pool):
        if _is_free(_pool, i, _FREE):
            total -= _pool[i].nbytes
            del _pool[i]
        else:
            i += 1


def clear():
    """Forget every pooled array (memory of those still in use is freed with them)."""
    with _lock:
        _pool.clear()


def aligned_zeros(shape, dtype, align=64):
    """np.zeros(shape, dtype) whose data starts on an `align`-byte boundary.
    NumPy aligns to 16 bytes; a 64-byte vector load from an array that starts
    elsewhere straddles two cache lines on every load, which made the same
    streaming step take 1.5 or 2.5 us depending on where malloc put the weights."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape))
    raw = np.zeros(n * dtype.itemsize + align, np.uint8)
    start = -raw.ctypes.data % align
    return raw[start:start + n * dtype.itemsize].view(dtype).reshape(shape)
