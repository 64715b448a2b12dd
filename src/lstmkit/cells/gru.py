"""GRU, reference engine: plain NumPy, one line of math per equation.

Gate order in every weight matrix (columns, blocks of H): reset gate r,
update gate z, candidate n -- PyTorch's order.

    r_t = sigmoid(x_t W_xr + b_xr + h_{t-1} W_hr + b_hr)            reset_gate
    z_t = sigmoid(x_t W_xz + b_xz + h_{t-1} W_hz + b_hz)            update_gate
    reset_after=True  (PyTorch, Keras default):
    n_t = tanh(x_t W_xn + b_xn + r_t * (h_{t-1} W_hn + b_hn))       candidate
    reset_after=False (Cho et al., the seeds' form):
    n_t = tanh(x_t W_xn + b_xn + (r_t * h_{t-1}) W_hn + b_hn)       candidate
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}                           hidden state

The update gate plays the LSTM's forget and input gates at once (z keeps the
old state, 1 - z lets the candidate in); there is no separate cell state.

Shapes: x (B, T, D); W_x (D, 3H) = weight_ih.T; W_h (H, 3H) = weight_hh.T;
b_x = bias_ih, b_h = bias_hh, (3H,), either may be None. With reset_after=True
the n block of b_h sits inside r * (...), so it cannot be folded into b_x.

mask, reverse and recurrent_mask behave as in lstmkit.cells.lstm: a masked
step carries h unchanged and outputs 0; recurrent_mask multiplies h_{t-1}
where it enters the gates, not where it is carried by z_t * h_{t-1}.
"""
import numpy as np

from .activations import sigmoid, dsigmoid_from_output, dtanh_from_output
from .checks import check_sequence_args, as_float_mask

N_GATES = 3
STATE_NAMES = ("h",)
GATE_NAMES = ("reset_gate", "update_gate", "candidate")


def _check_reset_after(reset_after):
    if not isinstance(reset_after, (bool, np.bool_)):
        raise ValueError(f"reset_after must be True or False; got {reset_after!r}")
    return bool(reset_after)


def forward(x, W_x, W_h, b_x=None, b_h=None, state0=None, mask=None, reverse=False,
            recurrent_mask=None, reset_after=True, need_cache=True,
            need_outputs=True):
    """Run the GRU over a whole sequence.

    Returns (hs, (h_T,), cache): hs (B, T, H) outputs, the final state and
    what backward() needs.
    """
    # need_cache/need_outputs=False (inference) let an engine skip the cache and
    # the outputs; this one computes them anyway, which the contract allows
    reset_after = _check_reset_after(reset_after)
    if state0 is None:
        state0 = (np.zeros((x.shape[0], W_h.shape[0]), x.dtype),)
    B, T, D, H = check_sequence_args(x, W_x, W_h, b_x, b_h, state0, mask, N_GATES, 1)
    m = as_float_mask(mask, x.dtype)
    (h,) = state0

    # input projection for every step at once; only the recurrence is per step
    xw = x @ W_x                                               # (B, T, 3H)
    if b_x is not None:
        xw += b_x
    # b_h joins xw except, with reset_after, its n block (it sits inside r * (...))
    b_h_inner = None                                           # (H,) b_hn inside r * (...)
    if b_h is not None:
        if reset_after:
            xw[..., :2 * H] += b_h[:2 * H]
            b_h_inner = b_h[2 * H:]
        else:
            xw += b_h
    W_hrz, W_hn = W_h[:, :2 * H], W_h[:, 2 * H:]               # (H, 2H), (H, H)

    hs = np.zeros((B, T, H), x.dtype)
    gates = np.empty((B, T, 3 * H), x.dtype)                   # activated r, z, n
    h_prevs = np.empty((B, T, H), x.dtype)                     # h_{t-1} as carried
    h_ins = np.empty((B, T, H), x.dtype)                       # h_{t-1} as it enters the gates
    hn_or_rh = np.empty((B, T, H), x.dtype)                    # h W_hn + b_hn, or r * h
    steps = range(T - 1, -1, -1) if reverse else range(T)
    for t in steps:
        h_in = h if recurrent_mask is None else h * recurrent_mask
        h_prevs[:, t], h_ins[:, t] = h, h_in
        a = xw[:, t]                                           # (B, 3H) input part of preactivations
        rz = a[:, :2 * H] + h_in @ W_hrz                       # (B, 2H)
        reset_gate = sigmoid(rz[:, :H])
        update_gate = sigmoid(rz[:, H:])
        if reset_after:
            hn = h_in @ W_hn                                   # (B, H)
            if b_h_inner is not None:
                hn += b_h_inner
            candidate = np.tanh(a[:, 2 * H:] + reset_gate * hn)   # n = tanh(x W_xn + b_xn + r*(h W_hn + b_hn))
            hn_or_rh[:, t] = hn
        else:
            rh = reset_gate * h_in                             # (B, H)
            candidate = np.tanh(a[:, 2 * H:] + rh @ W_hn)      # n = tanh(x W_xn + b_xn + (r*h) W_hn + b_hn)
            hn_or_rh[:, t] = rh
        h_new = (1 - update_gate) * candidate + update_gate * h   # h_t = (1-z)*n + z*h_{t-1}

        gates[:, t, :H], gates[:, t, H:2 * H], gates[:, t, 2 * H:] = reset_gate, update_gate, candidate
        if m is None:
            h = h_new
            hs[:, t] = h_new
        else:
            mt = m[:, t, None]                                 # (B, 1)
            h = mt * h_new + (1 - mt) * h                      # masked step: carry the state
            hs[:, t] = mt * h_new
    cache = dict(x=x, W_x=W_x, W_h=W_h, has_b_x=b_x is not None, has_b_h=b_h is not None,
                 gates=gates, h_prevs=h_prevs, h_ins=h_ins, hn_or_rh=hn_or_rh,
                 mask=m, reverse=reverse, recurrent_mask=recurrent_mask, reset_after=reset_after)
    return hs, (h.copy(),), cache


