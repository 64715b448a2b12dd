"""Elementwise nonlinearities compiled into the kernels.

Numba here has no vectorized (SVML) exp or tanh: a call to libm's tanh keeps a
loop scalar. For float32 the kernels use a rational function instead, which
LLVM turns into SIMD code (with error_model='numpy', so the division carries no
zero check):

    tanh(x) ~= x * P(x^2) / Q(x^2),   x clamped to [-7.9, 7.9]
    P of degree 5, Q of degree 3 in x^2 (an odd [11/6] rational function)

The coefficients were fitted for this library (iterated weighted least squares
on the relative error, see docs/kernels.md). Evaluated in float32, the largest
error against the correctly rounded tanh over all float32 inputs is 3.2e-7
(about 5 ulp near +-1; below 1e-7 relative for |x| < 1) and |tanh(x)| never
exceeds 1. At the clamp tanh(7.9) = 1 - 2.7e-7, inside that error.

float64 has to match the reference engine to 1e-10, so it calls np.tanh (libm):
correct, but scalar. sigmoid(x) = 0.5 * tanh(x / 2) + 0.5, the reference's form.

Numba caches a compiled kernel keyed on its own source file only: after editing
this file, delete the kernels' __pycache__ (see docs/kernels.md).
"""
import numpy as np
from numba import types
from numba.extending import overload

TANH_CLAMP = 7.9
# P(u) = P0 + P1 u + ... + P5 u^5 and Q(u) = 1 + Q1 u + Q2 u^2 + Q3 u^3 with u = x^2
TANH_P = (0.9999999834453517, 0.1298491736006243, 0.002992104359627069,
          9.939228186734135e-06, -1.4906246461923194e-08, 2.410480378771617e-11)
TANH_Q = (1.0, 0.46318235354548637, 0.024053125951901122, 0.00023808768427951518)

_C = np.float32(TANH_CLAMP)
_P0, _P1, _P2, _P3, _P4, _P5 = (np.float32(v) for v in TANH_P)
_Q1, _Q2, _Q3 = (np.float32(v) for v in TANH_Q[1:])


def tanh_rational_f32(x):
    """The float32 approximation; plain Python/NumPy so it also runs on arrays."""
    # written as selects, not min/max, so NaN propagates as it does in np.tanh
    x = np.where(x > _C, _C, x)
    x = np.where(x < -_C, -_C, x)
    u = x * x
    p = ((((_P5 * u + _P4) * u + _P3) * u + _P2) * u + _P1) * u + _P0
    q = ((_Q3 * u + _Q2) * u + _Q1) * u + np.float32(1.0)
    return x * p / q


def fast_tanh(x):
    """tanh for the kernels: rational in float32, np.tanh in float64."""
    return np.tanh(x)


@overload(fast_tanh, jit_options={"error_model": "numpy"})
def _fast_tanh_impl(x):
    if x == types.float32:
        def tanh_f32(x):
            x = _C if x > _C else x
            x = -_C if x < -_C else x
            u = x * x
            p = ((((_P5 * u + _P4) * u + _P3) * u + _P2) * u + _P1) * u + _P0
            q = ((_Q3 * u + _Q2) * u + _Q1) * u + np.float32(1.0)
            return x * p / q
        return tanh_f32
    if x == types.float64:
        return lambda x: np.tanh(x)
    return None


# Elementwise passes over flat runs, the gate nonlinearities of the cells.
# Each writes one array, so LLVM keeps it SIMD (with several outputs it gives
# up on the runtime overlap checks and leaves the loop scalar).
from numba import njit  # noqa: E402

from .support import INLINE as _JIT, cast_like  # noqa: E402


@njit(**_JIT)
def sigmoid_pass(z, out):
    """out = sigmoid(z) = tanh(z/2)/2 + 1/2 (the reference's own form)."""
    half = cast_like(out, 0.5)
    for k in range(out.shape[0]):
        out[k] = fast_tanh(half * z[k]) * half + half


@njit(**_JIT)
def sigmoid_sum_pass(z, b, out):
    """out = sigmoid(z + b)."""
    half = cast_like(out, 0.5)
    for k in range(out.shape[0]):
        out[k] = fast_tanh(half * (z[k] + b[k])) * half + half


@njit(**_JIT)
def sigmoid_sum_bias_pass(z, x, b, out):
    """out = sigmoid(z + (x + b)) with b (H,) added to each run of H numbers
    (the rows of a step): the training step's bias, so that x W_x for all
    steps needs no pass of its own to add it (the same sums, in the same
    order, as sigmoid_sum_pass over x + b)."""
    half = cast_like(out, 0.5)
    H = b.shape[0]
    for r in range(out.shape[0] // H):
        for j in range(H):
            k = r * H + j
            out[k] = fast_tanh(half * (z[k] + (x[k] + b[j]))) * half + half


@njit(**_JIT)
def tanh_sum_bias_pass(z, x, b, out):
    """out = tanh(z + (x + b)), b as in sigmoid_sum_bias_pass."""
    H = b.shape[0]
    for r in range(out.shape[0] // H):
        for j in range(H):
            k = r * H + j
            out[k] = fast_tanh(z[k] + (x[k] + b[j]))


@njit(**_JIT)
def tanh_pass(z, out):
    """out = tanh(z)."""
    for k in range(out.shape[0]):
        out[k] = fast_tanh(z[k])


@njit(**_JIT)
def tanh_sum_pass(z, b, out):
    """out = tanh(z + b)."""
    for k in range(out.shape[0]):
        out[k] = fast_tanh(z[k] + b[k])
