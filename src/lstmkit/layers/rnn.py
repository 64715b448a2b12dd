"""RNN(cell): loop a cell written in NumPy over time (Keras's keras.layers.RNN).

The cell is one step, forward and backward (the protocol is in layers/cell.py);
this layer does everything around it, as the LSTM/GRU/SimpleRNN layers do:

    masks             a masked step keeps the states; its output is the previous
                      output (zero_output_for_mask=False, Keras's default) or 0
    go_backwards      reads t = T-1 .. 0 and returns the sequence in that order
    return_sequences  every step's output (B, T, output_size), else the last (B, output_size)
    return_state      [output, *final_states]
    initial_state     a tuple of arrays, one per state (zeros if None)
    stateful          the final states start the next batch (layers/stateful.py)
    stacking          RNN([cell1, cell2]) = RNN(StackedRNNCells([...])), or stack RNN layers
    Bidirectional     Bidirectional(RNN(cell)) makes the other direction from the cell's config

Forward, with m_t the mask of the step (1 = real), per row:

    out_t, new_t = cell.call(x_t, s_{t-1})
    s_t    = m_t * new_t + (1 - m_t) * s_{t-1}          masked step: keep the states
    last_t = m_t * out_t + (1 - m_t) * last_{t-1}       the previous output, last_0 = 0
    y_t    = last_t   (or m_t * out_t with zero_output_for_mask=True)

and backward walks the same steps in reverse, undoing each line (the cell's
backward undoes cell.call). There is no fused kernel here: each step is a
Python call of the cell, which is the point -- the cell is yours to read.
"""
import numpy as np

from .base import Layer, register
from .cell import Cell, StackedRNNCells, cell_from_config, serialize_cell
from .stateful import StatefulMixin

_PROTOCOL = ("state_size", "output_size", "build", "call", "backward")


