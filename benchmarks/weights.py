"""One set of weights per network, made once and loaded into every framework,
so each framework runs the same model with the same numbers.

Layout is lstmkit's: a recurrent layer has W_x (D, G*H), W_h (H, G*H), b_x (G*H,)
and, for the GRU (reset_after, two biases as PyTorch), b_h (G*H,). Gate order is
PyTorch's: LSTM i, f, g, o; GRU r, z, n. Initialisation is Keras's (glorot
uniform kernel, orthogonal recurrent kernel, zero bias, forget-gate bias 1,
embedding uniform(-0.05, 0.05)), which is also lstmkit's default.
"""
import numpy as np

GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def _glorot(rng, shape):
    limit = np.sqrt(6.0 / (shape[0] + shape[1]))
    return rng.uniform(-limit, limit, size=shape).astype(np.float32)


def _orthogonal(rng, shape):
    rows, cols = shape
    q, r = np.linalg.qr(rng.normal(size=(max(rows, cols), min(rows, cols))))
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return np.ascontiguousarray(q[:rows, :cols], dtype=np.float32)


def make(net, seed=0):
    rng = np.random.default_rng(seed)
    G, H = GATES[net.cell], net.units
    w = {"embedding": None, "rnn": [], "dense": None}
    if net.vocab:
        w["embedding"] = rng.uniform(-0.05, 0.05, size=(net.vocab, net.embed)).astype(np.float32)
    D = net.embed
    for _ in range(net.layers):
        layer = {"W_x": _glorot(rng, (D, G * H)), "W_h": _orthogonal(rng, (H, G * H)),
                 "b_x": np.zeros(G * H, np.float32)}
        if net.cell == "lstm":
            layer["b_x"][H:2 * H] = 1.0                    # forget-gate bias
        if net.cell == "gru":
            layer["b_h"] = np.zeros(G * H, np.float32)
        w["rnn"].append(layer)
        D = H
    w["dense"] = {"W": _glorot(rng, (H, net.out)), "b": np.zeros(net.out, np.float32)}
    return w
