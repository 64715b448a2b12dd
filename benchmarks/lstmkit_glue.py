"""Stand-in for lstmkit's model API while it is not on this branch: the
library's recurrent layers (which do all the recurrent work: forward, BPTT,
the engine choice) joined by a few lines of NumPy for the embedding lookup,
the dense head, the loss and Adam. Used only when ``lstmkit.Sequential`` is
missing; results then say api = "layers+glue"."""
import numpy as np

from lstmkit import layers as L

LAYER_CLASSES = {"lstm": L.LSTM, "gru": L.GRU, "rnn": L.SimpleRNN}


class Adam:
    def __init__(self, params, lr=1e-3, b1=0.9, b2=0.999, eps=1e-7):
        self.params, self.lr, self.b1, self.b2, self.eps = params, lr, b1, b2, eps
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def update(self, grads):
        self.t += 1
        a = self.lr * np.sqrt(1 - self.b2 ** self.t) / (1 - self.b1 ** self.t)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            v += (1 - self.b2) * (g * g)
            p -= a * m / (np.sqrt(v) + self.eps)


class GlueNet:
    def __init__(self, net, w, engine="auto"):
        self.net = net
        self.E = w["embedding"].copy() if net.vocab else None
        self.rnns = []
        D = net.embed
        for i, lw in enumerate(w["rnn"]):
            seq = net.per_step or i < net.layers - 1
            layer = LAYER_CLASSES[net.cell](net.units, return_sequences=seq, engine=engine,
                                            input_dim=D, seed=0)
            layer.set_weights(lw)
            self.rnns.append(layer)
            D = net.units
        self.Wd, self.bd = w["dense"]["W"].copy(), w["dense"]["b"].copy()
        params = ([self.E] if self.E is not None else []) + [self.Wd, self.bd]
        for layer in self.rnns:
            params += list(layer.params.values())
        self.adam = Adam(params)

    def _logits(self, x, training):
        self._x = x
        h = self.E[x]                                               # (B, T, E)
        for layer in self.rnns:
            h = layer.forward(h, training=training)
        self._h = h
        return h @ self.Wd + self.bd

    def predict(self, x):
        z = self._logits(x, False)
        if self.net.per_step:
            z = np.exp(z - z.max(-1, keepdims=True))
            return z / z.sum(-1, keepdims=True)
        return 1.0 / (1.0 + np.exp(-z))

    def train_step(self, x, y):
        z = self._logits(x, True)
        if self.net.per_step:                                       # softmax cross-entropy, mean over B*T
            p = np.exp(z - z.max(-1, keepdims=True))
            p /= p.sum(-1, keepdims=True)
            B, T, V = p.shape
            rows = p.reshape(-1, V)
            loss = -np.mean(np.log(rows[np.arange(B * T), y.ravel()] + 1e-12))
            rows[np.arange(B * T), y.ravel()] -= 1.0
            dz = p / (B * T)
        else:                                                       # sigmoid + binary cross-entropy
            p = 1.0 / (1.0 + np.exp(-z))
            loss = -np.mean(y * np.log(p + 1e-7) + (1 - y) * np.log(1 - p + 1e-7))
            dz = (p - y) / len(y)
        h = self._h
        dWd = h.reshape(-1, h.shape[-1]).T @ dz.reshape(-1, dz.shape[-1])
        dbd = dz.reshape(-1, dz.shape[-1]).sum(0)
        dh = dz @ self.Wd.T
        for layer in reversed(self.rnns):
            dh = layer.backward(dh)
        grads = []
        if self.E is not None:
            dE = np.zeros_like(self.E)
            np.add.at(dE, self._x.ravel(), dh.reshape(-1, dh.shape[-1]))
            grads.append(dE)
        grads += [dWd, dbd]
        for layer in self.rnns:
            grads += [layer.grads[k] for k in layer.params]
        self.adam.update(grads)
        return loss
