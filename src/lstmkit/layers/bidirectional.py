"""Bidirectional wrapper: one recurrent layer reads the sequence forwards, a
copy reads it backwards, and their outputs are merged at each step.

    h_t = merge(forward_h_t, backward_h_t)   merge: concat (the seeds' [h->; h<-]), sum, mul, ave
"""
import numpy as np

from .base import register, serialize_layer, layer_from_config
from .container import Container
from .recurrent import RNNLayer

MERGE_MODES = ("concat", "sum", "mul", "ave")


@register
class Bidirectional(Container):
    supports_masking = True

    def __init__(self, layer, merge_mode="concat", backward_layer=None, **kwargs):
        if isinstance(layer, dict):
            layer = layer_from_config(layer)
        if isinstance(backward_layer, dict):
            backward_layer = layer_from_config(backward_layer)
        if not isinstance(layer, RNNLayer):
            raise TypeError(f"Bidirectional wraps a recurrent layer (SimpleRNN, LSTM, GRU); "
                            f"got {type(layer).__name__}")
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"merge_mode must be one of {MERGE_MODES}; got {merge_mode!r}")
        kwargs.setdefault("dtype", layer.dtype.name)
        super().__init__(**kwargs)
        self.merge_mode = merge_mode
        self.forward_layer = layer
        if backward_layer is None:
            cfg = layer.get_config()
            cfg.update(go_backwards=not layer.go_backwards, name="backward_" + layer.name)
            if cfg.get("seed") is not None:
                cfg["seed"] = cfg["seed"] + 1          # the two directions start different
            backward_layer = type(layer).from_config(cfg)
        self.backward_layer = backward_layer
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

    def compute_output_shape(self, input_shape):
        out = self.forward_layer.compute_output_shape(input_shape)
        states = []
        if self.return_state:
            out, *states = out
            states = states * 2
        if self.merge_mode == "concat":
            out = out[:-1] + (2 * out[-1],)
        return [out] + states if self.return_state else out

    def compute_mask(self, x, mask):
        return mask if self.return_sequences else None

    def forward(self, x, training=False, mask=None, initial_state=None):
        fwd_state, bwd_state = (None, None) if initial_state is None else initial_state
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
        """dstate (optional): (forward_layer's, backward_layer's) final-state gradients."""
        dstate_f, dstate_b = (None, None) if dstate is None else dstate
        dstates = []
        if self.return_state:
            dout, *dstates = dout
        out_f, out_b = self._outs
        H = out_f.shape[-1]
        if self.merge_mode == "concat":
            d_f, d_b = dout[..., :H], dout[..., H:]
        elif self.merge_mode == "sum":
            d_f, d_b = dout, dout
        elif self.merge_mode == "mul":
            d_f, d_b = dout * out_b, dout * out_f     # backprop through out_f * out_b
        else:
            d_f = d_b = 0.5 * dout
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

    def get_config(self):
        cfg = super().get_config()
        cfg.update(layer=serialize_layer(self.forward_layer), merge_mode=self.merge_mode,
                   backward_layer=serialize_layer(self.backward_layer))
        return cfg