@register
class RNN(StatefulMixin, Layer):
    supports_masking = True

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, zero_output_for_mask=False, input_dim=None, input_shape=None,
                 **kwargs):
        if isinstance(cell, dict):
            cell = cell_from_config(cell)
        elif isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(list(cell))
        missing = [a for a in _PROTOCOL if not hasattr(cell, a)]
        if missing or not isinstance(cell, Cell):
            raise TypeError(f"RNN needs a cell: a subclass of lstmkit.layers.Cell with state_size, "
                            f"output_size, build, call and backward; got {type(cell).__name__}"
                            + (f" without {missing}" if missing else ""))
        if cell.built and "dtype" not in kwargs:
            kwargs["dtype"] = cell.dtype.name                 # a cell built already keeps its dtype
        super().__init__(**kwargs)
        if cell.built and cell.dtype != self.dtype:
            raise ValueError(f"the cell was built in {cell.dtype} but the RNN layer has dtype "
                             f"{self.dtype}; give both one dtype")
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.states = None
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.final_state = None
        self.initial_state_grad = None
        self._cache = None
        if cell.built:
            Layer.build(self, (None, cell.input_dim))         # the cell keeps the weights it has
        elif input_shape is not None:
            self.build(tuple(input_shape))
        elif input_dim is not None:
            self.build((None, int(input_dim)))

    # ---- the cell's weights are the layer's -------------------------------------------
    @property
    def params(self):
        return self.cell.params if hasattr(self, "cell") else {}

    @params.setter
    def params(self, value):
        if value:
            raise AttributeError("an RNN layer's params are its cell's; set them there")

    @property
    def grads(self):
        return self.cell.grads if hasattr(self, "cell") else {}

    @grads.setter
    def grads(self, value):
        if value:
            raise AttributeError("an RNN layer's grads are its cell's")

    def zero_grads(self):
        self.cell.zero_grads()

    @property
    def state_names(self):
        return tuple(self.cell.state_names)

    def _state_shapes(self, B):
        return [(B, s) for s in self.cell.state_sizes]

    def build(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"RNN expects input of shape (batch, time, features); got an input shape "
                             f"of {(None,) + tuple(input_shape)}")
        self.cell.build_weights(int(input_shape[-1]), self.dtype, self._rng())
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        O = self.cell.output_size
        out = (input_shape[0], O) if self.return_sequences else (O,)
        if self.return_state:
            return [out] + [(s,) for s in self.cell.state_sizes]
        return out

    def compute_mask(self, x, mask):
        out_mask = None
        if mask is not None and self.return_sequences:
            out_mask = mask[:, ::-1] if self.go_backwards else mask
        if self.return_state:
            return [out_mask] + [None] * len(self.state_names)
        return out_mask

    # ---- forward over time ----------------------------------------------------------
    def _what(self):
        return f"RNN {self.name!r} ({type(self.cell).__name__})"

    def _check_input(self, x, mask):
        x = np.asarray(x)
        if x.ndim != 3:
            raise ValueError(f"{self._what()} expects input of shape (batch, time, features); "
                             f"got shape {x.shape}")
        if not self.built:
            self.build(x.shape[1:])
        D = self.input_shape[-1]
        if x.shape[2] != D:
            raise ValueError(f"{self._what()} was built for {D} input features; got input with "
                             f"{x.shape[2]} (shape {x.shape})")
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape != x.shape[:2]:
                raise ValueError(f"{self._what()}: mask must have shape {x.shape[:2]} (batch, time); "
                                 f"got {mask.shape}")
            mask = mask.astype(bool, copy=False)
        return np.ascontiguousarray(x, dtype=self.dtype), mask

    def _initial_state(self, initial_state, B):
        shapes = self._state_shapes(B)
        if initial_state is None:
            return tuple(np.zeros(s, self.dtype) for s in shapes)
        if isinstance(initial_state, np.ndarray):
            initial_state = (initial_state,)
        if len(initial_state) != len(shapes):
            raise ValueError(f"initial_state for {self._what()} must hold {len(shapes)} arrays "
                             f"{self.state_names}; got {len(initial_state)}")
        state = tuple(np.ascontiguousarray(s, dtype=self.dtype) for s in initial_state)
        for name, s, shape in zip(self.state_names, state, shapes):
            if s.shape != shape:
                raise ValueError(f"initial_state {name!r} of {self._what()} must have shape {shape}; "
                                 f"got {s.shape}")
        return state

    def _check_step(self, t, out, new, B, state0):
        """The cell's first step, checked: a wrong shape is named here, not deep in numpy."""
        O, cell = self.cell.output_size, type(self.cell).__name__
        if not isinstance(new, (tuple, list)) or len(new) != len(state0):
            raise ValueError(f"{cell}.call must return new_states as a tuple of {len(state0)} arrays "
                             f"{self.state_names}; got {type(new).__name__}"
                             + (f" of {len(new)}" if isinstance(new, (tuple, list)) else ""))
        if np.shape(out) != (B, O):
            raise ValueError(f"{cell}.call returned an output of shape {np.shape(out)} at step {t}; "
                             f"output_size={O} means ({B}, {O})")
        for name, s, s0 in zip(self.state_names, new, state0):
            if np.shape(s) != s0.shape:
                raise ValueError(f"{cell}.call returned state {name!r} of shape {np.shape(s)}; "
                                 f"state_size says {s0.shape}")

    def forward(self, x, training=False, mask=None, initial_state=None):
        x, mask = self._check_input(x, mask)                                     # (B, T, D)
        B, T, _ = x.shape
        state0 = self._initial_state(self._carried_state(initial_state, B), B)
        cell, O = self.cell, self.cell.output_size
        steps = range(T - 1, -1, -1) if self.go_backwards else range(T)
        ys = np.zeros((B, T, O), self.dtype) if self.return_sequences else None   # reading order
        last = np.zeros((B, O), self.dtype)                                       # the previous output
        states, caches = state0, []
        for k, t in enumerate(steps):
            out, new, cache = cell.call(x[:, t], states)
            if k == 0:
                self._check_step(t, out, new, B, state0)
            caches.append(cache)
            if mask is None:
                states, last = tuple(new), out
                y = out
            else:
                m = mask[:, t, None]                                             # (B, 1)
                states = tuple(np.where(m, n, s) for n, s in zip(new, states))  # masked: keep the states
                last = np.where(m, out, last)                                    # masked: keep the output
                y = np.where(m, out, 0) if self.zero_output_for_mask else last
            if ys is not None:
                ys[:, k] = y
        self._cache = (x.shape, mask, caches)
        self.final_state = tuple(np.asarray(s, self.dtype) for s in states)
        self._keep_state(self.final_state)
        out = ys if self.return_sequences else np.asarray(last, self.dtype)
        return [out, *self.final_state] if self.return_state else out

    def backward(self, dout, dstate=None):
        """dout: the output's gradient (a list [d_output, *d_states] with
        return_state); dstate (optional): more gradients for final_state, one
        per state (None = 0). Returns dx; fills grads and initial_state_grad."""
        if self._cache is None:
            raise RuntimeError(f"backward() called on layer {self.name!r} before forward()")
        shape, mask, caches = self._cache
        B, T, D = shape
        O, n = self.cell.output_size, len(self.state_names)
        d_states = [None] * n
        if self.return_state:
            dout, *d_states = dout
        extra = [None] * n if dstate is None else list(dstate)
        d_states = [np.zeros(s, self.dtype) if a is None and b is None else
                    (b if a is None else (a if b is None else a + b))
                    for a, b, s in zip(d_states, extra, self._state_shapes(B))]
        d_last = np.zeros((B, O), self.dtype)                 # gradient of the previous output
        dys = None
        if dout is not None:
            if self.return_sequences:
                dys = np.asarray(dout)
            else:
                d_last = np.asarray(dout, self.dtype)
        self.cell.zero_grads()
        dx = np.zeros(shape, self.dtype)
        steps = list(range(T - 1, -1, -1) if self.go_backwards else range(T))
        for k in range(T - 1, -1, -1):
            t = steps[k]
            d_new = d_states
            if mask is None:
                # y_t = last_t = out_t: both gradients reach out_t, none goes further back
                d_out = d_last if dys is None else d_last + dys[:, k]
                d_last = np.zeros_like(d_last)
            else:
                m = mask[:, t, None]
                if dys is not None and not self.zero_output_for_mask:
                    d_last = d_last + dys[:, k]                  # backprop through y_t = last_t
                # backprop through last_t = m * out_t + (1 - m) * last_{t-1}
                d_out = np.where(m, d_last, 0)
                d_last = np.where(m, 0, d_last)
                if dys is not None and self.zero_output_for_mask:
                    d_out = d_out + np.where(m, dys[:, k], 0)   # backprop through y_t = m * out_t
                # backprop through s_t = m * new_t + (1 - m) * s_{t-1}
                d_new = [np.where(m, d, 0) for d in d_states]
                d_carry = [np.where(m, 0, d) for d in d_states]
            dx_t, d_prev = self.cell.backward(d_out, tuple(d_new), caches[k])
            dx[:, t] = dx_t
            d_states = list(d_prev) if mask is None else [a + b for a, b in zip(d_prev, d_carry)]
        self.initial_state_grad = tuple(d_states)
        return dx

    # ---- saving ---------------------------------------------------------------------
    def get_config(self):
        cfg = super().get_config()
        cfg.update(cell=serialize_cell(self.cell), return_sequences=self.return_sequences,
                   return_state=self.return_state, go_backwards=self.go_backwards,
                   stateful=self.stateful, zero_output_for_mask=self.zero_output_for_mask)
        if self.built:
            cfg["input_shape"] = [None if d is None else int(d) for d in self.input_shape]
        return cfg

    def fresh_config(self):
        """get_config with an unbuilt copy of the cell object in place of its
        spec: a copy that needs no registry (Bidirectional's other direction)."""
        cfg = self.get_config()
        cfg["cell"] = self.cell.fresh_copy()
        cfg.pop("input_shape", None)
        return cfg
