"""An encoder-decoder for translation (Sutskever et al. 2014; with attention,
Luong et al. 2015), written with explicit forward and backward passes over the
library's layers.

    encoder   m, (h_T, c_T) = RNN_L(...RNN_1(E_src[x]))            bidirectional: each direction
                                                                    units/2, states joined [fwd; bwd]
    decoder   h_t = RNN_L(...RNN_1([E_tgt[y_{t-1}]; h~_{t-1}]))     started from the encoder's final
                                                                    states, layer by layer; the h~ part
                                                                    only with input feeding
    attention h~_t = tanh([c_t; h_t] W_c), c_t = sum_s a_ts m_s     seq2seq/attention.py
    output    p(y_t | y_<t, x) = softmax(h~_t W_o + b_o)            (h_t in place of h~_t without attention;
                                                                    the Dense `output_layer`)

Dropout (rate `dropout`, a new mask per call): on both embeddings, between
stacked layers, and on h~_t (or h_t) before the output layer.

Training is teacher forcing: the decoder reads the reference shifted right
(BOS first) and is scored on every real target token (EOS included).
Without input feeding the decoder runs over the whole target at once on the
fused sequence kernels, then attention is one batched product; with input
feeding each step needs the previous step's h~, so the decoder runs step by
step (the same kernels on one step at a time) and backward walks the steps in
reverse. The output layer is applied only at real target tokens (padding
costs nothing there).

Decoding (greedy and beam search, seq2seq/search.py) runs the decoder one
step at a time on the compiled step kernels (RNNLayer.step).

A Seq2Seq is a Container layer: params/grads are its sub-layers' arrays under
"<sub-layer>/<param>", and lstmkit.save_model / load_model store it as any
other model (config JSON plus safetensors weights).
"""
import numpy as np

from ..data.subwords import BOS, PAD
from ..layers.base import register
from ..layers.bidirectional import Bidirectional
from ..layers.container import Container
from ..layers.dense import Dense
from ..layers.embedding import Embedding
from ..layers.recurrent import GRU, LSTM
from .attention import SCORES, GlobalAttention

CELLS = {"lstm": LSTM, "gru": GRU}


class Encoded:
    """What the decoder needs from the encoder: memory (B, S, M), its keys,
    the source mask (B, S) and the final states per layer (joined)."""
    __slots__ = ("memory", "keys", "mask", "states", "packed")

    def __init__(self, memory, keys, mask, states):
        self.memory, self.keys, self.mask, self.states = memory, keys, mask, states
        self.packed = None                 # the output weight packed for this decoding (output_logits)

    def take(self, rows):
        """The same sources for the given batch rows (beam search repeats each sentence)."""
        keys = None if self.keys is None else self.keys[rows]
        return Encoded(self.memory[rows], keys, self.mask[rows],
                       [tuple(s[rows] for s in st) for st in self.states])


def check_settings(cell, attention, bidirectional, units, dropout):
    """The settings both translation models (this container and seq2seq/graph.py) share."""
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {sorted(CELLS)}; got {cell!r}")
    if attention is not None and attention not in SCORES:
        raise ValueError(f"attention must be one of {SCORES} or None; got {attention!r}")
    if bidirectional and units % 2:
        raise ValueError(f"a bidirectional encoder splits units between its two directions: "
                         f"units must be even; got {units}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1); got {dropout!r}")


def output_logits(dense, x, enc=None):
    """A decoding step's output layer without its activation, x (N, H) -> logits (N, V).

    For a few rows (beam search of one sentence: N = beam) BLAS is slow: its matrix
    product packs the whole (H, V) weight on every call, and one matrix-vector product
    per row reads the weight N times. With `enc` (the decoding's Encoded), the weight is
    packed once per decoding (kernels/gemm.py, kept on enc) and each step is one packed
    product, which reads it about once: at N = 5, H = 256, V = 4000, 72 us against 258 us
    for the row products and 210 us for BLAS's product (one thread); the packing, 0.22 ms,
    is paid back by the second step. The bias is added in place, so a step makes one
    (N, V) array."""
    W, b = dense.params["W"], dense.params["b"]
    if x.shape[0] > 8 or x.dtype != W.dtype:
        out = x @ W                                                              # (N, V)
    elif enc is not None:
        from ..kernels import gemm
        if enc.packed is None or enc.packed[0] is not W:
            # packed anew for each decoding (the weights may have been trained since), into
            # memory kept on the layer: fresh pages cost 0.6 ms a decoding against 0.2 reused
            buf = getattr(dense, "_decode_pack", None)
            if buf is None or buf.shape != (gemm.n_panels(W.shape[1]),) + W.shape[:1] + (gemm.PANEL,) \
                    or buf.dtype != W.dtype:
                buf = dense._decode_pack = None
            enc.packed = (W, gemm.pack(W, out=buf))                              # (V/32, H, 32)
            dense._decode_pack = enc.packed[1]
        out = np.empty((x.shape[0], W.shape[1]), W.dtype)
        x, nb = np.ascontiguousarray(x), gemm.no_bias(out.dtype)
        gemm.rows_kernel(x, enc.packed[1], out, nb)(0, x.shape[0], x, enc.packed[1], out, False, nb)  # x W
    else:
        out = np.empty((x.shape[0], W.shape[1]), W.dtype)
        for r in range(x.shape[0]):
            np.dot(x[r], W, out=out[r])                                          # x_r W
    out += b
    return out


