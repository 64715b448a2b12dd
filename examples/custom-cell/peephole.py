"""A peephole LSTM cell, written for lstmkit.layers.RNN: one step forward, one
step back, in NumPy.

Peephole connections (Gers, Schraudolph & Schmidhuber, 2002) let the gates
look at the cell state itself, not only at h = o * tanh(c): the input and
forget gates see c_{t-1}, the output gate sees the new c_t. Each peephole is
a vector (one weight per unit, an elementwise product), not a matrix.

    i_t = sigmoid(x_t W_xi + h_{t-1} W_hi + p_i * c_{t-1} + b_i)     input gate
    f_t = sigmoid(x_t W_xf + h_{t-1} W_hf + p_f * c_{t-1} + b_f)     forget gate
    g_t = tanh   (x_t W_xg + h_{t-1} W_hg                 + b_g)     candidate
    c_t = f_t * c_{t-1} + i_t * g_t                                  cell state
    o_t = sigmoid(x_t W_xo + h_{t-1} W_ho + p_o * c_t     + b_o)     output gate
    h_t = o_t * tanh(c_t)                                            hidden state, the output

Weights: W_x (D, 4H) and W_h (H, 4H) with lstmkit's gate order (i, f, g, o),
b (4H,), and the peepholes p (3, H): rows p_i, p_f, p_o. With p = 0 this is
lstmkit's LSTM (lstmkit.cells.lstm), which train.py checks.
"""
import numpy as np

import lstmkit as lk


def sigmoid(z):
    return 0.5 * np.tanh(0.5 * z) + 0.5          # = 1 / (1 + exp(-z)), never overflows


@lk.register_cell                                # so that load_model finds the class by its name
class PeepholeLSTMCell(lk.Cell):
    def __init__(self, units):
        super().__init__()
        self.units = units
        self.state_size = (units, units)         # (h, c)
        self.output_size = units

    @property
    def state_names(self):
        return ("h", "c")

    def build(self, input_dim):
        H = self.units
        self.add_weight("W_x", (input_dim, 4 * H), "glorot_uniform")
        self.add_weight("W_h", (H, 4 * H), "orthogonal")
        self.add_weight("b", (4 * H,), "zeros")
        self.params["b"][H:2 * H] = 1.0          # forget gate open at the start, as Keras's unit_forget_bias
        self.add_weight("p", (3, H), "zeros")    # peepholes start closed: a plain LSTM at first

    def call(self, x_t, states):
        h_prev, c_prev = states                                          # (B, H) each
        W_x, W_h, b, p = self.params["W_x"], self.params["W_h"], self.params["b"], self.params["p"]
        H = self.units
        z = x_t @ W_x + h_prev @ W_h + b                                 # (B, 4H) preactivations, no peepholes yet
        i = sigmoid(z[:, :H] + p[0] * c_prev)                            # input gate peeks at c_{t-1}
        f = sigmoid(z[:, H:2 * H] + p[1] * c_prev)                       # forget gate peeks at c_{t-1}
        g = np.tanh(z[:, 2 * H:3 * H])                                   # candidate
        c = f * c_prev + i * g                                           # c_t = f * c_{t-1} + i * g
        o = sigmoid(z[:, 3 * H:] + p[2] * c)                             # output gate peeks at c_t
        tanh_c = np.tanh(c)
        h = o * tanh_c                                                   # h_t = o * tanh(c_t)
        cache = (x_t, h_prev, c_prev, i, f, g, o, c, tanh_c)
        return h, (h, c), cache

    def backward(self, d_out, d_states, cache):
        x_t, h_prev, c_prev, i, f, g, o, c, tanh_c = cache
        W_x, W_h, p = self.params["W_x"], self.params["W_h"], self.params["p"]
        dh_next, dc_next = d_states
        dh = d_out + dh_next                     # h_t is both the output and the state h
        # backprop through h_t = o * tanh(c_t)
        do = dh * tanh_c
        dc = dc_next + dh * o * (1 - tanh_c ** 2)
        # backprop through o = sigmoid(... + p_o * c_t): c_t reaches o through its peephole
        dz_o = do * o * (1 - o)
        dc = dc + dz_o * p[2]
        # backprop through c_t = f * c_{t-1} + i * g
        di, df, dg = dc * g, dc * c_prev, dc * i
        dc_prev = dc * f
        # backprop through the gate nonlinearities
        dz_i = di * i * (1 - i)
        dz_f = df * f * (1 - f)
        dz_g = dg * (1 - g ** 2)
        # backprop through the peepholes p_i * c_{t-1}, p_f * c_{t-1}
        dc_prev = dc_prev + dz_i * p[0] + dz_f * p[1]
        # backprop through z = x W_x + h W_h + b (gate order i, f, g, o)
        dz = np.concatenate([dz_i, dz_f, dz_g, dz_o], axis=1)            # (B, 4H)
        grads = self.grads                       # ADD into them: the layer zeroes them once per pass
        grads["W_x"] += x_t.T @ dz
        grads["W_h"] += h_prev.T @ dz
        grads["b"] += dz.sum(axis=0)
        grads["p"][0] += (dz_i * c_prev).sum(axis=0)
        grads["p"][1] += (dz_f * c_prev).sum(axis=0)
        grads["p"][2] += (dz_o * c).sum(axis=0)
        dx = dz @ W_x.T
        dh_prev = dz @ W_h.T
        return dx, (dh_prev, dc_prev)

    def get_config(self):
        return {"units": self.units}
