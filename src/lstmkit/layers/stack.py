"""A stack of recurrent layers with PyTorch-style inputs and outputs: the deep
(and optionally bidirectional) RNN of the seeds, h_t^(i) = f(W^(i) h_t^(i-1) + V^(i) h_{t-1}^(i) + b^(i)).

forward returns the last layer's outputs at every step (B, T, H or 2H);
``final_state`` holds each layer's final states and ``initial_state_grad``
the gradient for each layer's initial states after backward. This is what
``lstmkit.interop.torch.from_torch`` returns for num_layers > 1.
"""
from .base import register, serialize_layer, layer_from_config
from .container import Container


@register
class RNNStack(Container):
    supports_masking = True

    def __init__(self, layers, **kwargs):
        layers = [layer_from_config(l) if isinstance(l, dict) else l for l in layers]
        if not layers:
            raise ValueError("RNNStack needs at least one layer; got an empty list")
        for i, layer in enumerate(layers):
            if not getattr(layer, "return_sequences", False) or getattr(layer, "return_state", False):
                raise ValueError(f"layer {i} ({layer.name!r}) of an RNNStack must have "
                                 f"return_sequences=True and return_state=False")
        kwargs.setdefault("dtype", layers[0].dtype.name)
        super().__init__(**kwargs)
        self.layers = layers
        self.built = all(l.built for l in layers)
        self.final_state = None
        self.initial_state_grad = None

    def sublayers(self):
        return [(f"layer{i}", l) for i, l in enumerate(self.layers)]

    def build(self, input_shape):
        # each layer from the shape the one before it gives, so that the stack's
        # params exist once a model is built (not only after the first forward)
        shape = tuple(input_shape)
        for layer in self.layers:
            if not layer.built:
                layer.build(shape)
            shape = layer.compute_output_shape(shape)
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        for layer in self.layers:
            input_shape = layer.compute_output_shape(input_shape)
        return input_shape

    def forward(self, x, training=False, mask=None, initial_state=None):
        """initial_state: None or a list with one entry per layer (None or that layer's state)."""
        if initial_state is not None and len(initial_state) != len(self.layers):
            raise ValueError(f"initial_state must have one entry per layer ({len(self.layers)}); "
                             f"got {len(initial_state)}")
        for i, layer in enumerate(self.layers):
            x = layer.forward(x, training=training, mask=mask,
                              initial_state=None if initial_state is None else initial_state[i])
        self.final_state = [l.final_state for l in self.layers]
        return x

    def backward(self, dout, dstate=None):
        """dstate (optional): one entry per layer, shaped like final_state (None = 0)."""
        if dstate is None:
            dstate = [None] * len(self.layers)
        if len(dstate) != len(self.layers):
            raise ValueError(f"dstate must have one entry per layer ({len(self.layers)}); got {len(dstate)}")
        for layer, ds in zip(reversed(self.layers), reversed(dstate)):
            dout = layer.backward(dout, ds)
        self.initial_state_grad = [l.initial_state_grad for l in self.layers]
        return dout

    def get_config(self):
        cfg = super().get_config()
        cfg["layers"] = [serialize_layer(l) for l in self.layers]
        return cfg
