"""Bidirectional wrapper: one recurrent layer reads the sequence forwards, a
copy reads it backwards, and their outputs are merged at each step.

    h_t = merge(forward_h_t, backward_h_t)   merge: concat (the seeds' [h->; h<-]), sum, mul, ave
    merge_mode=None: no merge, the output is the list [forward_h, backward_h]
                     and backward() takes a list of their two gradients

What it returns, as Keras: the output, or [output, *forward states, *backward
states] with return_state ([forward_h, backward_h, *states...] without a merge).
initial_state: Keras's flat list [h_f, c_f, h_b, c_b] (forward states, then
backward), or the pair ((h_f, c_f), (h_b, c_b)).

Masks: with return_sequences, both directions output 0 at masked steps,
whatever their zero_output_for_mask said: Keras forces
zero_output_for_mask = return_sequences on the two layers, because the
backward direction reads the padding first, so "the previous output" there
would be its zero start while the forward direction repeats its last real
output -- two different conventions side by side in one merged vector.
"""
import numpy as np

from .base import register, serialize_layer, layer_from_config
from .container import Container
from .recurrent import RNNLayer
from .rnn import RNN

MERGE_MODES = ("concat", "sum", "mul", "ave", None)


@register
class Bidirectional(Container):
    supports_masking = True

    def __init__(self, layer, merge_mode="concat", backward_layer=None, **kwargs):
        if isinstance(layer, dict):
            layer = layer_from_config(layer)
        if isinstance(backward_layer, dict):
            backward_layer = layer_from_config(backward_layer)
        if not isinstance(layer, (RNNLayer, RNN)):
            raise TypeError(f"Bidirectional wraps a recurrent layer (SimpleRNN, LSTM, GRU, RNN); "
                            f"got {type(layer).__name__}")
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"merge_mode must be one of {MERGE_MODES}; got {merge_mode!r}")
        kwargs.setdefault("dtype", layer.dtype.name)
        super().__init__(**kwargs)
        self.merge_mode = merge_mode
        self.forward_layer = layer
        if backward_layer is None:
            # an RNN's cell is copied as an object: a user cell needs no registry here
            cfg = layer.fresh_config() if isinstance(layer, RNN) else layer.get_config()
            cfg.update(go_backwards=not layer.go_backwards, name="backward_" + layer.name)
            if cfg.get("seed") is not None:
                cfg["seed"] = cfg["seed"] + 1          # the two directions start different
            backward_layer = type(layer).from_config(cfg)
        self.backward_layer = backward_layer
        for a in ("return_sequences", "return_state", "stateful"):
            if getattr(layer, a) != getattr(backward_layer, a):
                raise ValueError(f"the forward and backward layers of a Bidirectional must agree on {a}; "
                                 f"got {getattr(layer, a)} and {getattr(backward_layer, a)}")
        for sub in (layer, backward_layer):
            sub.zero_output_for_mask = sub.return_sequences        # as Keras: see the module docstring
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self.built = layer.built and backward_layer.built
        self.final_state = None
        self.initial_state_grad = None

    def sublayers(self):
        return [("forward", self.forward_layer), ("backward", self.backward_layer)]

    def build(self, input_shape):
        for _, layer in self.sublayers():
            if not layer.built:
                layer.build(input_shape)
        super().build(input_shape)

    @property
    def stateful(self):
        return self.forward_layer.stateful

    def compute_output_shape(self, input_shape):
        out = self.forward_layer.compute_output_shape(input_shape)
        states = []
        if self.return_state:
            out, *states = out
            states = states * 2
        outs = [out]
        if self.merge_mode == "concat":
            outs = [out[:-1] + (2 * out[-1],)]
        elif self.merge_mode is None:
            outs = [out, out]
        if self.return_state or self.merge_mode is None:
            return outs + states
        return outs[0]

    def compute_mask(self, x, mask):
        out_mask = mask if self.return_sequences else None
        n_outs = 2 if self.merge_mode is None else 1
        if self.return_state or self.merge_mode is None:
            n_states = 2 * len(self.forward_layer.state_names) if self.return_state else 0
            return [out_mask] * n_outs + [None] * n_states
        return out_mask

    def _split_initial_state(self, initial_state):
        """Keras's flat list [*forward states, *backward states], or the pair
        (forward states, backward states) -> (forward's, backward's)."""
        if initial_state is None:
            return None, None
        n = len(self.forward_layer.state_names)
        what = (f"initial_state for Bidirectional {self.name!r} ({type(self.forward_layer).__name__}, "
                f"states {self.forward_layer.state_names})")
        if not isinstance(initial_state, (list, tuple)):
            raise ValueError(f"{what} must be a list: {2 * n} arrays (forward states, then backward), or "
                             f"a pair (forward states, backward states); got {type(initial_state).__name__}")
        items = list(initial_state)
        if all(s is not None and not isinstance(s, (list, tuple)) for s in items):
            # flat, as Keras: forward's n states, then backward's
            if len(items) != 2 * n:
                raise ValueError(f"{what}: a flat list must hold {2 * n} arrays (forward states, then "
                                 f"backward); got {len(items)}")
            return items[:n], items[n:]
        if len(items) != 2:
            raise ValueError(f"{what}: a nested form must be a pair (forward states, backward states); "
                             f"got {len(items)} items")
        return items[0], items[1]

    def forward(self, x, training=False, mask=None, initial_state=None):
        fwd_state, bwd_state = self._split_initial_state(initial_state)
        out_f = self.forward_layer.forward(x, training=training, mask=mask, initial_state=fwd_state)
        out_b = self.backward_layer.forward(x, training=training, mask=mask, initial_state=bwd_state)
        states = []
        if self.return_state:
            out_f, *sf = out_f
            out_b, *sb = out_b
            states = sf + sb
        if self.return_sequences:
            out_b = out_b[:, ::-1]                    # the backward layer returns reversed time
        self.final_state = (self.forward_layer.final_state, self.backward_layer.final_state)
        self._outs = (out_f, out_b)
        if self.merge_mode is None:
            return [out_f, out_b, *states]                   # the two directions, unmerged
        if self.merge_mode == "concat":
            out = np.concatenate([out_f, out_b], axis=-1)
        elif self.merge_mode == "sum":
            out = out_f + out_b
        elif self.merge_mode == "mul":
            out = out_f * out_b
        else:
            out = 0.5 * (out_f + out_b)
        return [out, *states] if self.return_state else out

    def backward(self, dout, dstate=None):
        """dout: the output's gradient; a list [d_forward, d_backward] with
        merge_mode=None (None = 0), followed by the states' gradients with
        return_state. dstate (optional): (forward_layer's, backward_layer's)
        final-state gradients."""
        dstate_f, dstate_b = (None, None) if dstate is None else dstate
        out_f, out_b = self._outs
        dstates = []
        if self.merge_mode is None:
            d_f, d_b, *dstates = dout
            d_f = np.zeros_like(out_f) if d_f is None else d_f
            d_b = np.zeros_like(out_b) if d_b is None else d_b
        else:
            if self.return_state:
                dout, *dstates = dout
            d_f, d_b = self._merge_backward(dout, out_f, out_b)
        if self.return_sequences:
            d_b = d_b[:, ::-1]                        # undo the flip of the backward output
        n = len(self.forward_layer.state_names)
        if self.return_state:
            d_f = [d_f, *dstates[:n]]
            d_b = [d_b, *dstates[n:]]
        dx = self.forward_layer.backward(d_f, dstate_f) + self.backward_layer.backward(d_b, dstate_b)
        self.initial_state_grad = (self.forward_layer.initial_state_grad,
                                   self.backward_layer.initial_state_grad)
        return dx

    def _merge_backward(self, dout, out_f, out_b):
        if self.merge_mode == "concat":
            H = out_f.shape[-1]
            return dout[..., :H], dout[..., H:]
        if self.merge_mode == "sum":
            return dout, dout
        if self.merge_mode == "mul":
            return dout * out_b, dout * out_f           # backprop through out_f * out_b
        return 0.5 * dout, 0.5 * dout                   # ave

    def get_config(self):
        cfg = super().get_config()
        cfg.update(layer=serialize_layer(self.forward_layer), merge_mode=self.merge_mode,
                   backward_layer=serialize_layer(self.backward_layer))
        return cfg
