"""Global attention of a decoder over the encoder's outputs (Luong, Pham and
Manning 2015), with three score functions:

    dot       score(h_t, m_s) = h_t . m_s
    general   score(h_t, m_s) = h_t . (m_s W_a)
    additive  score(h_t, m_s) = v . tanh(h_t W_q + m_s W_k)      (Bahdanau et al. 2015)

    a_t   = softmax_s(score(h_t, m_s)) over the real source steps   attention weights
    c_t   = sum_s a_ts m_s                                          context
    h~_t  = tanh([c_t; h_t] W_c)                                    attentional state

h_t (B, T, H) are decoder outputs (T = 1 when the decoder runs one step at a
time, as with input feeding and in beam search), m (B, S, M) the encoder's
outputs ("memory"), mask (B, S) true at real source tokens.

The scores, the masked softmax and the context are the library's attention
layers (layers/attention.py), not a second copy: Attention (dot scores) on
[query h, value m, key K] for dot and general, AdditiveAttention (its weight w
is v here) on [h W_q, m, K] for additive. What this layer adds is Luong's
around them: the keys K = m W_a (or m W_k, or m itself for dot) are projected
once per source batch (`keys`) and shared by every decoder step, their
gradient summed over the steps and taken back through W_a once
(`keys_backward`); the query projection W_q; the output tanh([c; h] W_c).

attend() returns a cache (the inner layer's among it) and attend_backward()
takes it, so a decoder that attends once per step keeps a list of them.
Gradients add up in self.grads (zero them with zero_grads() first).
"""
import numpy as np

from .. import initializers
from ..layers.attention import AdditiveAttention, Attention
from ..layers.base import Layer, register

SCORES = ("dot", "general", "additive")


@register
class GlobalAttention(Layer):
    def __init__(self, units, memory_dim, score="general", attention_dim=None, **kwargs):
        super().__init__(**kwargs)
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}; got {score!r}")
        if score == "dot" and units != memory_dim:
            raise ValueError(f"the dot score needs decoder units == memory size; got {units} and {memory_dim}")
        self.units, self.memory_dim, self.score = int(units), int(memory_dim), score
        self.attention_dim = int(attention_dim or units)
        self.build((None, self.units))

    def build(self, input_shape):
        H, M, A, rng = self.units, self.memory_dim, self.attention_dim, self._rng()
        glorot = initializers.get("glorot_uniform")
        p = {}
        if self.score == "general":
            p["W_a"] = glorot((M, H), rng, self.dtype, units=H)                       # (M, H)
        elif self.score == "additive":
            p["W_q"] = glorot((H, A), rng, self.dtype, units=A)                       # (H, A)
            p["W_k"] = glorot((M, A), rng, self.dtype, units=A)                       # (M, A)
            p["v"] = glorot((A, 1), rng, self.dtype, units=1)[:, 0].copy()            # (A,)
        p["W_c"] = glorot((M + H, H), rng, self.dtype, units=H)                       # (M + H, H)
        self.params = p
        self.zero_grads()
        # the scores, masked softmax and context: the library's attention layers
        K = M if self.score == "dot" else (A if self.score == "additive" else H)
        Q = A if self.score == "additive" else H
        if self.score == "additive":
            self._core = AdditiveAttention(use_scale=True, dtype=self.dtype, name=f"{self.name}_core")
        else:
            self._core = Attention(score_mode="dot", dtype=self.dtype, name=f"{self.name}_core")
        self._core.build([(None, Q), (None, M), (None, K)])
        self._share()
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    # ---- keys: the memory side of the score, once per source batch ----------------------
    def keys(self, memory):
        """memory (B, S, M) -> K: (B, S, H) general, (B, S, A) additive, memory itself for dot."""
        if self.score == "general":
            return memory @ self.params["W_a"]
        if self.score == "additive":
            return memory @ self.params["W_k"]
        return memory

    def keys_backward(self, dK, memory):
        """dK summed over all decoder steps -> the memory's gradient; adds dW."""
        if self.score == "dot":
            return dK
        name = "W_a" if self.score == "general" else "W_k"
        B, S, M = memory.shape
        # backprop through K = m W
        self.grads[name] += memory.reshape(B * S, M).T @ dK.reshape(B * S, -1)
        return dK @ self.params[name].T

    def _share(self):
        if self.score == "additive":
            self._core.params["scale"] = self.params["v"]                             # w of the core is v

    # ---- attend: one or all decoder steps -----------------------------------------------
    def attend(self, h, K, memory, mask):
        """h (B, T, H) -> (h~ (B, T, H), weights a (B, T, S), cache)."""
        p = self.params
        q = h @ p["W_q"] if self.score == "additive" else h                           # (B, T, A) or h
        self._share()
        c, a = self._core.forward([q, memory, K], mask=[None, mask],
                                  return_attention_scores=True)                       # (B, T, M), (B, T, S)
        ch = np.concatenate([c, h], axis=-1)                                          # (B, T, M + H)
        out = np.tanh(ch @ p["W_c"])                                                  # (B, T, H)
        return out, a, (h, self._core._cache, ch, out)

    def attend_backward(self, dout, cache):
        """dout (B, T, H) -> (dh (B, T, H), dK, dmemory (B, S, M)); adds the weight gradients."""
        h, core_cache, ch, out = cache
        p, g = self.params, self.grads
        B, T, H = h.shape
        M = ch.shape[-1] - H
        # backprop through out = tanh(ch W_c)
        dz = dout * (1.0 - out * out)                                                 # (B, T, H)
        g["W_c"] += ch.reshape(B * T, M + H).T @ dz.reshape(B * T, H)
        dch = dz @ p["W_c"].T                                                         # (B, T, M + H)
        dc, dh = dch[..., :M], dch[..., M:]
        # backprop through the core: context, masked softmax, scores
        self._share()
        self._core._cache = core_cache
        dq, dmemory, dK = self._core.backward([dc, None])
        if self.score == "additive":
            g["v"] += self._core.grads["scale"]
            # backprop through q = h W_q
            g["W_q"] += h.reshape(B * T, H).T @ dq.reshape(B * T, -1)
            dh = dh + dq @ p["W_q"].T
        else:
            dh = dh + dq                                                              # q was h itself
        return dh, dK, dmemory

    def get_config(self):
        cfg = super().get_config()
        cfg.update(units=self.units, memory_dim=self.memory_dim, score=self.score,
                   attention_dim=self.attention_dim)
        return cfg
