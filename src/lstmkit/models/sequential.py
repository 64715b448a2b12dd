"""Sequential: a list of layers, each feeding the next; the time mask made by an
Embedding(mask_zero=True) travels along with the data via compute_mask.

The model is itself a layer (a Container): its params and grads are the
layers' arrays under "<layer name>/<param>", the names used in saved files.
Training, evaluation and prediction live in models/training.py (fit, evaluate,
predict, train_on_batch: training.ModelMethods) and only use forward,
backward, params and grads.
"""
import numpy as np

from .. import losses, metrics as metrics_mod, optimizers
from ..layers.base import register, serialize_layer, layer_from_config, Layer
from ..layers.container import Container
from ..layers.embedding import Embedding, as_token_ids
from ..layers.recurrent import RNNLayer
from . import training


def _fmt_shape(shape):
    if isinstance(shape, list):
        return ", ".join(_fmt_shape(s) for s in shape)
    return "(" + ", ".join("None" if d is None else str(d) for d in (None,) + tuple(shape)) + \
        ("," if len(shape) == 0 else "") + ")"


def _seed_layer(layer, seed):
    """Give a layer without a seed (and its sub-layers) one derived from the model's
    seed, rebuilding it if it already drew its weights."""
    if isinstance(layer, Container):
        for j, (_, sub) in enumerate(layer.sublayers()):
            _seed_layer(sub, seed * 31 + j + 1)
    if layer.seed is None:
        layer.seed = seed
        if layer.built and not isinstance(layer, Container):
            layer.build(layer.input_shape)