def backward(dhs, dstate, cache):
    """Backpropagation through time for forward().

    dhs: (B, T, H) gradient of the loss for every output, or None.
    dstate: (dh_T,) or None.
    Returns a dict of gradients: x, W_x, W_h, b_x, b_h (None where the forward
    had no such bias) and state0 = (dh_0,).
    """
    x, W_h, gates = cache["x"], cache["W_h"], cache["gates"]
    B, T, D = x.shape
    H = W_h.shape[0]
    m, reset_after, rmask = cache["mask"], cache["reset_after"], cache["recurrent_mask"]
    W_hrz, W_hn = W_h[:, :2 * H], W_h[:, 2 * H:]
    dh_T = None if dstate is None else dstate[0]
    dh = np.zeros((B, H), x.dtype) if dh_T is None else dh_T.astype(x.dtype, copy=True)
    da_all = np.zeros((B, T, 3 * H), x.dtype)                  # gradients of the input-side preactivations
    dah_all = np.zeros((B, T, 3 * H), x.dtype)                 # gradients of what W_h's columns produce

    steps = range(T) if cache["reverse"] else range(T - 1, -1, -1)
    for t in steps:
        reset_gate = gates[:, t, :H]
        update_gate = gates[:, t, H:2 * H]
        candidate = gates[:, t, 2 * H:]
        h_prev, h_in = cache["h_prevs"][:, t], cache["h_ins"][:, t]
        dh_new = dh if dhs is None else dh + dhs[:, t]
        if m is not None:
            mt = m[:, t, None]
            dh_carry = (1 - mt) * dh                           # backprop through the carried state
            dh_new = mt * dh_new
        # backprop through h_t = (1-z)*n + z*h_{t-1}
        d_candidate = dh_new * (1 - update_gate)
        d_update_gate = dh_new * (h_prev - candidate)
        dh = dh_new * update_gate                              # the z*h_{t-1} path
        # backprop through n = tanh(...)
        dn = d_candidate * dtanh_from_output(candidate)        # (B, H)
        da, dah = da_all[:, t], dah_all[:, t]
        da[:, 2 * H:] = dn
        if reset_after:
            # backprop through r * (h W_hn + b_hn)
            d_reset_gate = dn * cache["hn_or_rh"][:, t]
            dah[:, 2 * H:] = dn * reset_gate                   # gradient of h W_hn + b_hn
            d_rh = None
        else:
            # backprop through (r*h) W_hn
            d_rh = dn @ W_hn.T                                 # (B, H) gradient of r*h
            d_reset_gate = d_rh * h_in
            dah[:, 2 * H:] = dn
        # backprop through the gate nonlinearities
        da[:, :H] = d_reset_gate * dsigmoid_from_output(reset_gate)
        da[:, H:2 * H] = d_update_gate * dsigmoid_from_output(update_gate)
        dah[:, :2 * H] = da[:, :2 * H]
        # backprop through the h_{t-1} W_h terms
        if reset_after:
            dh_in = dah @ W_h.T                                # (B, H)
        else:
            dh_in = dah[:, :2 * H] @ W_hrz.T + d_rh * reset_gate
        if rmask is not None:
            dh_in *= rmask                                     # backprop through recurrent dropout
        dh = dh + dh_in
        if m is not None:
            dh = dh + dh_carry

    # backprop through the projections, all steps at once
    dW_x = x.reshape(B * T, D).T @ da_all.reshape(B * T, 3 * H)
    dx = da_all @ cache["W_x"].T
    db_x = da_all.sum(axis=(0, 1))
    h_ins = cache["h_ins"].reshape(B * T, H)
    if reset_after:
        dW_h = h_ins.T @ dah_all.reshape(B * T, 3 * H)
    else:
        dW_h = np.empty_like(W_h)
        dW_h[:, :2 * H] = h_ins.T @ dah_all[..., :2 * H].reshape(B * T, 2 * H)
        dW_h[:, 2 * H:] = cache["hn_or_rh"].reshape(B * T, H).T @ dah_all[..., 2 * H:].reshape(B * T, H)
    db_h = dah_all.sum(axis=(0, 1))
    return dict(x=dx, W_x=dW_x, W_h=dW_h,
                b_x=db_x if cache["has_b_x"] else None,
                b_h=db_h if cache["has_b_h"] else None,
                state0=(dh,))
