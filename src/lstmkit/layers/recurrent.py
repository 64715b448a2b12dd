"""Recurrent layers: run a cell of ``lstmkit.cells`` (or its fast kernel) over time.

The cell holds the math of one step (see its module docstring for the
equations and gate order); the layer owns the weights, picks the engine,
applies dropout, handles masks, direction and what is returned.

Weights (``params``): W_x (D, G*H) input kernel, W_h (H, G*H) recurrent
kernel, b_x (G*H,) bias and, with ``two_biases=True`` (PyTorch's layout), a
second bias b_h (G*H,). G = 4 for the LSTM (i, f, g, o), 3 for the GRU
(r, z, n), 1 for the simple RNN. One bias is Keras's layout and gives Keras's
parameter counts; the GRU with reset_after=True keeps two biases by default,
as both Keras and PyTorch do, because b_hn sits inside r * (h W_hn + b_hn).

Masks: a masked step carries the state; what the output sequence holds there
is ``zero_output_for_mask`` (layers/masked_outputs.py): the previous output
(False, Keras's default) or 0 (True, PyTorch's packed sequences). The engines
write 0; the layer repeats the previous output on top of them, so the kernels
know one convention only. ``stateful=True``: layers/stateful.py.
"""
import numpy as np

from .. import initializers, kernels
from ..engines import get_engine
from ..kernels import packed
from .base import Layer, register
from .masked_outputs import repeat_last_output, route_repeated_grads, last_output_rows
from .packed import PackedWeights
from .stateful import StatefulMixin
from .stream import Stream


def _check_rate(name, value):
    if not (isinstance(value, (int, float)) and 0.0 <= value < 1.0):
        raise ValueError(f"{name} must be a number in [0, 1); got {value!r}")
    return float(value)


def _writeable(a):
    return a if a.flags.writeable else a.copy()


class _Lease:
    """The memory of a folded table, leased from the kernels' buffer pool
    (kernels/workspace.py) and given back when the fold holding this object
    is dropped: a new fold (new weights, or a new model of the same shape)
    writes into memory already mapped, not into fresh pages. Memory only:
    the table is computed again whenever the fold is made."""

    def empty(self, shape, dtype):
        from ..kernels import workspace
        a = workspace.lease(shape, dtype)
        workspace.hold(self, a)
        return a


def _same_array(a, b):
    if a is None or b is None:
        return a is b
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)


