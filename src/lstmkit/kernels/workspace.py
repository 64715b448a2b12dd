"""Big buffers for the kernels' scratch and caches, leased and given back explicitly.

Why reuse at all: on this kind of machine (a small VM) the first write to
fresh memory costs a fault into the hypervisor for every 4 KiB page. A
forward pass needs tens of MB of caches; with plain np.empty, glibc hands big
blocks back to the OS when they are freed and the next call faults them in
again: 2841 page faults per forward call (B = 32, T = 500, H = 32) and the
forward took 26 us per step against 9 us for the loop alone; with reuse, 0.4
faults per call (docs/kernels.md, "Reused buffers").

How a buffer comes and goes (no reference counting, no guessing):
  * `scope()` leases scratch for one call and gives it all back when the
    call's with block ends;
  * `hold(owner, ...)` leases the caches a forward leaves for backward and
    gives them back when `owner` (the cache object) is garbage collected;
  * nothing leased is handed to a caller: outputs and gradients are new
    arrays, theirs to keep.

lk.config.reuse_buffers = False makes every lease a plain np.empty;
lk.config.pool_max_bytes bounds the free memory kept (1 GiB by default).
Thread-safe: the pool has a lock; a buffer is leased to one holder at a time.
"""
import math
import threading
import weakref
from contextlib import contextmanager

import numpy as np

from ..settings import config

MIN_BYTES = 1 << 18            # smaller arrays come from np.empty directly
ALIGN = 4096                   # every array handed out starts on a page (see aligned_empty)

_free = {}                     # nbytes -> [raw uint8 buffer], most recently returned last
_leased = {}                   # id(array handed out) -> raw buffer
_lock = threading.Lock()
_free_bytes = 0


def lease(shape, dtype):
    """An uninitialised C array of shape and dtype, starting on a page
    (ALIGN), from the pool when big; give it back with release()."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < MIN_BYTES or not config.reuse_buffers:
        return aligned_empty(shape, dtype)
    global _free_bytes
    with _lock:
        stack = _free.get(nbytes)
        if stack:
            raw = stack.pop()
            _free_bytes -= nbytes
        else:
            raw = np.empty(nbytes + ALIGN, np.uint8)
        a = _on_boundary(raw, shape, dtype, ALIGN)
        _leased[id(a)] = raw
    return a


def release(*arrays):
    """Give leased arrays back (others, and None, are ignored). The caller
    must not use them afterwards."""
    global _free_bytes
    limit = config.pool_max_bytes
    with _lock:
        for a in arrays:
            raw = None if a is None else _leased.pop(id(a), None)
            if raw is None:
                continue
            nbytes = raw.nbytes - ALIGN
            if _free_bytes + nbytes <= limit:
                _free.setdefault(nbytes, []).append(raw)
                _free_bytes += nbytes


class Scope:
    """Leases made through it are given back together (see scope())."""

    def __init__(self):
        self.arrays = []

    def empty(self, shape, dtype):
        a = lease(shape, dtype)
        self.arrays.append(a)
        return a


@contextmanager
def scope():
    """with workspace.scope() as ws: ws.empty(shape, dtype) ... -- scratch
    for the block, all given back at its end."""
    s = Scope()
    try:
        yield s
    finally:
        release(*s.arrays)


def hold(owner, *arrays):
    """Give `arrays` back when `owner` is garbage collected: the caches of a
    forward, owned by the cache object backward reads them from."""
    weakref.finalize(owner, release, *arrays)


def clear():
    """Drop every free pooled buffer (leased ones are unaffected)."""
    global _free_bytes
    with _lock:
        _free.clear()
        _free_bytes = 0


def pooled_bytes():
    """(free bytes kept, bytes leased out) -- for tests and curiosity."""
    with _lock:
        return _free_bytes, sum(raw.nbytes - ALIGN for raw in _leased.values())


def aligned_empty(shape, dtype, align=ALIGN):
    """An uninitialised C array whose data starts on an `align`-byte boundary
    (a page by default).

    Every array of a time loop then starts at the same place within a page:
    the caches' rows (B*H numbers, 4 KB at B = H = 32), the step's scratch
    and the state. NumPy aligns to 16 bytes only, and where malloc happened
    to put the small arrays decided the speed: the same training forward
    took 4.0 ms in one process and 4.7 ms in another, and with page-aligned
    arrays 4.3-4.5 ms in three (A-sized LSTM layer, one thread, alternating
    processes; presumably loads and stores whose addresses agree in their
    low 12 bits, which the CPU takes for a dependency). With H*itemsize a
    multiple of 64, a chunk's rows also start on a cache line of their own."""
    dtype = np.dtype(dtype)
    return _on_boundary(np.empty(math.prod(shape) * dtype.itemsize + align, np.uint8), shape, dtype, align)


def aligned_zeros(shape, dtype, align=ALIGN):
    """np.zeros(shape, dtype) whose data starts on an `align`-byte boundary.
    NumPy aligns to 16 bytes; a 64-byte vector load from an array that starts
    elsewhere straddles two cache lines on every load, which made the same
    streaming step take 1.5 or 2.5 us depending on where malloc put the weights."""
    dtype = np.dtype(dtype)
    return _on_boundary(np.zeros(math.prod(shape) * dtype.itemsize + align, np.uint8), shape, dtype, align)


def _on_boundary(raw, shape, dtype, align):
    """The (shape, dtype) array inside the byte buffer raw (align bytes longer
    than it needs) whose data starts on an align-byte boundary."""
    start = -raw.ctypes.data % align
    return raw[start:start + math.prod(shape) * dtype.itemsize].view(dtype).reshape(shape)
