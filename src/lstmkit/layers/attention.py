"""Attention layers: Attention (Luong) and AdditiveAttention (Bahdanau), with
Keras 3's inputs, options, masks and outputs.

Inputs: [query (B, Tq, dq), value (B, Tv, dv)] or [query, value, key (B, Tv, dk)];
the key is the value when not given. Output (B, Tq, dv) and, with
return_attention_scores=True, the attention weights (B, Tq, Tv) as well.

    scores  s = score(q, k)                                        (B, Tq, Tv)
      Attention, score_mode="dot":     s = scale * q k^T           (scale: use_scale, starts at 1)
      Attention, score_mode="general": s = scale * q W k^T         (Luong's "general"; W (dq, dk), lstmkit's)
      Attention, score_mode="concat":  s = c * sum_d tanh(scale * (q_i + k_j))   (c starts at 1)
      AdditiveAttention:               s = sum_d w_d tanh(q_i + k_j)            (w: use_scale, glorot)
    masking s_ij -= 1e9 where value step j is masked (or j > i with use_causal_mask=True)
    weights a = softmax(s) over j, then dropout (training)
    output  o = a v, set to 0 at masked query steps

Bahdanau's own additive score projects query and key first (W_1 q + W_2 k):
put Dense layers before AdditiveAttention for that, as in Keras.

Masks: the value mask hides value steps; the query mask zeroes output rows and
is the output's mask. The attention weights have no mask.
"""
import numpy as np

from .. import initializers
from .base import Layer, register

SCORE_MODES = ("dot", "general", "concat")
NEG = 1.0e9                           # what Keras subtracts from the scores of masked steps


