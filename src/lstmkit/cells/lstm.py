"""LSTM, reference engine: plain NumPy, one line of math per equation of the seeds.

Gate order in every weight matrix (columns, blocks of H): input gate i,
forget gate f, candidate g (the seeds' C~_t), output gate o -- PyTorch's order.

    i_t = sigmoid(x_t W_xi + b_xi + h_{t-1} W_hi + b_hi)      input gate
    f_t = sigmoid(x_t W_xf + b_xf + h_{t-1} W_hf + b_hf)      forget gate
    g_t = tanh   (x_t W_xg + b_xg + h_{t-1} W_hg + b_hg)      candidate
    o_t = sigmoid(x_t W_xo + b_xo + h_{t-1} W_ho + b_ho)      output gate
    c_t = f_t * c_{t-1} + i_t * g_t                           cell state
    h_t = o_t * tanh(c_t)                                     hidden state

Shapes: x (B, T, D); W_x (D, 4H); W_h (H, 4H); b_x, b_h (4H,) (b_h may be None:
one bias, as Keras; two biases, as PyTorch). W_x = weight_ih.T and
W_h = weight_hh.T of torch.nn.LSTM.

mask (B, T), 1 for a real step: at a masked step the state (h, c) is carried
through unchanged, the output is 0 and no gradient flows through the step.
reverse=True runs t = T-1 .. 0; outputs stay aligned with the input positions.
"""
import numpy as np

from .activations import sigmoid, dsigmoid_from_output, dtanh_from_output
from .checks import check_sequence_args, as_float_mask

N_GATES = 4
STATE_NAMES = ("h", "c")
GATE_NAMES = ("input_gate", "forget_gate", "candidate", "output_gate")


def forward(x, W_x, W_h, b_x=None, b_h=None, state0=None, mask=None, reverse=False,
            recurrent_mask=None, need_cache=True,
            need_outputs=True):
    """Run the LSTM over a whole sequence.

    recurrent_mask (B, H), optional: recurrent dropout; h_{t-1} is multiplied by
    it where it enters the gates (not on the carried state).

    Returns (hs, (h_T, c_T), cache): hs (B, T, H) outputs, the final states and
    what backward() needs.
    """
    # need_cache/need_outputs=False (inference) let an engine skip the cache and
    # the outputs; this one computes them anyway, which the contract allows
    if state0 is None:
        H = W_h.shape[0]
        state0 = (np.zeros((x.shape[0], H), x.dtype), np.zeros((x.shape[0], H), x.dtype))
    B, T, D, H = check_sequence_args(x, W_x, W_h, b_x, b_h, state0, mask, N_GATES, 2)
    m = as_float_mask(mask, x.dtype)
    h, c = state0

    # input projection for every step at once; only the recurrence is per step
    xw = x @ W_x                                               # (B, T, 4H)
    if b_x is not None:
        xw += b_x
    if b_h is not None:
        xw += b_h

    hs = np.zeros((B, T, H), x.dtype)
    gates = np.empty((B, T, 4 * H), x.dtype)                   # activated i, f, g, o
    tanh_cs = np.empty((B, T, H), x.dtype)
    h_prevs = np.empty((B, T, H), x.dtype)
    c_prevs = np.empty((B, T, H), x.dtype)
    steps = range(T - 1, -1, -1) if reverse else range(T)
    for t in steps:
        h_in = h if recurrent_mask is None else h * recurrent_mask
        h_prevs[:, t], c_prevs[:, t] = h_in, c
        z = xw[:, t] + h_in @ W_h                                 # (B, 4H) preactivations
        input_gate = sigmoid(z[:, :H])
        forget_gate = sigmoid(z[:, H:2 * H])
        candidate = np.tanh(z[:, 2 * H:3 * H])
        output_gate = sigmoid(z[:, 3 * H:])
        cell_state = forget_gate * c + input_gate * candidate  # c_t = f*c_{t-1} + i*g
        tanh_c = np.tanh(cell_state)
        h_new = output_gate * tanh_c                           # h_t = o*tanh(c_t)

        gates[:, t, :H], gates[:, t, H:2 * H] = input_gate, forget_gate
        gates[:, t, 2 * H:3 * H], gates[:, t, 3 * H:] = candidate, output_gate
        tanh_cs[:, t] = tanh_c
        if m is None:
            h, c = h_new, cell_state
            hs[:, t] = h_new
        else:
            mt = m[:, t, None]                                 # (B, 1)
            h = mt * h_new + (1 - mt) * h                      # masked step: carry the state
            c = mt * cell_state + (1 - mt) * c
            hs[:, t] = mt * h_new
    cache = dict(x=x, W_x=W_x, W_h=W_h, has_b_h=b_h is not None, has_b_x=b_x is not None,
                 gates=gates, tanh_cs=tanh_cs, h_prevs=h_prevs, c_prevs=c_prevs,
                 mask=m, reverse=reverse, recurrent_mask=recurrent_mask)
    return hs, (h.copy(), c.copy()), cache


