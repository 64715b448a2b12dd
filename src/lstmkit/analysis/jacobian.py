"""The Jacobian dc_t/dc_{t-1} of the LSTM cell state: why the cell state eases
vanishing gradients.

Derivation (lstmkit's row-vector layout, gate blocks i, f, g, o of W_h; see
lstmkit.cells.lstm). The cell state is

    c_t = f_t * c_{t-1} + i_t * g_t

and c_{t-1} reaches c_t by two roads:

1. directly, through f_t * c_{t-1}: this gives diag(f_t);
2. through the hidden state h_{t-1} = o_{t-1} * tanh(c_{t-1}), which feeds the
   preactivations of f_t, i_t and g_t via h_{t-1} W_h. The output gate o_{t-1}
   was computed from h_{t-2} and x_{t-1}, so it does not depend on c_{t-1}:

       dh_{t-1}/dc_{t-1} = diag(o_{t-1} * (1 - tanh^2 c_{t-1}))

   and, with sigmoid' = s(1 - s), tanh' = 1 - tanh^2 and W_hf the (H, H)
   forget-gate block of W_h (row j = input unit j of h_{t-1}),

       dc_t/dh_{t-1} = diag(c_{t-1} * f_t (1 - f_t)) W_hf^T      through f_t
                     + diag(g_t * i_t (1 - i_t))    W_hi^T      through i_t
                     + diag(i_t * (1 - g_t^2))       W_hg^T      through g_t

   (o_t does not enter c_t, so W_ho does not appear.)

Together, the four terms the seeds add up:

    dc_t/dc_{t-1} = diag(f_t) + (dc_t/dh_{t-1}) diag(o_{t-1} * (1 - tanh^2 c_{t-1}))

Over many steps the gradient is the product of these matrices. In a simple
RNN each factor is diag(tanh') W^T, which shrinks (or grows) geometrically.
Here the first term is a diagonal the network controls through the forget
gate: with f_t near 1 and small gate derivatives the factor stays near the
identity, so the product does not have to vanish.

Both functions return J of shape (B, H, H) with J[b, k, j] = dc_t[k] / dc_{t-1}[j].
"""
import numpy as np

from ..cells import lstm
from ..cells.activations import dsigmoid_from_output, dtanh_from_output


def _check_step(x, t):
    T = x.shape[1]
    if not (isinstance(t, (int, np.integer)) and 1 <= t < T):
        # at t = 0, h_{-1} is the given initial state, not a function of c_{-1}
        raise ValueError(f"t must be an integer step with 1 <= t < {T} (the sequence length); got {t!r}")
    return int(t)


def _state_before(x, W_x, W_h, b_x, b_h, state0, t):
    """Run the cell over steps 0..t-1: (h_{t-1}, c_{t-1}) and o_{t-1}."""
    H = W_h.shape[0]
    _, (h_prev, c_prev), cache = lstm.forward(x[:, :t], W_x, W_h, b_x, b_h, state0)
    return h_prev, c_prev, cache["gates"][:, t - 1, 3 * H:]


def lstm_cell_state_jacobian(x, W_x, W_h, b_x=None, b_h=None, state0=None, t=1):
    """dc_t/dc_{t-1} (B, H, H) at step t, computed by the cell's own backward pass.

    Runs one step of lstmkit.cells.lstm from (h_{t-1}, c_{t-1}) and backpropagates
    a unit vector on c_t, one unit k at a time: that gives row k of
    dc_t/d(h_{t-1}, c_{t-1}). The h_{t-1} part is then carried back through
    h_{t-1} = o_{t-1} * tanh(c_{t-1}), as the full backward pass does.
    """
    t = _check_step(x, t)
    B, H = x.shape[0], W_h.shape[0]
    h_prev, c_prev, o_prev = _state_before(x, W_x, W_h, b_x, b_h, state0, t)
    _, _, step_cache = lstm.forward(x[:, t:t + 1], W_x, W_h, b_x, b_h, (h_prev, c_prev))
    dh_dc_prev = o_prev * dtanh_from_output(np.tanh(c_prev))   # (B, H) diagonal of dh_{t-1}/dc_{t-1}
    J = np.empty((B, H, H), x.dtype)
    for k in range(H):
        unit = np.zeros((B, H), x.dtype)
        unit[:, k] = 1                                         # upstream gradient e_k on c_t
        dh_prev, dc_prev = lstm.backward(None, (None, unit), step_cache)["state0"]
        # backprop through h_{t-1} = o_{t-1} * tanh(c_{t-1})
        J[:, k, :] = dc_prev + dh_prev * dh_dc_prev
    return J


def lstm_cell_state_jacobian_analytic(x, W_x, W_h, b_x=None, b_h=None, state0=None, t=1):
    """dc_t/dc_{t-1} (B, H, H) at step t from the closed form in the module docstring."""
    t = _check_step(x, t)
    H = W_h.shape[0]
    h_prev, c_prev, o_prev = _state_before(x, W_x, W_h, b_x, b_h, state0, t)
    _, _, step_cache = lstm.forward(x[:, t:t + 1], W_x, W_h, b_x, b_h, (h_prev, c_prev))
    gates = step_cache["gates"][:, 0]                          # (B, 4H) i, f, g, o at step t
    input_gate, forget_gate = gates[:, :H], gates[:, H:2 * H]
    candidate = gates[:, 2 * H:3 * H]
    W_hi, W_hf, W_hg = W_h[:, :H], W_h[:, H:2 * H], W_h[:, 2 * H:3 * H]   # (H, H) each

    # dc_t/dh_{t-1}[b, k, j] = sum over gates of (coefficient of gate k) * W_h?[j, k]
    through_f = (c_prev * dsigmoid_from_output(forget_gate))[:, :, None] * W_hf.T      # (B, H, H)
    through_i = (candidate * dsigmoid_from_output(input_gate))[:, :, None] * W_hi.T
    through_g = (input_gate * dtanh_from_output(candidate))[:, :, None] * W_hg.T
    dc_dh_prev = through_f + through_i + through_g
    dh_dc_prev = o_prev * dtanh_from_output(np.tanh(c_prev))   # (B, H) diag(o_{t-1} (1 - tanh^2 c_{t-1}))

    direct = np.zeros_like(dc_dh_prev)
    idx = np.arange(H)
    direct[:, idx, idx] = forget_gate                          # diag(f_t): the cell-state road
    return direct + dc_dh_prev * dh_dc_prev[:, None, :]