def _softmax(s):
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@register
class Attention(Layer):
    """Dot-product (Luong) attention; see the module docstring."""

    supports_masking = True

    def __init__(self, use_scale=False, score_mode="dot", dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        if score_mode not in SCORE_MODES:
            raise ValueError(f"score_mode must be one of {SCORE_MODES}; got {score_mode!r}")
        if not (isinstance(dropout, (int, float)) and 0.0 <= dropout < 1.0):
            raise ValueError(f"dropout must be a number in [0, 1); got {dropout!r}")
        self.use_scale = bool(use_scale)
        self.score_mode = score_mode
        self.dropout = float(dropout)
        self._dropout_rng = np.random.default_rng(self.seed)
        self._cache = None

    # ---- shapes and weights --------------------------------------------------------------
    def _check_shapes(self, shapes):
        what = type(self).__name__
        if not isinstance(shapes, (list, tuple)) or len(shapes) not in (2, 3):
            raise ValueError(f"{what} takes a list [query, value] or [query, value, key]; got {shapes!r}")
        if any(len(s) != 2 for s in shapes):
            raise ValueError(f"{what} inputs must be (batch, time, features); got shapes "
                             f"{[(None,) + tuple(s) for s in shapes]}")
        q, v = shapes[0], shapes[1]
        k = shapes[2] if len(shapes) == 3 else v
        if v[0] is not None and k[0] is not None and v[0] != k[0]:
            raise ValueError(f"{what}: value and key must have the same number of steps; got "
                             f"{(None,) + tuple(v)} and {(None,) + tuple(k)}")
        if self._needs_same_dim() and q[-1] is not None and k[-1] is not None and q[-1] != k[-1]:
            raise ValueError(f"{what} with score_mode={self.score_mode!r} needs query and key of the same "
                             f"size; got {q[-1]} and {k[-1]} (put a Dense before it, or use "
                             f"score_mode='general')")
        return q, v, k

    def _needs_same_dim(self):
        return self.score_mode != "general"

    def build(self, input_shape):
        q, v, k = self._check_shapes(input_shape)
        rng = self._rng()
        self.params = {}
        if self.score_mode == "general":
            self.params["W"] = initializers.glorot_uniform((q[-1], k[-1]), rng, self.dtype)       # (dq, dk)
        if self.use_scale:
            self.params["scale"] = np.ones((1,), self.dtype)           # Keras: shape (); (1,) here, as
        if self.score_mode == "concat":                                 # the optimizers take arrays
            self.params["concat_score_weight"] = np.ones((1,), self.dtype)
        self._dropout_rng = np.random.default_rng(self.seed)
        self.zero_grads()
        super().build([tuple(s) for s in input_shape])

    def compute_output_shape(self, input_shape, return_attention_scores=False):
        q, v, k = self._check_shapes(input_shape)
        out = (q[0], v[-1])
        return [out, (q[0], k[0])] if return_attention_scores else out

    def compute_mask(self, x, mask):
        if mask is None or not isinstance(mask, (list, tuple)) or mask[0] is None:
            return None
        return np.asarray(mask[0], bool)

    # ---- scores and their backward --------------------------------------------------------
    def _scores(self, q, k):
        p = self.params
        if self.score_mode == "concat":
            e = q[:, :, None, :] + k[:, None, :, :]                          # (B, Tq, Tv, d)
            u = p["scale"] * e if self.use_scale else e
            t = np.tanh(u)
            s = p["concat_score_weight"] * t.sum(axis=-1)                    # (B, Tq, Tv)
            return s, (e, t)
        qw = q @ p["W"] if self.score_mode == "general" else q               # (B, Tq, dk)
        raw = qw @ k.transpose(0, 2, 1)                                      # (B, Tq, Tv)
        s = raw * p["scale"] if self.use_scale else raw
        return s, (qw, raw)

    def _scores_backward(self, ds, q, k, cache):
        """ds (B, Tq, Tv) -> dq, dk; fills the weights' grads."""
        p, g = self.params, self.grads
        if self.score_mode == "concat":
            e, t = cache
            g["concat_score_weight"] = np.full((1,), (ds * t.sum(axis=-1)).sum(), self.dtype)
            du = (ds * p["concat_score_weight"])[..., None] * (1.0 - t * t)      # backprop through sum of tanh
            if self.use_scale:
                g["scale"] = np.full((1,), (du * e).sum(), self.dtype)
                de = du * p["scale"]                                         # backprop through scale * e
            else:
                de = du
            return de.sum(axis=2), de.sum(axis=1)                            # backprop through q_i + k_j
        qw, raw = cache
        if self.use_scale:
            g["scale"] = np.full((1,), (ds * raw).sum(), self.dtype)
            draw = ds * p["scale"]                                           # backprop through raw * scale
        else:
            draw = ds
        dqw = draw @ k                                                       # backprop through qw k^T
        dk = draw.transpose(0, 2, 1) @ qw
        if self.score_mode == "general":
            g["W"] = q.reshape(-1, q.shape[-1]).T @ dqw.reshape(-1, dqw.shape[-1])   # backprop through q W
            return dqw @ p["W"].T, dk
        return dqw, dk

    # ---- forward and backward -------------------------------------------------------------
    def forward(self, x, training=False, mask=None, return_attention_scores=False, use_causal_mask=False):
        what = f"{type(self).__name__} {self.name!r}"
        if not isinstance(x, (list, tuple)) or len(x) not in (2, 3):
            raise ValueError(f"{what} takes a list [query, value] or [query, value, key]; got "
                             f"{type(x).__name__}")
        arrays = [np.asarray(a, self.dtype) for a in x]
        if any(a.ndim != 3 for a in arrays):
            raise ValueError(f"{what} inputs must be (batch, time, features); got shapes {[a.shape for a in arrays]}")
        if not self.built:
            self.build([a.shape[1:] for a in arrays])
        self._check_shapes([a.shape[1:] for a in arrays])
        q, v = arrays[0], arrays[1]
        k = arrays[2] if len(arrays) == 3 else v
        masks = list(mask) if isinstance(mask, (list, tuple)) else [None, None]
        q_mask, v_mask = masks[0], masks[1]
        hide = None
        if v_mask is not None:
            hide = ~np.asarray(v_mask, bool)[:, None, :]                     # (B, 1, Tv)
        if use_causal_mask:
            Tq, Tv = q.shape[1], k.shape[1]
            future = np.arange(Tv)[None, :] > np.arange(Tq)[:, None]         # (Tq, Tv): j > i
            hide = future[None] if hide is None else (hide | future[None])
        parts = self._batch_parts(q, k, v)
        if parts is not None:
            out, score_cache, a, keep, a_used = self._forward_parts(parts, q, k, v, hide, training)
        else:
            s, score_cache = self._scores(q, k)                              # (B, Tq, Tv)
            if hide is not None:
                s = np.where(hide, s - NEG, s)
            a = _softmax(s)                                                  # (B, Tq, Tv)
            keep = self._dropout_keep(a.shape, training)
            a_used = a * keep if keep is not None else a
            out = a_used @ v                                                 # (B, Tq, dv)
        q_keep = None
        if q_mask is not None:
            q_keep = np.asarray(q_mask, bool)[:, :, None]                    # (B, Tq, 1)
            out = np.where(q_keep, out, 0.0).astype(self.dtype)
        self._cache = (q, v, k, len(arrays), score_cache, a, keep, a_used, q_keep, bool(return_attention_scores))
        return [out, a_used] if return_attention_scores else out

    def backward(self, dout):
        if self._cache is None:
            raise RuntimeError(f"backward() called on layer {self.name!r} before forward()")
        q, v, k, n_in, score_cache, a, keep, a_used, q_keep, multi = self._cache
        d_scores = None
        if multi:
            dout, d_scores = dout
        dout = np.asarray(dout, self.dtype)
        if q_keep is not None:
            dout = np.where(q_keep, dout, 0.0)                               # backprop through the zeroed rows
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        parts = self._batch_parts(q, k, v)
        if parts is not None:
            dq, dk, dv = self._backward_parts(parts, dout, d_scores, q, k, v, score_cache, a, keep, a_used)
        else:
            da_used = dout @ v.transpose(0, 2, 1)                            # (B, Tq, Tv), backprop through a v
            if d_scores is not None:
                da_used = da_used + d_scores
            dv = a_used.transpose(0, 2, 1) @ dout                            # (B, Tv, dv)
            da = da_used * keep if keep is not None else da_used             # backprop through dropout
            ds = a * (da - (da * a).sum(axis=-1, keepdims=True))             # backprop through softmax
            # the -1e9 shift of masked scores is a constant: ds passes through it unchanged
            dq, dk = self._scores_backward(ds, q, k, score_cache)
        if n_in == 3:
            return [dq, dv, dk]
        return [dq, dv + dk]                                                 # the value was the key too

    def _dropout_keep(self, shape, training):
        """The dropout's scaled keep mask of the weights (None without dropout)."""
        if not (training and self.dropout > 0):
            return None
        p_keep = 1.0 - self.dropout
        return (self._dropout_rng.random(shape) < p_keep).astype(self.dtype) / p_keep

    # ---- the same over batch rows on the engine's threads -----------------------------------
    # Every step of the dot and general scores, the softmax and the products with the value is
    # per batch row (NumPy's stacked products too: a slice of the batch gives each row's product
    # bit for bit), so the rows can be computed in parts on the engine's threads, each part
    # writing its rows of the full arrays; the sums over the whole batch (the gradients of W and
    # of the scale) are then taken over the full arrays, as without parts. The same bits either
    # way (tests/test_attention_threads.py).

    def _batch_parts(self, q, k, v):
        """[(lo, hi)] batch row ranges for the threads, or None (one part)."""
        if type(self)._scores is not Attention._scores or self.score_mode == "concat":
            return None
        from ..kernels import policy, threads
        from ..settings import config
        B, Tq, Tv = q.shape[0], q.shape[1], k.shape[1]
        work = B * Tq * Tv * max(q.shape[2], v.shape[2])            # multiply-adds of one stacked product
        n = policy.attention_threads(B, work, config.threads)
        return threads.bounds(B, n) if n > 1 else None

    def _forward_parts(self, parts, q, k, v, hide, training):
        from ..kernels import threads
        B, Tq, Tv = q.shape[0], q.shape[1], k.shape[1]
        dt = self.dtype
        keep = self._dropout_keep((B, Tq, Tv), training)           # drawn whole: the same random stream
        general = self.score_mode == "general"
        qw = np.empty((B, Tq, self.params["W"].shape[1]), dt) if general else q
        raw, a = np.empty((B, Tq, Tv), dt), np.empty((B, Tq, Tv), dt)
        a_used = np.empty((B, Tq, Tv), dt) if keep is not None else a
        out = np.empty((B, Tq, v.shape[2]), dt)

        def rows(lo, hi):
            s, (qw_r, raw_r) = self._scores(q[lo:hi], k[lo:hi])
            if general:
                qw[lo:hi] = qw_r
            raw[lo:hi] = raw_r
            if hide is not None:
                s = np.where(hide if hide.shape[0] == 1 else hide[lo:hi], s - NEG, s)
            a_r = _softmax(s)
            a[lo:hi] = a_r
            if keep is not None:
                a_r = a_r * keep[lo:hi]
                a_used[lo:hi] = a_r
            out[lo:hi] = a_r @ v[lo:hi]
        threads.run(rows, parts)
        return out, (qw, raw), a, keep, a_used

    def _backward_parts(self, parts, dout, d_scores, q, k, v, cache, a, keep, a_used):
        from ..kernels import threads
        p, g = self.params, self.grads
        qw, raw = cache
        general = self.score_mode == "general"
        ds = np.empty(a.shape, self.dtype)
        dqw = np.empty(qw.shape, self.dtype)
        dq = np.empty(q.shape, self.dtype) if general else dqw
        dk, dv = np.empty(k.shape, self.dtype), np.empty(v.shape, self.dtype)

        def rows(lo, hi):
            do = dout[lo:hi]
            da_used = do @ v[lo:hi].transpose(0, 2, 1)                       # backprop through a v
            if d_scores is not None:
                da_used = da_used + d_scores[lo:hi]
            dv[lo:hi] = a_used[lo:hi].transpose(0, 2, 1) @ do
            da = da_used * keep[lo:hi] if keep is not None else da_used      # backprop through dropout
            a_r = a[lo:hi]
            ds_r = a_r * (da - (da * a_r).sum(axis=-1, keepdims=True))       # backprop through softmax
            ds[lo:hi] = ds_r
            draw = ds_r * p["scale"] if self.use_scale else ds_r             # backprop through raw * scale
            dqw_r = draw @ k[lo:hi]                                          # backprop through qw k^T
            dk[lo:hi] = draw.transpose(0, 2, 1) @ qw[lo:hi]
            dqw[lo:hi] = dqw_r
            if general:
                dq[lo:hi] = dqw_r @ p["W"].T                                 # backprop through q W (input)
        threads.run(rows, parts)
        if self.use_scale:
            g["scale"] = np.full((1,), (ds * raw).sum(), self.dtype)
        if general:
            g["W"] = q.reshape(-1, q.shape[-1]).T @ dqw.reshape(-1, dqw.shape[-1])   # backprop through q W
        return dq, dk, dv

    def get_config(self):
        return {**super().get_config(), "use_scale": self.use_scale, "score_mode": self.score_mode,
                "dropout": self.dropout}


@register
class AdditiveAttention(Attention):
    """Additive (Bahdanau) attention, s_ij = sum_d w_d tanh(q_id + k_jd); see the module docstring."""

    def __init__(self, use_scale=True, dropout=0.0, **kwargs):
        kwargs.pop("score_mode", None)
        super().__init__(use_scale=use_scale, score_mode="dot", dropout=dropout, **kwargs)

    def _needs_same_dim(self):
        return True

    def build(self, input_shape):
        q, v, k = self._check_shapes(input_shape)
        self.params = {}
        if self.use_scale:
            self.params["scale"] = initializers.glorot_uniform((q[-1],), self._rng(), self.dtype)   # (d,)
        self._dropout_rng = np.random.default_rng(self.seed)
        self.zero_grads()
        Layer.build(self, [tuple(s) for s in input_shape])

    def _scores(self, q, k):
        t = np.tanh(q[:, :, None, :] + k[:, None, :, :])                    # (B, Tq, Tv, d)
        w = self.params["scale"] if self.use_scale else 1.0
        return (w * t).sum(axis=-1), t                                       # (B, Tq, Tv)

    def _scores_backward(self, ds, q, k, t):
        dsd = ds[..., None]                                                  # (B, Tq, Tv, 1)
        if self.use_scale:
            self.grads["scale"] = (dsd * t).sum(axis=(0, 1, 2))              # backprop through w * t
            dt = dsd * self.params["scale"]
        else:
            dt = dsd
        de = dt * (1.0 - t * t)                                              # backprop through tanh
        return de.sum(axis=2), de.sum(axis=1)                                # backprop through q_i + k_j

    def get_config(self):
        cfg = super().get_config()
        del cfg["score_mode"]
        return cfg
