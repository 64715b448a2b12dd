"""Weight initializers. Keras defaults (glorot_uniform kernel, orthogonal
recurrent kernel, zero bias) and PyTorch's uniform(-1/sqrt(H), 1/sqrt(H)).

Each initializer is called as init(shape, rng, dtype, fan=None) and returns
a new array; the rng makes a run reproducible from one seed.
"""
import math
import os

import numpy as np


def zeros(shape, rng, dtype, **_):
    return np.zeros(shape, dtype)


def ones(shape, rng, dtype, **_):
    return np.ones(shape, dtype)


def glorot_uniform(shape, rng, dtype, **_):
    fan_in, fan_out = shape[0], shape[-1]
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def orthogonal(shape, rng, dtype, **_):
    rows, cols = shape[0], int(np.prod(shape[1:]))
    a = rng.normal(size=(max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))                 # make the decomposition unique
    if rows < cols:
        q = q.T
    # C order: the kernels take C-contiguous weights and would copy anything else
    return np.ascontiguousarray(q[:rows, :cols].reshape(shape), dtype=dtype)


def uniform(shape, rng, dtype, limit=0.05, **_):
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def torch_uniform(shape, rng, dtype, units=None, **_):
    # torch.nn.RNN/LSTM/GRU: every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H))
    k = 1.0 / np.sqrt(units)
    return rng.uniform(-k, k, size=shape).astype(dtype)


def random_normal(shape, rng, dtype, stddev=0.05, **_):
    return (rng.normal(size=shape) * stddev).astype(dtype)


INITIALIZERS = {f.__name__: f for f in (zeros, ones, glorot_uniform, orthogonal, uniform,
                                         torch_uniform, random_normal)}


def machine_memory():
    """Bytes of physical memory (a large number where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 1 << 40


def check_size(shape):
    """Refuse, before allocating, a weight that cannot fit in memory (a 10^12-unit layer, a typo'd
    vocabulary): initializers draw in float64, 8 bytes a value."""
    n = math.prod(int(d) for d in shape)
    need, have = 8 * n, machine_memory()
    if need > have:
        raise ValueError(f"a weight of shape {tuple(int(d) for d in shape)} would hold {n:.3g} values "
                         f"({need / 2**30:,.0f} GiB), more than this machine's {have / 2**30:,.0f} GiB of "
                         f"memory; are the units or the vocabulary size what you meant?")


def get(name):
    if callable(name):
        f = name
    elif name not in INITIALIZERS:
        raise ValueError(f"unknown initializer {name!r}; expected one of {sorted(INITIALIZERS)}")
    else:
        f = INITIALIZERS[name]

    def checked(shape, rng, dtype, **kw):
        check_size(shape)
        return f(shape, rng, dtype, **kw)
    return checked
