"""Argument checks shared by both engines: errors name the argument and what was received."""
import numpy as np


def check_sequence_args(x, W_x, W_h, b_x, b_h, state0, mask, n_gates, n_states):
    if not isinstance(x, np.ndarray) or x.ndim != 3:
        raise ValueError(f"x must be a 3-D array (batch, time, features); got {type(x).__name__} "
                         f"with shape {getattr(x, 'shape', None)}")
    B, T, D = x.shape
    if W_x.ndim != 2 or W_x.shape[0] != D:
        raise ValueError(f"W_x must have shape ({D}, {n_gates}*units) to match x's {D} features; got {W_x.shape}")
    GH = W_x.shape[1]
    if GH % n_gates:
        raise ValueError(f"W_x has {GH} columns, not a multiple of the {n_gates} gates")
    H = GH // n_gates
    if W_h.shape != (H, GH):
        raise ValueError(f"W_h must have shape ({H}, {GH}); got {W_h.shape}")
    for name, b in (("b_x", b_x), ("b_h", b_h)):
        if b is not None and b.shape != (GH,):
            raise ValueError(f"{name} must have shape ({GH},); got {b.shape}")
    for name, a in (("W_x", W_x), ("W_h", W_h), ("b_x", b_x), ("b_h", b_h)):
        if a is not None and a.dtype != x.dtype:
            raise TypeError(f"{name} has dtype {a.dtype} but x has dtype {x.dtype}; use one dtype throughout")
    if len(state0) != n_states:
        raise ValueError(f"state0 must hold {n_states} arrays; got {len(state0)}")
    for s in state0:
        if s.shape != (B, H):
            raise ValueError(f"each initial state must have shape ({B}, {H}); got {s.shape}")
    if mask is not None and mask.shape != (B, T):
        raise ValueError(f"mask must have shape ({B}, {T}); got {mask.shape}")
    return B, T, D, H


def as_float_mask(mask, dtype):
    if mask is None:
        return None
    return np.asarray(mask).astype(dtype, copy=False)
