"""Cropping1D((left, right)): (B, T, D) -> (B, T - left - right, D), the
sequence without its first `left` and last `right` steps (Keras's layer of the
same name). E.g. Cropping1D((W - k, 0)) keeps the last k steps of a window: a
forecaster's linear autoregressive skip reads those (apps.forecast_model).
A time mask is cropped the same way."""
import numpy as np

from .base import Layer, register


@register
class Cropping1D(Layer):
    supports_masking = True

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(**kwargs)
        pair = (cropping, cropping) if isinstance(cropping, (int, np.integer)) else tuple(cropping)
        if len(pair) != 2 or any(isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 0
                                 for c in pair):
            raise ValueError(f"cropping must be a whole number >= 0 or a pair (left, right) of them; "
                             f"got {cropping!r}")
        self.cropping = (int(pair[0]), int(pair[1]))

    def _kept(self, T, shape):
        left, right = self.cropping
        if T is not None and left + right >= T:
            raise ValueError(f"Cropping1D {self.name!r}: cropping {self.cropping} leaves no step of a "
                             f"sequence of {T}; input shape {shape}")
        return slice(left, None if right == 0 else -right)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"Cropping1D expects input of shape (batch, time, features); got "
                             f"{(None,) + tuple(input_shape)}")
        T = input_shape[0]
        self._kept(T, (None,) + tuple(input_shape))
        return (None if T is None else T - sum(self.cropping), input_shape[1])

    def compute_mask(self, x, mask):
        return None if mask is None else np.asarray(mask)[:, self._kept(mask.shape[1], mask.shape)]

    def forward(self, x, training=False, mask=None):
        x = np.asarray(x)
        if x.ndim != 3:
            raise ValueError(f"Cropping1D {self.name!r} expects input of shape (batch, time, features); "
                             f"got shape {x.shape}")
        if not self.built:
            self.build(x.shape[1:])
        self._shape, self._kept_steps = x.shape, self._kept(x.shape[1], x.shape)
        return x[:, self._kept_steps]                                    # (B, T - left - right, D)

    def backward(self, dout):
        dx = np.zeros(self._shape, np.asarray(dout).dtype)               # the cropped steps get no gradient
        dx[:, self._kept_steps] = dout                                   # backprop through the slice
        return dx

    def get_config(self):
        return {**super().get_config(), "cropping": list(self.cropping)}
