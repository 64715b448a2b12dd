"""lstmkit side: the model API (lk.Sequential, as a user writes it) and, for
C, a layer's stream (layer.stream().step). Engine "auto": the fast Numba
kernels where lstmkit has them, else the NumPy reference engine; which one
ran is recorded per case."""

import lstmkit as lk
from lstmkit.engines import get_engine

CELL_NAMES = {"lstm": "lstm", "gru": "gru", "rnn": "simple_rnn"}
LAYER_NAMES = {"lstm": "LSTM", "gru": "GRU", "rnn": "SimpleRNN"}


def engine_name(cell):
    try:
        return get_engine(CELL_NAMES[cell], "auto").__name__
    except Exception as e:                      # cell not in this lstmkit yet
        return f"unavailable ({e})"


def _set_rnn(layer, lw):
    layer.set_weights({k: v for k, v in lw.items() if k in layer.params})


def _set_by_shape(layer, arrays):
    """Embedding and Dense: assign each param the given array of its shape."""
    for name, p in layer.params.items():
        match = [a for a in arrays if a.shape == p.shape]
        if not match:
            raise ValueError(f"no weight of shape {p.shape} for {layer.name}/{name}")
        p[...] = match[0]


class ModelNet:
    """lk.Sequential([Embedding, RNN.., Dense]) compiled with Adam; one training
    step is Sequential.train_on_batch (what fit runs per batch), inference is
    Sequential.predict_on_batch."""

    def __init__(self, net, w):
        rnn_cls = getattr(lk, LAYER_NAMES[net.cell])
        rnns = [rnn_cls(net.units, return_sequences=net.per_step or i < net.layers - 1)
                for i in range(net.layers)]
        head = lk.Dense(net.out, activation="softmax" if net.per_step else "sigmoid")
        emb = lk.Embedding(net.vocab, net.embed)
        self.model = lk.Sequential([emb, *rnns, head])
        loss = "sparse_categorical_crossentropy" if net.per_step else "binary_crossentropy"
        self.model.compile(optimizer="adam", loss=loss)
        self.model.build((None,))
        _set_by_shape(emb, [w["embedding"]])
        for layer, lw in zip(rnns, w["rnn"]):
            _set_rnn(layer, lw)
        _set_by_shape(head, [w["dense"]["W"], w["dense"]["b"]])

    def train_step(self, x, y):
        return self.model.train_on_batch(x, y)

    def predict(self, x):
        return self.model.predict_on_batch(x)


def build(net, w):
    """-> (object with train_step(x, y) and predict(x), api name)."""
    return ModelNet(net, w), "Sequential"


def runner(case, w, x, y):
    net = case.net
    if case.kind == "step":
        return _step_runner(case, w, x), "layer.stream().step"
    model, api = build(net, w)
    if case.kind == "infer" and case.fresh:
        rnn = model.model.layers[1]

        def fresh():
            rnn._fold = None                  # drop the folded table: this call makes it again
            return model.predict(x)
        return fresh, api
    if case.kind == "infer":
        return (lambda: model.predict(x)), api
    return (lambda: model.train_step(x, y)), api


def _step_runner(case, w, x):
    """Streaming as a user writes it: a stream bound once to the layer keeps
    the state between calls; one call per token, h_t a new array each time."""
    from lstmkit.layers import LSTM
    layer = LSTM(case.net.units, input_dim=case.net.embed)
    _set_rnn(layer, w["rnn"][0])
    stream = layer.stream(batch=x.shape[0])

    def step():
        return stream.step(x)
    return step


def versions():
    return {"lstmkit": lk.__version__, "api": "Sequential",
            "engines": {c: engine_name(c) for c in CELL_NAMES}}
