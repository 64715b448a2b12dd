"""Streaming inference: a recurrent layer run one time step per call, the
state kept inside. Token-by-token generation and online forecasting call a
step per new input, so what a call costs outside the arithmetic matters as
much as the arithmetic (LSTM D = H = 32, batch 1: about 0.6-0.85 us of
arithmetic in 1.4-1.7 us per call; docs/kernels.md, "Streaming").

    s = layer.stream(batch=1)          # state zeros
    h_t = s.step(x_t)                  # x_t (B, D) -> h_t (B, H), a new array
    s.step(x_t, out=h_buf)             # or into your own (B, H) array
    s.state                            # copies of (h, c) (LSTM) or (h,)
    s.state = (h, c); s.reset()        # set, or back to zeros

What a call does: check x_t (shape tuple, dtype, contiguity: about 0.2 us),
check that the layer's params are still the views of its packed weights
(layers/packed.py; in-place updates need nothing, a replaced array makes the
stream re-read the params), then one call of the compiled kernel through its
entry point, with four arrays: x_t, the packed weights, the stacked state
(S, B, H) and the output. The entry point skips numba's dispatcher, which would
type every argument again (0.45 us more here); the checks here are what make
that safe: an array of another dtype, rank or layout would be misread.
Not thread-safe: a stream is one set of sequences, stepped by one caller.
"""
import numpy as np

from ..kernels import packed, workspace

_ndarray = np.ndarray
_empty = np.empty


class Stream:
    """A layer's step, bound once. Use RNNLayer.stream(batch, state) to make one.

    Weights: the stream reads the layer's own params (no copy), so an
    optimizer step, set_weights or any in-place edit shows at the next step;
    assigning a new array to layer.params[name] does too (the stream notices and
    re-reads the params). It always runs the compiled step kernel, whatever the
    layer's engine.
    """

    __slots__ = ("layer", "batch", "_kernel", "_flag", "_state", "_dtype", "_x_shape",
                 "_h_shape", "_params", "_pack", "_wx", "_wh", "_bx", "_bh")

    def __init__(self, layer, batch=1, state=None):
        if not layer.built:
            raise ValueError(f"{type(layer).__name__} {layer.name!r} is not built yet: build it "
                             f"(input_dim=, input_shape=, or a first forward) before stream()")
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
            raise ValueError(f"stream(): batch must be a positive integer; got {batch!r}")
        self.layer = layer
        self.batch = int(batch)
        self._dtype = layer.dtype
        self._kernel = packed.stream_entry(layer.cell, layer.dtype)
        self._flag = layer.kernel_flag()
        H = layer.units
        self._h_shape = (self.batch, H)
        self._state = workspace.aligned_zeros((len(layer.state_names), self.batch, H), layer.dtype)  # (S, B, H)
        self._bind()
        if state is not None:
            self.state = state

    def _bind(self):
        """Take the layer's current packed weights (re-packing replaced params)."""
        pk = self.layer.packed_weights()
        self._params = pk.params
        self._pack = pk.array                                                # (D + H + 2, G*H)
        self._wx, self._wh, self._bx, self._bh = pk.views
        self._x_shape = (self.batch, pk.D)

    def step(self, x_t, out=None):
        """x_t (B, D) -> h_t (B, H), the state moved one step on.

        out: optional (B, H) array of the layer's dtype to write h_t into
        (returned); without it h_t is a new array each call."""
        x = x_t
        if (x.__class__ is not _ndarray or x.shape != self._x_shape or x.dtype is not self._dtype
                or not x.flags.c_contiguous):
            x = self._checked("x_t", x_t, self._x_shape)
        if out is None:
            out = _empty(self._h_shape, self._dtype)
        elif (out.__class__ is not _ndarray or out.shape != self._h_shape
              or out.dtype is not self._dtype or not out.flags.carray):      # C, aligned, writeable
            self._checked("out", out, self._h_shape, writable=True)
        p = self.layer.params
        # PackedWeights.is_current written out: a method call would add 0.05 us
        if not (p is self._params and p["W_x"] is self._wx and p["W_h"] is self._wh
                and (self._bx is None or p["b_x"] is self._bx)
                and (self._bh is None or p["b_h"] is self._bh)):
            self._bind()                                                    # params replaced
            x = self._checked("x_t", x_t, self._x_shape)                    # D may have changed
        self._kernel(x, self._pack, self._state, out, self._flag)
        return out

    def _checked(self, name, a, shape, writable=False):
        """The slow path of step's checks: a C array of the stream's dtype, or
        an error naming the argument, what was expected and what came."""
        what = f"{type(self.layer).__name__} stream step(): {name}"
        if not isinstance(a, np.ndarray):
            if writable:
                raise TypeError(f"{what} must be a numpy array; got {type(a).__name__}")
            a = np.asarray(a, dtype=self._dtype)                            # a list or scalar
        if a.shape != shape:
            raise ValueError(f"{what} must have shape {shape} (batch, "
                             f"{'features' if name == 'x_t' else 'units'}); got {a.shape}")
        if a.dtype != self._dtype:
            # no silent cast: it would hide a copy per token
            raise TypeError(f"{what} must have dtype {self._dtype} (the layer's); got {a.dtype}")
        if writable:
            if not a.flags.carray:
                raise ValueError(f"{what} must be a writeable, aligned C-contiguous array")
            return a
        return np.ascontiguousarray(a)                                      # e.g. x[:, t]

    @property
    def state(self):
        """Copies of the state arrays, (h, c) for an LSTM, (h,) otherwise, each (B, H)."""
        return tuple(s.copy() for s in self._state)

    @state.setter
    def state(self, value):
        names = self.layer.state_names
        if isinstance(value, np.ndarray) and len(names) == 1:
            value = (value,)
        if not isinstance(value, (tuple, list)) or len(value) != len(names):
            raise ValueError(f"stream state must be {len(names)} array(s) {names}, each "
                             f"{self._h_shape}; got {type(value).__name__}"
                             + (f" of {len(value)}" if isinstance(value, (tuple, list)) else ""))
        for name, v in zip(names, value):
            if np.shape(v) != self._h_shape:
                raise ValueError(f"stream state {name!r} must have shape {self._h_shape}; "
                                 f"got {np.shape(v)}")
        for s, v in zip(self._state, value):
            s[...] = v

    def reset(self, state=None):
        """Back to the zero state, or to `state`."""
        if state is None:
            self._state[...] = 0
        else:
            self.state = state

    def __repr__(self):
        return (f"Stream({type(self.layer).__name__} {self.layer.name!r}, batch={self.batch}, "
                f"input {self._x_shape[1]}, units {self._h_shape[1]}, dtype={self._dtype})")
