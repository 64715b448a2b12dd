"""SimpleRNNCell, LSTMCell, GRUCell: the reference cells of lstmkit.cells as
one-step cells for ``RNN(cell)``.

Each step runs the reference engine's forward and backward on a sequence of
length one, so the equations are exactly those of lstmkit.cells.lstm / gru /
simple_rnn (see their docstrings), and ``RNN(LSTMCell(8))`` computes what
``LSTM(8)`` computes -- with the same seed, from the same initial weights
(the weights are drawn in the same order with the same initializers). They
are slower than the LSTM/GRU/SimpleRNN layers (a Python loop over time, no
fused kernel): use them to stack with your own cells, or as a template.
"""
import numpy as np

from .. import cells
from .cell import Cell, register_cell


class _ReferenceCell(Cell):
    """A cell of lstmkit.cells run one step at a time. Weights W_x (D, G*H),
    W_h (H, G*H), b_x (G*H,) and, with two_biases, b_h: the layers' names."""

    module = None

    def __init__(self, units, use_bias=True, two_biases=False, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros"):
        super().__init__()
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(f"units must be a positive integer; got {units!r}")
        self.units = units = int(units)
        self.use_bias = bool(use_bias)
        self.two_biases = bool(two_biases) and self.use_bias
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer
        self.bias_initializer = bias_initializer
        self.state_size = (units,) * len(self.module.STATE_NAMES)
        self.output_size = units

    @property
    def state_names(self):
        return self.module.STATE_NAMES

    def options(self):
        return {}

    def build(self, input_dim):
        GH = self.module.N_GATES * self.units
        # the order of the LSTM/GRU/SimpleRNN layers' build: the same seed gives the same weights
        self.add_weight("W_x", (input_dim, GH), self.kernel_initializer)        # (D, GH)
        self.add_weight("W_h", (self.units, GH), self.recurrent_initializer)    # (H, GH)
        if self.use_bias:
            self.add_weight("b_x", (GH,), self.bias_initializer)
            if self.two_biases:
                self.add_weight("b_h", (GH,), self.bias_initializer)

    def call(self, x_t, states):
        p = self.params
        # one step = the reference forward over a sequence of length 1
        hs, new_states, cache = self.module.forward(x_t[:, None], p["W_x"], p["W_h"], p.get("b_x"),
                                                    p.get("b_h"), tuple(states), **self.options())
        return hs[:, 0], new_states, cache

    def backward(self, d_out, d_states, cache):
        g = self.module.backward(d_out[:, None], tuple(d_states), cache)
        for k in self.params:
            self.grads[k] += g[k]
        return g["x"][:, 0], g["state0"]

    def get_config(self):
        return dict(units=self.units, use_bias=self.use_bias, two_biases=self.two_biases,
                    kernel_initializer=self.kernel_initializer,
                    recurrent_initializer=self.recurrent_initializer,
                    bias_initializer=self.bias_initializer)


@register_cell
class SimpleRNNCell(_ReferenceCell):
    """h_t = act(x_t W_x + b_x + h_{t-1} W_h + b_h), act tanh or relu (lstmkit.cells.simple_rnn)."""

    module = cells.simple_rnn

    def __init__(self, units, activation="tanh", **kwargs):
        if activation not in ("tanh", "relu"):
            raise ValueError(f"activation must be 'tanh' or 'relu'; got {activation!r}")
        self.activation = activation
        super().__init__(units, **kwargs)

    def options(self):
        return {"activation": self.activation}

    def get_config(self):
        return {**super().get_config(), "activation": self.activation}


@register_cell
class LSTMCell(_ReferenceCell):
    """The LSTM step, gates (i, f, g, o) (lstmkit.cells.lstm); states (h, c), output h.
    unit_forget_bias=True starts the forget-gate bias at 1, as the LSTM layer."""

    module = cells.lstm

    def __init__(self, units, unit_forget_bias=True, **kwargs):
        self.unit_forget_bias = bool(unit_forget_bias)
        super().__init__(units, **kwargs)

    def build(self, input_dim):
        super().build(input_dim)
        if self.use_bias and self.unit_forget_bias:
            self.params["b_x"][self.units:2 * self.units] = 1.0

    def get_config(self):
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}


@register_cell
class GRUCell(_ReferenceCell):
    """The GRU step, gates (r, z, n) (lstmkit.cells.gru). reset_after=True keeps
    two biases by default, as the GRU layer."""

    module = cells.gru

    def __init__(self, units, reset_after=True, two_biases=None, **kwargs):
        self.reset_after = bool(reset_after)
        super().__init__(units, two_biases=self.reset_after if two_biases is None else two_biases,
                         **kwargs)

    def options(self):
        return {"reset_after": self.reset_after}

    def get_config(self):
        return {**super().get_config(), "reset_after": self.reset_after}
