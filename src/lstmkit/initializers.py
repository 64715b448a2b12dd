"""Weight initializers. Keras defaults (glorot_uniform kernel, orthogonal
recurrent kernel, zero bias) and PyTorch's uniform(-1/sqrt(H), 1/sqrt(H)).

Each initializer is called as init(shape, rng, dtype, fan=None) and returns
a new array; the rng makes a run reproducible from one seed.
"""
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


def get(name):
    if callable(name):
        return name
    if name not in INITIALIZERS:
        raise ValueError(f"unknown initializer {name!r}; expected one of {sorted(INITIALIZERS)}")
    return INITIALIZERS[name]
