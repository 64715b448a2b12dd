"""Fused optimizer updates: one compiled pass per parameter array.

The NumPy version of Adam made about ten passes over every parameter, each
allocating a temporary the size of the parameter; for the 320k-weight
embedding table of the benchmark model the allocations alone (fresh pages,
each faulted in) cost more than the arithmetic. Each function here reads the
gradient once and updates the parameter and its state in place, element by
element, with the same operations in the same order as the NumPy formulas
in lstmkit.optimizers (so float64 results still match torch.optim).

Every array is flat (1-D) and C-contiguous and every scalar has the
parameter's dtype: the caller (optimizers.py) converts them, so each
function is compiled twice, for float32 and float64, and float32 arithmetic
stays float32 as it was in NumPy. `scale` is the clipnorm factor (1 when
not clipping) applied to the gradient before anything else.

No fastmath in the updates: it would let LLVM contract and reorder the
arithmetic and move the float64 results away from torch's (sum_squares, which
has no reference order, is the exception).
"""
import numpy as np
from numba import njit

_JIT = dict(cache=True, nogil=True, error_model="numpy")


@njit(**_JIT)
def sgd(p, g, scale, lr):
    """p -= lr g."""
    for i in range(p.size):
        p[i] -= lr * (g[i] * scale)


@njit(**_JIT)
def sgd_momentum(p, g, velocity, scale, lr, momentum, nesterov):
    """v = momentum v + g;  p -= lr v   (nesterov: p -= lr (g + momentum v))."""
    for i in range(p.size):
        gi = g[i] * scale
        v = velocity[i] * momentum + gi
        velocity[i] = v
        if nesterov:
            p[i] -= lr * (gi + momentum * v)
        else:
            p[i] -= lr * v


@njit(**_JIT)
def adam_range(lo, hi, p, g, m, v, scale, one_minus_b1, one_minus_b2, b1, b2, step_size, bc2_sqrt, eps):
    """m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
    p -= step_size m / (sqrt(v) / bc2_sqrt + eps)
    for the elements lo:hi, with step_size = lr / (1 - b1^t) and
    bc2_sqrt = sqrt(1 - b2^t), the bias corrections folded into two scalars
    the way torch.optim.Adam does. Each element alone, whichever range it is
    in: a split over threads (optimizers.Adam) changes no number."""
    for i in range(lo, hi):
        gi = g[i] * scale
        mi = m[i] * b1 + one_minus_b1 * gi
        vi = v[i] * b2 + one_minus_b2 * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] -= step_size * mi / (np.sqrt(vi) / bc2_sqrt + eps)


@njit(**_JIT)
def rmsprop(p, g, v, scale, one_minus_rho, rho, lr, eps):
    """v = rho v + (1-rho) g^2;  p -= lr g / (sqrt(v) + eps)."""
    for i in range(p.size):
        gi = g[i] * scale
        vi = v[i] * rho + one_minus_rho * gi * gi
        v[i] = vi
        p[i] -= lr * (gi / (np.sqrt(vi) + eps))


@njit(**_JIT)
def rmsprop_momentum(p, g, v, buf, scale, one_minus_rho, rho, lr, eps, momentum):
    """v as rmsprop;  buf = momentum buf + g / (sqrt(v) + eps);  p -= lr buf."""
    for i in range(p.size):
        gi = g[i] * scale
        vi = v[i] * rho + one_minus_rho * gi * gi
        v[i] = vi
        b = buf[i] * momentum + gi / (np.sqrt(vi) + eps)
        buf[i] = b
        p[i] -= lr * b


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc"})
def sum_squares(x):
    """sum(x^2) of a flat x, accumulated in float64. The one place with a
    fastmath flag: reassoc lets LLVM keep several partial sums in vector
    registers (0.03 ms for 328k floats against 0.1 ms for a hand-split
    eight-way sum and more for one running sum). A sum of squares has no
    reference order (NumPy's own is pairwise); it only sets the clipnorm scale."""
    acc = 0.0
    for i in range(x.size):
        xi = np.float64(x[i])
        acc += xi * xi
    return acc