@register
class Sequential(training.ModelMethods, Container):
    supports_masking = True

    def __init__(self, layers=None, name=None, seed=None, **kwargs):
        super().__init__(name=name, seed=seed, **kwargs)
        self.layers = []
        self.optimizer = self.loss = None
        self.metrics = []
        self.compiled = False
        self.stop_training = False
        self.history = None
        self.output_mask = None
        for layer in layers or []:
            self.add(layer)

    def sublayers(self):
        return [(layer.name, layer) for layer in self.layers]

    # ---- building ------------------------------------------------------------------
    def add(self, layer):
        if isinstance(layer, dict):
            layer = layer_from_config(layer)
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a Layer; got {type(layer).__name__}")
        if getattr(layer, "return_state", False):
            raise ValueError(f"layers of a Sequential have one output; layer {layer.name!r} has "
                             f"return_state=True")
        if hasattr(layer, "merge_mode") and layer.merge_mode is None:
            raise ValueError(f"layers of a Sequential have one output; layer {layer.name!r} has "
                             f"merge_mode=None (two outputs): use lk.Model, or a merge mode")
        if layer.name in {l.name for l in self.layers}:
            raise ValueError(f"layer name {layer.name!r} is used twice in model {self.name!r}; "
                             f"names key the saved weights")
        if self.seed is not None:
            _seed_layer(layer, self.seed * 1000 + len(self.layers))
        self.layers.append(layer)
        self.built = False
        first = self.layers[0]
        if first.built and first.input_shape is not None:
            self.build(first.input_shape)           # eager: shapes known from input_length/input_shape

    def build(self, input_shape):
        """Build every layer from the input shape (without the batch axis)."""
        shape = tuple(input_shape)
        self.input_shape = shape
        for layer in self.layers:
            if not layer.built:
                layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        for layer in self.layers:
            input_shape = layer.compute_output_shape(input_shape)
        return input_shape

    # ---- forward and backward ------------------------------------------------------
    @property
    def head_activation(self):
        """The final layer's activation if the backward pass can start from its logits."""
        last = self.layers[-1] if self.layers else None
        return getattr(last, "activation", None) if hasattr(last, "backward_logits") else None

    def forward(self, x, training=False, mask=None, return_logits=False):
        """Run every layer. return_logits=True returns the final layer's pre-activation.
        The mask of the output, if any, is left in self.output_mask."""
        if not self.layers:
            raise ValueError(f"model {self.name!r} has no layers; add some first")
        if not self.built:
            self.build(np.shape(x)[1:])
        layers = self.layers
        if not training and self._folds_embedding():
            x, mask = self._embedded_recurrent(x, mask)
            layers = layers[2:]
        for layer in layers:
            out = layer.forward(x, training=training, mask=mask)
            mask = layer.compute_mask(x, mask)
            x = out
        self.output_mask = mask
        if return_logits:
            if self.head_activation is None:
                raise ValueError(f"return_logits=True needs a final layer with backward_logits "
                                 f"(a Dense); got {type(self.layers[-1]).__name__}")
            return self.layers[-1].logits
        return x

    def _folds_embedding(self):
        """Whether inference can start with an Embedding folded into the
        recurrent layer after it (see RNNLayer.forward_from_embedding)."""
        return (len(self.layers) >= 2 and isinstance(self.layers[0], Embedding)
                and isinstance(self.layers[1], RNNLayer))

    def _embedded_recurrent(self, x, mask):
        """Inference through the first two layers, Embedding then a recurrent
        layer, without materialising the (B, T, E) embedded sequence."""
        emb, rnn = self.layers[:2]
        ids = as_token_ids(x, emb.name, emb.input_dim)                            # (B, T)
        emb._ids = ids                     # a backward() after this forward still finds them
        mask = emb.compute_mask(x, mask)
        out = rnn.forward_from_embedding(ids, emb.params["embeddings"], mask=mask)
        return out, rnn.compute_mask(None, mask)

    def backward(self, dout, from_logits=False):
        """Backpropagate dout (the gradient for the output, or for the final
        logits with from_logits=True) through every layer; returns the input's gradient."""
        layers = self.layers
        if from_logits:
            dout = layers[-1].backward_logits(dout)
            layers = layers[:-1]
        for layer in reversed(layers):
            dout = layer.backward(dout)
        return dout

    def compute_mask(self, x, mask):
        return self.output_mask                   # the mask of the last forward's output

    # ---- weights -------------------------------------------------------------------
    def trainable_params(self):
        return {f"{l.name}/{k}": v for l in self.layers if l.trainable for k, v in l.params.items()}

    def trainable_grads(self):
        return {f"{l.name}/{k}": v for l in self.layers if l.trainable for k, v in l.grads.items()}

    def _check_built(self, what):
        if not self.built:
            raise ValueError(f"model {self.name!r} is not built yet, so it has no weights for {what}: give "
                             f"the first layer input_length/input_shape, or call build() or fit() first")

    def get_weights(self):
        self._check_built("get_weights")
        return {k: v.copy() for k, v in self.params.items()}

    def count_params(self):
        self._check_built("count_params")
        return super().count_params()

    # ---- compile, fit, evaluate, predict -------------------------------------------
    def compile(self, optimizer="adam", loss=None, metrics=None):
        if loss is None:
            raise ValueError("compile needs a loss, e.g. loss='binary_crossentropy'; got loss=None")
        self.optimizer = optimizers.get(optimizer)
        self.loss = losses.get(loss)
        self.metrics = [metrics_mod.get(m, self.loss.name) for m in (metrics or [])]
        self._metric_specs = list(metrics or [])
        self.compiled = True

    # ---- description ---------------------------------------------------------------
    def summary(self, print_fn=print, line_length=65):
        if not self.built:
            raise ValueError(f"model {self.name!r} is not built yet, so its shapes are unknown: give "
                             f"the first layer input_length/input_shape, or call build() or fit() first")
        names = [f"{layer.name} ({type(layer).__name__})" for layer in self.layers]
        first = max([28] + [len(n) + 2 for n in names])          # long names widen the column
        line_length = max(line_length, first + 37)
        widths = (first, 26, line_length - first - 26)
        row = lambda cells: "".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
        lines = [f'Model: "{self.name}"', "_" * line_length,
                 row(["Layer (type)", "Output Shape", "Param #"]), "=" * line_length]
        shape = self.input_shape
        for i, layer in enumerate(self.layers):
            shape = layer.compute_output_shape(shape)
            lines.append(row([names[i], _fmt_shape(shape),
                              f"{layer.count_params():,}"]))
            lines.append(("_" if i < len(self.layers) - 1 else "=") * line_length)
        total = sum(l.count_params() for l in self.layers)
        trainable = sum(l.count_params() for l in self.layers if l.trainable)
        lines += [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                  f"Non-trainable params: {total - trainable:,}", "_" * line_length]
        print_fn("\n".join(lines))

    def get_config(self):
        cfg = super().get_config()
        cfg["layers"] = [serialize_layer(l) for l in self.layers]
        if self.built:
            cfg["input_shape"] = [None if d is None else int(d) for d in self.input_shape]
        return cfg

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        layers = [layer_from_config(s) for s in config.pop("layers")]
        input_shape = config.pop("input_shape", None)
        model = cls(layers=layers, **config)
        if input_shape is not None and not model.built:
            model.build(tuple(input_shape))
        return model

    def compile_config(self):
        if not self.compiled:
            return None
        return {"optimizer": optimizers.serialize(self.optimizer), "loss": losses.serialize(self.loss),
                "metrics": [m if isinstance(m, str) else m.name for m in self._metric_specs]}