class RNNLayer(StatefulMixin, Layer):
    """Base of SimpleRNN, LSTM and GRU. Not used directly."""

    cell = None
    supports_masking = True

    def __init__(self, units, return_sequences=False, return_state=False, go_backwards=False,
                 dropout=0.0, recurrent_dropout=0.0, use_bias=True, two_biases=False,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", engine="auto", stateful=False, zero_output_for_mask=False,
                 input_dim=None, input_shape=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(f"units must be a positive integer; got {units!r}")
        self.units = int(units)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.states = None                                # the carried state (stateful=True)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.dropout = _check_rate("dropout", dropout)
        self.recurrent_dropout = _check_rate("recurrent_dropout", recurrent_dropout)
        self.use_bias = bool(use_bias)
        self.two_biases = bool(two_biases) and self.use_bias
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer
        self.bias_initializer = bias_initializer
        for arg in ("kernel_initializer", "recurrent_initializer", "bias_initializer"):
            initializers.get(getattr(self, arg))          # fail early on a bad name
        get_engine(self.cell, engine)                     # fail early on a bad engine name
        self.engine = engine
        self.final_state = None
        self.initial_state_grad = None
        self._cache = None
        self._fold = None                                 # (engine, inputs, options, table, lease) of the folded embedding
        self._pack = None                                 # PackedWeights: the params are views into it
        self._step_fn = None                              # (engine setting, step kernel or None, flag)
        if input_shape is not None:
            self.build(tuple(input_shape))
        elif input_dim is not None:
            self.build((None, int(input_dim)))

    # ---- the cell this layer runs -------------------------------------------------
    @property
    def n_gates(self):
        return get_engine(self.cell, "reference").N_GATES

    @property
    def state_names(self):
        return get_engine(self.cell, "reference").STATE_NAMES

    def cell_options(self):
        """Keyword options of the cell (reset_after, activation)."""
        return {}

    def engine_module(self, training=False):
        # recurrent dropout is done by the reference engine, as cuDNN paths in
        # other libraries also fall back to a generic loop for it
        if training and self.recurrent_dropout > 0:
            return get_engine(self.cell, "reference")
        return get_engine(self.cell, self.engine)

    # ---- weights --------------------------------------------------------------------
    def build(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"{type(self).__name__} expects input of shape (batch, time, features); "
                             f"got an input shape of {(None,) + tuple(input_shape)}")
        D, H, G = int(input_shape[-1]), self.units, self.n_gates
        rng = self._rng()
        init = lambda name, shape: initializers.get(getattr(self, name))(shape, rng, self.dtype, units=H)
        self.params = {"W_x": init("kernel_initializer", (D, G * H)),            # (D, GH)
                       "W_h": init("recurrent_initializer", (H, G * H))}         # (H, GH)
        if self.use_bias:
            self.params["b_x"] = init("bias_initializer", (G * H,))
            if self.two_biases:
                self.params["b_h"] = init("bias_initializer", (G * H,))
        # one buffer for all four, the params views into it (layers/packed.py)
        self._pack = PackedWeights(self.params, G, H, self.dtype, owner=self._what())
        self._init_bias()
        self._dropout_rng = np.random.default_rng(None if self.seed is None else self.seed + 7919)
        self.zero_grads()
        super().build(input_shape)

    def _init_bias(self):
        pass

    def _what(self):
        return f"{type(self).__name__} {self.name!r}"

    def packed_weights(self):
        """The weights as one (D + H + 2, G*H) buffer that the params are views
        of (layers/packed.py); made anew when a param was replaced."""
        pk = self._pack
        if pk is None or not pk.is_current(self.params):
            pk = self._pack = PackedWeights(self.params, self.n_gates, self.units, self.dtype,
                                            owner=self._what())
        return pk

    def kernel_flag(self):
        """The cell option the step kernels take as one bool (GRU reset_after,
        SimpleRNN relu); unused by the LSTM."""
        return False

    def __getstate__(self):
        # a copy (deepcopy, pickle) of a view is a separate array, so a copied
        # buffer would not be what the copied params view: the copy re-packs
        # on its first step; compiled kernels are not copied either
        state = self.__dict__.copy()
        state["_pack"] = None
        state["_step_fn"] = None
        return state

    def compute_output_shape(self, input_shape):
        T = input_shape[0]
        out = (T, self.units) if self.return_sequences else (self.units,)
        if self.return_state:
            return [out] + [(self.units,)] * len(self.state_names)
        return out

    def compute_mask(self, x, mask):
        out_mask = None
        if mask is not None and self.return_sequences:
            out_mask = mask[:, ::-1] if self.go_backwards else mask
        if self.return_state:
            return [out_mask] + [None] * len(self.state_names)     # one per returned array, as Keras
        return out_mask

    def _state_shapes(self, B):
        return [(B, self.units)] * len(self.state_names)

    # ---- forward over time ----------------------------------------------------------
    def _check_input(self, x):
        x = np.asarray(x)
        if x.ndim != 3:
            raise ValueError(f"{type(self).__name__} {self.name!r} expects input of shape "
                             f"(batch, time, features); got shape {x.shape}")
        if not self.built:
            self.build(x.shape[1:])
        D = self.params["W_x"].shape[0]
        if x.shape[2] != D:
            raise ValueError(f"{type(self).__name__} {self.name!r} was built for {D} input features; "
                             f"got input with {x.shape[2]} (shape {x.shape})")
        return np.ascontiguousarray(x, dtype=self.dtype)

    def _initial_state(self, initial_state, B):
        n = len(self.state_names)
        if initial_state is None:
            return tuple(np.zeros((B, self.units), self.dtype) for _ in range(n))
        if isinstance(initial_state, np.ndarray):
            initial_state = (initial_state,)
        if len(initial_state) != n:
            raise ValueError(f"initial_state for {type(self).__name__} must hold {n} arrays "
                             f"{self.state_names}; got {len(initial_state)}")
        return tuple(np.ascontiguousarray(s, dtype=self.dtype) for s in initial_state)

    def forward(self, x, training=False, mask=None, initial_state=None):
        x = self._check_input(x)                                                  # (B, T, D)
        mask = self._check_mask(mask, x.shape)
        state0 = self._initial_state(self._carried_state(initial_state, x.shape[0]), x.shape[0])
        if not training:
            # inference keeps no caches; a backward() afterwards reruns the forward with them
            hs, state = self._infer(lambda engine, p, need: engine.forward(
                x, p["W_x"], p["W_h"], p.get("b_x"), p.get("b_h"), state0, mask=mask,
                reverse=self.go_backwards, need_cache=False, need_outputs=need,
                **self.cell_options())[:2])
            self._cache = ("deferred", lambda: x, state0, mask)
            return self._outputs(hs, state, mask)
        return self._forward_cached(x, state0, mask, training)

    def _check_mask(self, mask, shape):
        if mask is None:
            return None
        mask = np.asarray(mask)
        if mask.shape != shape[:2]:
            raise ValueError(f"{self._what()}: mask must have shape {shape[:2]} (batch, time) to match "
                             f"the input {shape}; got {mask.shape}")
        return mask.astype(bool, copy=False)

    def forward_from_embedding(self, ids, embeddings, mask=None, initial_state=None):
        """Inference on token ids (B, T) fed through an embedding table (V, D):
        the same as forward(embeddings[ids], training=False), but with a fast
        kernel the table is folded through the input kernel once,
        (E W_x + b)[ids] = E[ids] W_x + b, so no per-step input product is left."""
        engine = self.engine_module(False)
        if not hasattr(engine, "forward_lookup"):
            return self.forward(embeddings[ids], mask=mask, initial_state=initial_state)
        if not self.built:
            self.build((ids.shape[1], embeddings.shape[1]))
        D = self.params["W_x"].shape[0]
        if embeddings.shape[1] != D:
            raise ValueError(f"{type(self).__name__} {self.name!r} was built for {D} input features; "
                             f"the embedding table has {embeddings.shape[1]}")
        mask = self._check_mask(mask, ids.shape)
        state0 = self._initial_state(self._carried_state(initial_state, ids.shape[0]), ids.shape[0])
        table = self._folded_table(engine, embeddings)
        hs, state = self._infer(lambda engine, p, need: engine.forward_lookup(
            ids, table, p["W_h"], state0, mask=mask, reverse=self.go_backwards, need_outputs=need,
            **self.lookup_options()))
        self._cache = ("deferred", lambda: embeddings[ids], state0, mask)
        return self._outputs(hs, state, mask)

    def _folded_table(self, engine, embeddings):
        """engine.project_table of the embeddings and this layer's input side,
        recomputed only when one of them changed: compared by value, so
        in-place edits of the weights (optimizer steps, set_weights) count too."""
        p = self.params
        inputs = (np.asarray(embeddings, self.dtype), p["W_x"], p.get("b_x"), p.get("b_h"))
        options = self.table_options()
        fold = self._fold
        if (fold is None or fold[0] is not engine or fold[2] != options
                or not all(map(_same_array, fold[1], inputs))):
            self._fold = None                                 # the old table's memory goes back first
            lease = _Lease()
            table = engine.project_table(*inputs, empty=lease.empty, **options)
            self._fold = fold = (engine, tuple(None if a is None else a.copy() for a in inputs),
                                 options, table, lease)
        return fold[3]

    def table_options(self):
        """Keyword options of engine.project_table beyond (E, W_x, b_x, b_h)."""
        return {}

    def lookup_options(self):
        """Keyword options of engine.forward_lookup beyond (ids, table, W_h, state0,
        mask, reverse, need_outputs): the cell options by default."""
        return self.cell_options()

    def _infer(self, run):
        """run(engine, params, need_outputs) -> (hs or None, state); records the final state."""
        hs, state = run(self.engine_module(False), self.params, self.return_sequences)
        self.final_state = state
        self._keep_state(state)
        return hs, state

    def _reading_order_mask(self, mask):
        return mask[:, ::-1] if self.go_backwards else mask

    def _outputs(self, hs, state, mask):
        if self.return_sequences:
            out = hs[:, ::-1] if self.go_backwards else hs                        # (B, T, H) reading order
            if mask is not None and not self.zero_output_for_mask:
                # a masked step repeats the previous output (the engines wrote 0)
                out = repeat_last_output(out, self._reading_order_mask(mask))
        else:
            out = state[0]                                                        # (B, H)
            if mask is not None:
                rows = last_output_rows(mask)
                if not rows.all():
                    out = np.where(rows[:, None], out, 0).astype(self.dtype)    # nothing read: 0
        if self.return_state:
            return [out, *state]
        return out

    def _forward_cached(self, x, state0, mask, training):
        """The forward that keeps what backward() needs."""
        B = x.shape[0]
        input_drop = None
        if training and self.dropout > 0:
            keep = 1.0 - self.dropout
            # one mask per sequence, the same at every step (variational dropout)
            input_drop = (self._dropout_rng.random((B, 1, x.shape[2])) < keep).astype(self.dtype) / keep
            x = x * input_drop
        recurrent_mask = None
        if training and self.recurrent_dropout > 0:
            keep = 1.0 - self.recurrent_dropout
            recurrent_mask = (self._dropout_rng.random((B, self.units)) < keep).astype(self.dtype) / keep
        engine = self.engine_module(training)
        extra = {} if recurrent_mask is None else {"recurrent_mask": recurrent_mask}
        p = self.params
        # without return_sequences only the final state leaves the layer: the
        # engine may then skip writing the outputs (the fast ones do)
        hs, state, cache = engine.forward(x, p["W_x"], p["W_h"], p.get("b_x"), p.get("b_h"), state0,
                                          mask=mask, reverse=self.go_backwards, **extra,
                                          need_outputs=self.return_sequences, **self.cell_options())
        self._cache = (engine, cache, input_drop, mask)
        self.final_state = state
        self._keep_state(state)
        return self._outputs(hs, state, mask)

    def backward(self, dout, dstate=None):
        """dstate (optional): gradients for final_state, one per state (None = 0),
        added to those given through return_state."""
        if self._cache is None:
            raise RuntimeError(f"backward() called on layer {self.name!r} before forward()")
        if self._cache[0] == "deferred":
            # the forward was an inference one (training=False) and kept no
            # cache: run it again with the caches; no dropout, so same outputs
            _, inputs, state0, mask = self._cache
            self._forward_cached(self._check_input(inputs()), state0, mask, False)
        engine, cache, input_drop, mask = self._cache
        extra = [None] * len(self.state_names) if dstate is None else list(dstate)
        dstate = [None] * len(self.state_names)
        if self.return_state:
            dout, *ds = dout
            dstate = list(ds)
        dstate = [a if b is None else (b if a is None else a + b) for a, b in zip(dstate, extra)]
        dhs = None
        if dout is None:
            pass                                                                  # the output was not used
        elif self.return_sequences:
            if mask is not None and not self.zero_output_for_mask:
                # backprop through the repetition: a masked step's gradient goes to the step it copies
                dout = route_repeated_grads(np.asarray(dout), self._reading_order_mask(mask))
            dhs = np.ascontiguousarray(dout[:, ::-1] if self.go_backwards else dout, dtype=self.dtype)
        else:
            if mask is not None:
                dout = np.where(last_output_rows(mask)[:, None], dout, 0)       # rows that output 0
            # the output is the final hidden state: its gradient joins dh_T
            dstate[0] = dout if dstate[0] is None else dstate[0] + dout
        dstate = tuple(None if d is None else np.ascontiguousarray(d, dtype=self.dtype) for d in dstate)
        g = engine.backward(dhs, dstate, cache)
        self.grads = {k: g[k] for k in self.params}
        self.initial_state_grad = g["state0"]
        dx = g["x"]
        if input_drop is not None:
            dx = dx * input_drop                                                  # backprop through dropout
        return dx

    def stream(self, batch=1, state=None):
        """A Stream (layers/stream.py) for streaming inference: the layer's step
        bound once, the state kept inside. ``s.step(x_t)`` -> h_t, ``s.state``,
        ``s.reset()``. It reads this layer's params at every step (no copy)."""
        return Stream(self, batch, state)

    def step(self, x_t, state=None, out=None):
        """One step for streaming inference: x_t (B, D) -> (h_t (B, H), new state).

        state: a tuple like final_state ((h, c) for an LSTM, (h,) otherwise),
        zeros when None. out, optional: arrays shaped like the state to write the
        new state into (they may be the state arrays themselves): a loop of
        steps then allocates nothing. For a stream that keeps its own state,
        see stream().
        """
        kernel, flag = self._step_kernel() if self.built else (None, None)
        if kernel is not None and state is not None:
            # the fast path: the compiled kernel's own dispatcher checks dtype,
            # rank and layout of every array (it accepts one signature and
            # raises TypeError for any other), the kernel checks the shapes
            try:
                new = tuple(np.empty_like(s) for s in state) if out is None else out
                kernel(x_t, self.packed_weights().array, *state, *new, flag)
                return new[0], tuple(new)
            except (TypeError, ValueError):
                pass                    # convert, or find what is wrong and say so
        return self._checked_step(x_t, state, out)

    def _step_kernel(self):
        """(compiled step kernel, flag), or (None, None) when the engine is not
        the fast one; looked up once per engine setting."""
        cached = self._step_fn
        if cached is None or cached[0] is not self.engine:
            fast = get_engine(self.cell, self.engine) is kernels.KERNELS.get(self.cell)
            kernel = packed.step_kernel(self.cell, self.dtype) if fast else None
            cached = self._step_fn = (self.engine, kernel, self.kernel_flag() if fast else None)
        return cached[1], cached[2]

    def _checked_step(self, x_t, state, out):
        """step() for inputs the fast path did not take: converts x_t and state
        to the layer's dtype, builds the layer, and names what does not fit."""
        what = f"{self._what()} step()"
        x_t = np.asarray(x_t)
        if x_t.ndim != 2:
            raise ValueError(f"{what}: x_t must have shape (batch, features); got {x_t.shape}")
        if not self.built:
            self.build((None, x_t.shape[1]))
        D, H, B = self.params["W_x"].shape[0], self.units, x_t.shape[0]
        if x_t.shape[1] != D:
            raise ValueError(f"{what}: x_t must have shape ({B}, {D}) (batch, features); got {x_t.shape}")
        # plain writeable C arrays: the compiled kernel takes no other
        x_t = _writeable(np.ascontiguousarray(x_t, dtype=self.dtype))
        state = tuple(_writeable(s) for s in self._initial_state(state, B))
        for name, s in zip(self.state_names, state):
            if s.shape != (B, H):
                raise ValueError(f"{what}: state {name!r} must have shape {(B, H)} (batch, units); "
                                 f"got {s.shape}")
        if out is not None:
            out = tuple(out) if isinstance(out, (tuple, list)) else (out,)
            if len(out) != len(state):
                raise ValueError(f"{what}: out must hold {len(state)} arrays {self.state_names}; "
                                 f"got {len(out)}")
            for name, o in zip(self.state_names, out):
                if not (isinstance(o, np.ndarray) and o.shape == (B, H) and o.dtype == self.dtype
                        and o.flags.writeable):
                    raise ValueError(f"{what}: out {name!r} must be a writeable {self.dtype} array of "
                                     f"shape {(B, H)}; got "
                                     + (f"{o.dtype} {o.shape}" if isinstance(o, np.ndarray) else type(o).__name__))
        kernel, flag = self._step_kernel()
        if kernel is not None:
            # the kernel writes C arrays only: another layout of out gets a copy
            direct = out is not None and all(o.flags.c_contiguous for o in out)
            new = out if direct else tuple(np.empty_like(s, order="C") for s in state)
            kernel(x_t, self.packed_weights().array, *state, *new, flag)
            new_state = new
        else:
            engine, p = self.engine_module(False), self.params
            hs, new_state, _ = engine.forward(x_t[:, None], p["W_x"], p["W_h"], p.get("b_x"),
                                              p.get("b_h"), state, **self.cell_options())
        if out is not None and new_state is not out:
            for o, s in zip(out, new_state):
                o[...] = s
            new_state = out
        return new_state[0], tuple(new_state)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(units=self.units, return_sequences=self.return_sequences,
                   return_state=self.return_state, go_backwards=self.go_backwards,
                   dropout=self.dropout, recurrent_dropout=self.recurrent_dropout,
                   use_bias=self.use_bias, two_biases=self.two_biases,
                   kernel_initializer=self.kernel_initializer,
                   recurrent_initializer=self.recurrent_initializer,
                   bias_initializer=self.bias_initializer, engine=self.engine,
                   stateful=self.stateful, zero_output_for_mask=self.zero_output_for_mask)
        if self.built:
            cfg["input_shape"] = list(self.input_shape)
        return cfg

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        # a config without the key was written before zero_output_for_mask existed, when
        # masked steps output 0: such a model loads with the outputs it was trained on
        config.setdefault("zero_output_for_mask", True)
        return cls(**config)


@register
class SimpleRNN(RNNLayer):
    """The seeds' simple RNN, s_t = tanh(U x_t + W s_{t-1} + b); see lstmkit.cells.simple_rnn."""

    cell = "simple_rnn"

    def __init__(self, units, activation="tanh", **kwargs):
        if activation not in ("tanh", "relu"):
            raise ValueError(f"activation must be 'tanh' or 'relu'; got {activation!r}")
        self.activation = activation
        super().__init__(units, **kwargs)

    def cell_options(self):
        return {"activation": self.activation}

    def kernel_flag(self):
        return self.activation == "relu"

    def get_config(self):
        return {**super().get_config(), "activation": self.activation}


@register
class LSTM(RNNLayer):
    """Long short-term memory; equations and gate order (i, f, g, o) in lstmkit.cells.lstm.

    unit_forget_bias=True starts the forget-gate bias at 1, as Keras does, so
    the cell state is kept by default early in training.
    """

    cell = "lstm"

    def __init__(self, units, unit_forget_bias=True, **kwargs):
        self.unit_forget_bias = bool(unit_forget_bias)
        super().__init__(units, **kwargs)

    def _init_bias(self):
        if self.use_bias and self.unit_forget_bias:
            H = self.units
            self.params["b_x"][H:2 * H] = 1.0

    def get_config(self):
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}


@register
class GRU(RNNLayer):
    """Gated recurrent unit; equations and gate order (r, z, n) in lstmkit.cells.gru.

    reset_after=True (default, as PyTorch and Keras): the reset gate multiplies
    (h W_hn + b_hn); reset_after=False: the seeds' form, r applied to h first.
    """

    cell = "gru"

    def __init__(self, units, reset_after=True, two_biases=None, **kwargs):
        self.reset_after = bool(reset_after)
        if two_biases is None:
            two_biases = self.reset_after
        super().__init__(units, two_biases=two_biases, **kwargs)

    def cell_options(self):
        return {"reset_after": self.reset_after}

    def kernel_flag(self):
        return self.reset_after

    def table_options(self):
        # reset_after decides whether b_hn can join the folded table
        return {"reset_after": self.reset_after}

    def lookup_options(self):
        # with reset_after, b_hn stays out of the table: the loop adds it inside r * (...)
        return {"reset_after": self.reset_after, "b_h": self.params.get("b_h")}

    def get_config(self):
        return {**super().get_config(), "reset_after": self.reset_after}
