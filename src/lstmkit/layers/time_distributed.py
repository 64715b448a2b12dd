"""TimeDistributed(layer): the same layer at every time step, (B, T, ...) ->
(B, T, ...'), by running it once on the (B*T, ...) steps stacked.

As in Keras 3 (whose TimeDistributed sets supports_masking and keeps the
default compute_mask) the input's (B, T) mask passes on to the output, so a
TimeDistributed(Dense) head's loss skips padded steps. A mask with more axes
than (B, T) is passed to the inner layer step by step ((B, T, T2) ->
(B*T, T2)) and, unlike Keras, not on to the output (lstmkit's masks are (B, T)).

A sigmoid/softmax Dense inside keeps its fused cross-entropy: ``activation``,
``logits`` and ``backward_logits`` pass through.
"""
import numpy as np

from .base import layer_from_config, register, serialize_layer, Layer
from .container import Container


@register
class TimeDistributed(Container):
    supports_masking = True

    def __init__(self, layer, **kwargs):
        if isinstance(layer, dict):
            layer = layer_from_config(layer)
        if not isinstance(layer, Layer):
            raise TypeError(f"TimeDistributed wraps a Layer; got {type(layer).__name__}")
        if getattr(layer, "return_state", False):
            raise ValueError(f"TimeDistributed wraps a layer with one output; {layer.name!r} has "
                             f"return_state=True")
        kwargs.setdefault("dtype", layer.dtype.name)
        super().__init__(**kwargs)
        self.layer = layer
        self.built = layer.built
        self._shape = None

    def sublayers(self):
        return [(self.layer.name, self.layer)]

    def build(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(f"TimeDistributed expects input of shape (batch, time, ...); got "
                             f"{(None,) + tuple(input_shape)}")
        if not self.layer.built:
            self.layer.build(tuple(input_shape[1:]))
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        inner = self.layer.compute_output_shape(tuple(input_shape[1:]))
        if isinstance(inner, list):
            raise ValueError(f"TimeDistributed wraps a layer with one output; {self.layer.name!r} has "
                             f"{len(inner)}")
        return (input_shape[0],) + tuple(inner)

    def compute_mask(self, x, mask):
        return mask if mask is not None and np.ndim(mask) == 2 else None

    @property
    def activation(self):
        return getattr(self.layer, "activation", None) if hasattr(self.layer, "backward_logits") else None

    @property
    def logits(self):
        z = self.layer.logits                                           # (B*T, ..., U)
        return z.reshape(self._shape[:2] + z.shape[1:])

    def forward(self, x, training=False, mask=None):
        x = np.asarray(x)
        if x.ndim < 3:
            raise ValueError(f"TimeDistributed {self.name!r} expects input of shape (batch, time, ...); "
                             f"got shape {x.shape}")
        if not self.built:
            self.build(x.shape[1:])
        B, T = x.shape[:2]
        inner_mask = None
        if mask is not None and np.ndim(mask) > 2:
            inner_mask = np.asarray(mask).reshape((B * T,) + np.shape(mask)[2:])
        y = self.layer.forward(x.reshape((B * T,) + x.shape[2:]), training=training, mask=inner_mask)
        self._shape = (B, T) + x.shape[2:]
        return y.reshape((B, T) + y.shape[1:])                          # (B, T, ...')

    def backward(self, dout):
        B, T = self._shape[:2]
        dout = np.asarray(dout)
        dx = self.layer.backward(dout.reshape((B * T,) + dout.shape[2:]))
        return None if dx is None else dx.reshape(self._shape)

    def backward_logits(self, dz):
        if not hasattr(self.layer, "backward_logits"):
            raise ValueError(f"layer {self.layer.name!r} has no logits to start the backward from")
        B, T = self._shape[:2]
        dz = np.asarray(dz)
        dx = self.layer.backward_logits(dz.reshape((B * T,) + dz.shape[2:]))
        return dx.reshape(self._shape)

    def get_config(self):
        return {**super().get_config(), "layer": serialize_layer(self.layer)}