def backward(dhs, dstate, cache):
    """Backpropagation through time for forward().

    dhs: (B, T, H) gradient of the loss for every output, or None.
    dstate: (dh_T, dc_T), either may be None.
    Returns a dict of gradients: x, W_x, W_h, b_x, b_h (None where the forward
    had no such bias) and state0 = (dh_0, dc_0).
    """
    x, W_h, gates = cache["x"], cache["W_h"], cache["gates"]
    B, T, D = x.shape
    H = W_h.shape[0]
    m = cache["mask"]
    dh_T, dc_T = dstate if dstate is not None else (None, None)
    dh = np.zeros((B, H), x.dtype) if dh_T is None else dh_T.astype(x.dtype, copy=True)
    dc = np.zeros((B, H), x.dtype) if dc_T is None else dc_T.astype(x.dtype, copy=True)
    dz_all = np.zeros((B, T, 4 * H), x.dtype)                  # gradients of the preactivations

    steps = range(T) if cache["reverse"] else range(T - 1, -1, -1)
    for t in steps:
        input_gate = gates[:, t, :H]
        forget_gate = gates[:, t, H:2 * H]
        candidate = gates[:, t, 2 * H:3 * H]
        output_gate = gates[:, t, 3 * H:]
        tanh_c = cache["tanh_cs"][:, t]
        dh_new = dh if dhs is None else dh + dhs[:, t]
        dc_new = dc
        if m is not None:
            mt = m[:, t, None]
            dh_carry, dc_carry = (1 - mt) * dh, (1 - mt) * dc  # backprop through the carried state
            dh_new, dc_new = mt * dh_new, mt * dc_new
        # backprop through h_t = o * tanh(c_t)
        d_output_gate = dh_new * tanh_c
        dc_new = dc_new + dh_new * output_gate * dtanh_from_output(tanh_c)
        # backprop through c_t = f * c_{t-1} + i * g
        d_forget_gate = dc_new * cache["c_prevs"][:, t]
        d_input_gate = dc_new * candidate
        d_candidate = dc_new * input_gate
        dc = dc_new * forget_gate
        # backprop through the gate nonlinearities
        dz = dz_all[:, t]                                      # (B, 4H)
        dz[:, :H] = d_input_gate * dsigmoid_from_output(input_gate)
        dz[:, H:2 * H] = d_forget_gate * dsigmoid_from_output(forget_gate)
        dz[:, 2 * H:3 * H] = d_candidate * dtanh_from_output(candidate)
        dz[:, 3 * H:] = d_output_gate * dsigmoid_from_output(output_gate)
        # backprop through z = ... + h_{t-1} W_h
        dh = dz @ W_h.T
        if cache["recurrent_mask"] is not None:
            dh *= cache["recurrent_mask"]                      # backprop through recurrent dropout
        if m is not None:
            dh, dc = dh + dh_carry, dc + dc_carry

    # backprop through the input projection xw = x W_x + b, all steps at once
    dW_x = x.reshape(B * T, D).T @ dz_all.reshape(B * T, 4 * H)
    dW_h = cache["h_prevs"].reshape(B * T, H).T @ dz_all.reshape(B * T, 4 * H)
    db = dz_all.sum(axis=(0, 1))
    dx = dz_all @ cache["W_x"].T
    return dict(x=dx, W_x=dW_x, W_h=dW_h,
                b_x=db if cache["has_b_x"] else None,
                b_h=db.copy() if cache["has_b_h"] else None,
                state0=(dh, dc))
