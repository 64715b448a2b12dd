"""Simple (Elman) RNN, reference engine: the seeds' s_t = tanh(U x_t + W s_{t-1} + b).

In lstmkit's row-vector layout U is W_x and W is W_h:

    h_t = act(x_t W_x + b_x + h_{t-1} W_h + b_h)      hidden state, the seeds' s_t

act is "tanh" (the seeds', torch.nn.RNN's default) or "relu" (torch.nn.RNN's
nonlinearity="relu"). The seeds' output o_t = softmax(V s_t) is a separate
Dense + softmax layer on top, not part of the cell.

Shapes: x (B, T, D); W_x (D, H) = weight_ih.T; W_h (H, H) = weight_hh.T;
b_x = bias_ih, b_h = bias_hh, (H,), either may be None.

mask, reverse and recurrent_mask behave as in lstmkit.cells.lstm.
"""
import numpy as np

from .activations import ACTIVATIONS, dtanh_from_output
from .checks import check_sequence_args, as_float_mask

N_GATES = 1
STATE_NAMES = ("h",)
GATE_NAMES = ("hidden",)


def _dact_from_output(activation, h):
    # derivative of the activation expressed through its output h = act(a)
    if activation == "tanh":
        return dtanh_from_output(h)
    return (h > 0).astype(h.dtype)                             # relu: 1 where it let a through


def forward(x, W_x, W_h, b_x=None, b_h=None, state0=None, mask=None, reverse=False,
            recurrent_mask=None, activation="tanh", need_cache=True,
            need_outputs=True):
    """Run the simple RNN over a whole sequence.

    Returns (hs, (h_T,), cache): hs (B, T, H) outputs, the final state and
    what backward() needs.
    """
    # need_cache/need_outputs=False (inference) let an engine skip the cache and
    # the outputs; this one computes them anyway, which the contract allows
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}; got {activation!r}")
    act = ACTIVATIONS[activation]
    if state0 is None:
        state0 = (np.zeros((x.shape[0], W_h.shape[0]), x.dtype),)
    B, T, D, H = check_sequence_args(x, W_x, W_h, b_x, b_h, state0, mask, N_GATES, 1)
    m = as_float_mask(mask, x.dtype)
    (h,) = state0

    # U x_t + b for every step at once; only W s_{t-1} is per step
    xw = x @ W_x                                               # (B, T, H)
    if b_x is not None:
        xw += b_x
    if b_h is not None:
        xw += b_h

    hs = np.zeros((B, T, H), x.dtype)
    h_news = np.empty((B, T, H), x.dtype)                      # act outputs before masking
    h_ins = np.empty((B, T, H), x.dtype)
    steps = range(T - 1, -1, -1) if reverse else range(T)
    for t in steps:
        h_in = h if recurrent_mask is None else h * recurrent_mask
        h_ins[:, t] = h_in
        h_new = act(xw[:, t] + h_in @ W_h)                     # s_t = tanh(U x_t + W s_{t-1} + b)
        h_news[:, t] = h_new
        if m is None:
            h = h_new
            hs[:, t] = h_new
        else:
            mt = m[:, t, None]                                 # (B, 1)
            h = mt * h_new + (1 - mt) * h                      # masked step: carry the state
            hs[:, t] = mt * h_new
    cache = dict(x=x, W_x=W_x, W_h=W_h, has_b_x=b_x is not None, has_b_h=b_h is not None,
                 h_news=h_news, h_ins=h_ins, mask=m, reverse=reverse,
                 recurrent_mask=recurrent_mask, activation=activation)
    return hs, (h.copy(),), cache


def backward(dhs, dstate, cache):
    """Backpropagation through time for forward().

    dhs: (B, T, H) gradient of the loss for every output, or None.
    dstate: (dh_T,) or None.
    Returns a dict of gradients: x, W_x, W_h, b_x, b_h (None where the forward
    had no such bias) and state0 = (dh_0,).
    """
    x, W_h = cache["x"], cache["W_h"]
    B, T, D = x.shape
    H = W_h.shape[0]
    m, rmask = cache["mask"], cache["recurrent_mask"]
    dh_T = None if dstate is None else dstate[0]
    dh = np.zeros((B, H), x.dtype) if dh_T is None else dh_T.astype(x.dtype, copy=True)
    da_all = np.zeros((B, T, H), x.dtype)                      # gradients of the preactivations

    steps = range(T) if cache["reverse"] else range(T - 1, -1, -1)
    for t in steps:
        dh_new = dh if dhs is None else dh + dhs[:, t]
        if m is not None:
            mt = m[:, t, None]
            dh_carry = (1 - mt) * dh                           # backprop through the carried state
            dh_new = mt * dh_new
        # backprop through s_t = act(U x_t + W s_{t-1} + b)
        da = dh_new * _dact_from_output(cache["activation"], cache["h_news"][:, t])
        da_all[:, t] = da
        dh = da @ W_h.T                                        # (B, H)
        if rmask is not None:
            dh *= rmask                                        # backprop through recurrent dropout
        if m is not None:
            dh = dh + dh_carry

    # backprop through U x_t + b and W s_{t-1}, all steps at once
    dW_x = x.reshape(B * T, D).T @ da_all.reshape(B * T, H)
    dW_h = cache["h_ins"].reshape(B * T, H).T @ da_all.reshape(B * T, H)
    db = da_all.sum(axis=(0, 1))
    dx = da_all @ cache["W_x"].T
    return dict(x=dx, W_x=dW_x, W_h=dW_h,
                b_x=db if cache["has_b_x"] else None,
                b_h=db.copy() if cache["has_b_h"] else None,
                state0=(dh,))