@register
class Seq2Seq(Container):
    def __init__(self, src_vocab, tgt_vocab, embed_dim=256, units=256, layers=1, cell="lstm",
                 bidirectional=False, attention="general", input_feeding=False, dropout=0.2,
                 engine="auto", **kwargs):
        super().__init__(**kwargs)
        check_settings(cell, attention, bidirectional, units, dropout)
        if input_feeding and attention is None:
            raise ValueError("input feeding feeds the attentional state back: it needs attention")
        self.src_vocab, self.tgt_vocab = int(src_vocab), int(tgt_vocab)
        self.embed_dim, self.units, self.n_layers = int(embed_dim), int(units), int(layers)
        self.cell, self.bidirectional = cell, bool(bidirectional)
        self.attention_score, self.input_feeding = attention, bool(input_feeding)
        self.dropout, self.engine = float(dropout), engine
        E, H, L, dt = self.embed_dim, self.units, self.n_layers, self.dtype.name
        # each sub-layer its own seed (a Bidirectional gives its backward copy seed + 1)
        seeds = iter(range(100)) if self.seed is None else iter(self.seed * 1000 + 10 * k for k in range(1, 100))
        seed = lambda: None if self.seed is None else next(seeds)
        rnn = CELLS[cell]
        self.src_embedding = Embedding(self.src_vocab, E, name="src_embedding", dtype=dt, seed=seed())
        self.encoder = []
        for i in range(L):
            D = E if i == 0 else H
            if self.bidirectional:
                layer = Bidirectional(rnn(H // 2, return_sequences=True, engine=engine, dtype=dt,
                                          seed=seed(), input_shape=(None, D), name=f"encoder{i}_fwd"),
                                      name=f"encoder{i}")
            else:
                layer = rnn(H, return_sequences=True, engine=engine, dtype=dt, seed=seed(),
                            input_shape=(None, D), name=f"encoder{i}")
            self.encoder.append(layer)
        self.tgt_embedding = Embedding(self.tgt_vocab, E, name="tgt_embedding", dtype=dt, seed=seed())
        self.decoder = [rnn(H, return_sequences=True, engine=engine, dtype=dt, seed=seed(),
                            input_shape=(None, (E + H if self.input_feeding else E) if i == 0 else H),
                            name=f"decoder{i}") for i in range(L)]
        self.attention = None if attention is None else GlobalAttention(
            H, H, score=attention, name="attention", dtype=dt, seed=seed())
        self.output_layer = Dense(self.tgt_vocab, input_dim=H, name="output", dtype=dt, seed=seed())
        self.dropout_rng = np.random.default_rng(None if self.seed is None else self.seed + 17)
        self._drops = {}
        self._cache = None
        self.built = True

    def sublayers(self):
        subs = [("src_embedding", self.src_embedding)]
        subs += [(l.name, l) for l in self.encoder]
        subs += [("tgt_embedding", self.tgt_embedding)]
        subs += [(l.name, l) for l in self.decoder]
        if self.attention is not None:
            subs.append(("attention", self.attention))
        subs.append(("output", self.output_layer))
        return subs

    # ---- dropout -------------------------------------------------------------------------
    def _drop(self, x, key, training):
        if not training or self.dropout == 0:
            self._drops[key] = None
            return x
        keep = 1.0 - self.dropout
        m = (self.dropout_rng.random(x.shape) < keep).astype(x.dtype) / keep
        self._drops[key] = m
        return x * m

    def _undrop(self, dx, key):
        m = self._drops.get(key)
        return dx if m is None else dx * m                                 # backprop through dropout

    # ---- encoder -------------------------------------------------------------------------
    def _joined(self, layer):
        """A layer's final states; a bidirectional layer's two directions joined [fwd; bwd]."""
        if isinstance(layer, Bidirectional):
            f, b = layer.final_state
            return tuple(np.concatenate([sf, sb], axis=-1) for sf, sb in zip(f, b))
        return tuple(layer.final_state)

    def _split_grad(self, layer, dstate):
        """The gradient for a joined final state, back in the layer's own layout."""
        if dstate is None:
            return None
        if isinstance(layer, Bidirectional):
            h = self.units // 2
            return (tuple(d[:, :h] for d in dstate), tuple(d[:, h:] for d in dstate))
        return dstate

    def encode(self, src, training=False):
        """src (B, S) ids, padding 0 after the sentence -> Encoded."""
        src = np.asarray(src)
        mask = src != PAD                                                     # (B, S)
        x = self._drop(self.src_embedding.forward(src), "src_emb", training)  # (B, S, E)
        states = []
        for i, layer in enumerate(self.encoder):
            x = layer.forward(x, training=training, mask=mask)                # (B, S, H)
            states.append(self._joined(layer))
            if i < self.n_layers - 1:
                x = self._drop(x, f"enc{i}", training)
        keys = None if self.attention is None else self.attention.keys(x)
        return Encoded(x, keys, mask, states)

    # ---- teacher-forced decoder ------------------------------------------------------------
    def forward(self, src, tgt_in, training=False):
        """src (B, S), tgt_in (B, T) (BOS then the reference) -> the states the output
        layer reads, (B, T, H): h~_t with attention, h_t without (after dropout)."""
        enc = self.encode(src, training)
        y = self._drop(self.tgt_embedding.forward(np.asarray(tgt_in)), "tgt_emb", training)  # (B, T, E)
        if self.input_feeding:
            out, step_caches = self._decode_fed(y, enc, training)
            self._cache = ("fed", enc, step_caches)
        else:
            for i, layer in enumerate(self.decoder):
                y = layer.forward(y, training=training, initial_state=enc.states[i])  # (B, T, H)
                if i < self.n_layers - 1:
                    y = self._drop(y, f"dec{i}", training)
            attn_cache = None
            if self.attention is not None:
                y, self.last_attention, attn_cache = self.attention.attend(y, enc.keys, enc.memory, enc.mask)
            out = y
            self._cache = ("whole", enc, attn_cache)
        return self._drop(out, "out", training)

    def _decode_fed(self, y, enc, training):
        """Input feeding: step t reads [E y_{t-1}; h~_{t-1}] (h~_0 = 0), so the decoder
        runs one step at a time, keeping each step's caches for backward."""
        B, T, _ = y.shape
        H = self.units
        states = list(enc.states)
        feed = np.zeros((B, H), y.dtype)
        outs, caches = np.empty((B, T, H), y.dtype), []
        for t in range(T):
            x = np.concatenate([y[:, t], feed], axis=-1)                      # (B, E + H)
            layer_caches = []
            for i, layer in enumerate(self.decoder):
                engine = layer.engine_module(training)
                p = layer.params
                hs, states[i], cache = engine.forward(
                    x[:, None], p["W_x"], p["W_h"], p.get("b_x"), p.get("b_h"), states[i],
                    **layer.cell_options())
                layer_caches.append((engine, cache))
                x = hs[:, 0]                                                   # (B, H)
                if i < self.n_layers - 1:
                    x = self._drop(x, f"dec{i}/{t}", training)
            h_att, _, attn_cache = self.attention.attend(x[:, None], enc.keys, enc.memory, enc.mask)
            outs[:, t] = h_att[:, 0]
            # the next step reads h~_t after dropout, as the output layer does
            feed = self._drop(h_att[:, 0], f"feed/{t}", training)
            caches.append((layer_caches, attn_cache))
        return outs, caches

    def backward(self, dout):
        """dout (B, T, H), the gradient for forward()'s output; fills every sub-layer's grads."""
        if self._cache is None:
            raise RuntimeError("Seq2Seq.backward() called before forward()")
        kind, enc, cache = self._cache
        dout = self._undrop(dout, "out")
        dmemory, dK = None, None
        if self.attention is not None:
            self.attention.zero_grads()
        if kind == "fed":
            dy, dstates, dK, dmemory = self._decode_fed_backward(dout, enc, cache)
        else:
            dh = dout
            if self.attention is not None:
                dh, dK, dmemory = self.attention.attend_backward(dout, cache)
            dstates = [None] * self.n_layers
            for i in reversed(range(self.n_layers)):
                if i < self.n_layers - 1:
                    dh = self._undrop(dh, f"dec{i}")
                dh = self.decoder[i].backward(dh)                            # (B, T, D)
                dstates[i] = self.decoder[i].initial_state_grad
            dy = dh
        self.tgt_embedding.backward(self._undrop(dy, "tgt_emb"))
        if dK is not None:
            dK_memory = self.attention.keys_backward(dK, enc.memory)
            dmemory = dK_memory if dmemory is None else dmemory + dK_memory
        dx = np.zeros_like(enc.memory) if dmemory is None else dmemory        # (B, S, H)
        for i in reversed(range(self.n_layers)):
            if i < self.n_layers - 1:
                dx = self._undrop(dx, f"enc{i}")
            layer = self.encoder[i]
            dx = layer.backward(np.ascontiguousarray(dx, dtype=self.dtype),
                                self._split_grad(layer, dstates[i]))
        self.src_embedding.backward(self._undrop(dx, "src_emb"))

    def _decode_fed_backward(self, dout, enc, caches):
        B, T, H = dout.shape
        L = self.n_layers
        for layer in self.decoder:
            layer.grads = {k: np.zeros_like(v) for k, v in layer.params.items()}
        dstate = [None] * L
        dfeed = None
        dK = np.zeros_like(enc.keys)
        dmemory = np.zeros_like(enc.memory)
        E = self.embed_dim
        dy = np.empty((B, T, E), self.dtype)
        for t in reversed(range(T)):
            layer_caches, attn_cache = caches[t]
            d_att = dout[:, t]
            if dfeed is not None:
                d_att = d_att + self._undrop(dfeed, f"feed/{t}")
            dh, dk, dm = self.attention.attend_backward(d_att[:, None], attn_cache)
            dK += dk
            dmemory += dm
            dx = dh[:, 0]
            for i in reversed(range(L)):
                if i < L - 1:
                    dx = self._undrop(dx, f"dec{i}/{t}")
                engine, cache = layer_caches[i]
                g = engine.backward(np.ascontiguousarray(dx[:, None]), dstate[i], cache)
                layer = self.decoder[i]
                for k in layer.grads:
                    layer.grads[k] += g[k]
                dstate[i] = tuple(np.array(s) for s in g["state0"])
                dx = g["x"][:, 0]                                               # (B, D)
            dy[:, t] = dx[:, :E]
            dfeed = dx[:, E:]                                                   # for h~_{t-1}
        return dy, dstate, dK, dmemory

    # ---- output layer and loss ---------------------------------------------------------------
    def logits(self, h):
        """h (..., H) -> logits (..., V)."""
        return self.output_layer.forward(h)

    # ---- one step at a time, for decoding ---------------------------------------------------
    def start(self, enc):
        """The decoder's state before the first step: the encoder's final states
        (copies, C order) and h~_0 = 0 for input feeding."""
        states = [tuple(np.ascontiguousarray(s, dtype=self.dtype) for s in st) for st in enc.states]
        B = enc.memory.shape[0]
        feed = np.zeros((B, self.units), self.dtype) if self.input_feeding else None
        return states, feed

    def step(self, enc, state, prev):
        """One decoder step for every row: prev (N,) the previous tokens ->
        (logits (N, V), attention weights (N, S) or None, new state)."""
        states, feed = state
        x = np.take(self.tgt_embedding.params["embeddings"], prev, axis=0)    # (N, E)
        if feed is not None:
            x = np.concatenate([x, feed], axis=-1)
        new_states = []
        for layer, st in zip(self.decoder, states):
            x, st = layer.step(x, st)                                          # (N, H), compiled kernel
            new_states.append(st)
        weights = None
        if self.attention is not None:
            x, weights, _ = self.attention.attend(x[:, None], enc.keys, enc.memory, enc.mask)
            x, weights = x[:, 0], weights[:, 0]
        logits = output_logits(self.output_layer, x, enc)                           # (N, V)
        logits[:, PAD] = -np.inf                      # never a target, so never written
        logits[:, BOS] = -np.inf
        return logits, weights, (new_states, x if self.input_feeding else None)

    # ---- config --------------------------------------------------------------------------------
    def get_config(self):
        cfg = super().get_config()
        cfg.update(src_vocab=self.src_vocab, tgt_vocab=self.tgt_vocab, embed_dim=self.embed_dim,
                   units=self.units, layers=self.n_layers, cell=self.cell,
                   bidirectional=self.bidirectional, attention=self.attention_score,
                   input_feeding=self.input_feeding, dropout=self.dropout, engine=self.engine)
        return cfg

    def save(self, path):
        from ..models.saving import save_model
        save_model(self, path)


def shift_right(tgt):
    """tgt (B, T) ids followed by EOS then padding -> the decoder's input: BOS, then tgt
    without its last column."""
    tgt = np.asarray(tgt)
    out = np.empty_like(tgt)
    out[:, 0] = BOS
    out[:, 1:] = tgt[:, :-1]
    return out
