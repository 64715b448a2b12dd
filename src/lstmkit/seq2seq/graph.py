"""The translation model as a functional lk.Model (Luong et al. 2015 without
input feeding), and the step decoder that greedy and beam search run on it.

    inputs    source (B, S) ids, target_in (B, T) ids (BOS, then the reference
              without its last token); id 0 is padding (Embedding mask_zero)
    encoder   m, (h_i, c_i) = RNN_i(...RNN_1(E_src[x]))    per layer i, return_state;
              bidirectional: Bidirectional(RNN(units/2)), the two directions'
              final states joined [fwd; bwd] by Concatenate
    decoder   h = RNN_L(...RNN_1(E_tgt[y_in]))             layer i started from the
                                                           encoder layer i's states
              (initial_state)
    attention c_t = sum_s a_ts m_s                         layers/attention.py:
                general  a = softmax(h W m^T)              Attention(score_mode="general")
                dot      a = softmax(h m^T)                Attention(score_mode="dot")
                additive a = softmax(v . tanh(h W_q + m W_k))  Dense "query_proj" / "key_proj"
                                                           then AdditiveAttention(use_scale=True)
              h~_t = tanh([c_t; h_t] W_c)                  Concatenate, Dense "combine" (no bias)
    output    p(y_t | y_<t, x) = softmax(h~_t W_o + b_o)   Dense "output" (h_t without attention)

Dropout (lk.Dropout) on both embeddings, between stacked layers and before
the output layer. The masks of the two Embedding layers travel through the
graph: the encoder skips padded source steps, attention never looks at them,
and the softmax head projects only the real target steps (Dense.forward_rows,
training's "rows" fusion), so the sparse cross-entropy (label smoothing as an
option) is the mean over real target tokens.

Training is Model.fit. Decoding (`GraphDecoder`, in seq2seq/search.py's
protocol) runs the same layers with the trained weights: the encoder layers
over the whole source once, then per output position the decoder layers'
compiled step kernels (RNNLayer.step), attention, combine and output.

Input feeding (h~_{t-1} into the decoder's next step) is a recurrence through
attention that a graph of whole-sequence layers cannot express: it stays an
option of the container model `Seq2Seq` (seq2seq/model.py).
"""
import numpy as np

from ..data.subwords import BOS, PAD
from .attention import SCORES
from .model import Encoded, check_settings, output_logits


def build(src_vocab, tgt_vocab, embed_dim=256, units=256, layers=1, cell="lstm", bidirectional=False,
          attention="general", dropout=0.2, seed=0, engine="auto", dtype="float32"):
    """The teacher-forcing graph: inputs [source, target_in], output the next-token
    probabilities (B, T, tgt_vocab). attention: one of SCORES or None."""
    import lstmkit as lk
    check_settings(cell, attention, bidirectional, units, dropout)
    rnn = lk.LSTM if cell == "lstm" else lk.GRU
    n_states = 2 if cell == "lstm" else 1
    seeds = iter(range(1000))
    s = lambda: None if seed is None else seed * 1000 + 10 * next(seeds)
    kw = dict(dtype=dtype)

    def drop(x, name):
        return lk.Dropout(dropout, name=name, seed=s(), **kw)(x) if dropout else x

    src = lk.Input(shape=(None,), dtype="int32", name="source")
    tgt = lk.Input(shape=(None,), dtype="int32", name="target_in")
    x = drop(lk.Embedding(src_vocab, embed_dim, mask_zero=True, name="src_embedding", seed=s(), **kw)(src),
             "src_dropout")
    enc_states = []
    for i in range(layers):
        if bidirectional:
            outs = lk.Bidirectional(rnn(units // 2, return_sequences=True, return_state=True, engine=engine,
                                        seed=s(), name=f"encoder{i}_fwd", **kw), name=f"encoder{i}")(x)
            x, fwd, bwd = outs[0], outs[1:1 + n_states], outs[1 + n_states:]
            states = [lk.Concatenate(name=f"encoder{i}_state{k}", **kw)([f, b])
                      for k, (f, b) in enumerate(zip(fwd, bwd))]
        else:
            outs = rnn(units, return_sequences=True, return_state=True, engine=engine, seed=s(),
                       name=f"encoder{i}", **kw)(x)
            x, states = outs[0], list(outs[1:])
        enc_states.append(states)
        if i < layers - 1:
            x = drop(x, f"encoder{i}_dropout")
    memory = x                                                                      # (B, S, units)
    y = drop(lk.Embedding(tgt_vocab, embed_dim, mask_zero=True, name="tgt_embedding", seed=s(), **kw)(tgt),
             "tgt_dropout")
    for i in range(layers):
        y = rnn(units, return_sequences=True, engine=engine, seed=s(), name=f"decoder{i}", **kw)(
            y, initial_state=enc_states[i])                                         # (B, T, units)
        if i < layers - 1:
            y = drop(y, f"decoder{i}_dropout")
    if attention is not None:
        if attention == "additive":
            q = lk.Dense(units, use_bias=False, name="query_proj", seed=s(), **kw)(y)
            k = lk.Dense(units, use_bias=False, name="key_proj", seed=s(), **kw)(memory)
            ctx = lk.AdditiveAttention(use_scale=True, name="attention", seed=s(), **kw)([q, memory, k])
        else:
            ctx = lk.Attention(score_mode=attention, name="attention", seed=s(), **kw)([y, memory])
        y = lk.Dense(units, activation="tanh", use_bias=False, name="combine", seed=s(), **kw)(
            lk.Concatenate(name="context_and_state", **kw)([ctx, y]))               # h~ (B, T, units)
    y = drop(y, "output_dropout")
    probs = lk.Dense(tgt_vocab, activation="softmax", name="output", seed=s(), **kw)(y)
    return lk.Model([src, tgt], probs, name="translator")


def describe(model):
    """The settings a graph of build() was made with, read from its layers."""
    names = {layer.name for layer in model.layers}
    layers = sum(1 for n in names if n.startswith("decoder") and n[7:].isdigit())
    enc = model.get_layer("encoder0")
    bidirectional = hasattr(enc, "forward_layer")
    rnn = enc.forward_layer if bidirectional else enc
    att = model.get_layer("attention") if "attention" in names else None
    if att is None:
        attention = None
    elif "query_proj" in names:
        attention = "additive"
    else:
        attention = att.score_mode
    dec = model.get_layer("decoder0")
    return {"layers": layers, "bidirectional": bidirectional, "attention": attention,
            "cell": "lstm" if type(rnn).__name__ == "LSTM" else "gru", "units": dec.units,
            "embed_dim": model.get_layer("tgt_embedding").output_dim,
            "src_vocab": model.get_layer("src_embedding").input_dim,
            "tgt_vocab": model.get_layer("tgt_embedding").input_dim}


def is_graph(model):
    return hasattr(model, "forward_heads")


def arrays(src, tgt, max_src=None, max_tgt=None):
    """Lists of ids (targets ending in EOS) -> (source (N, S), target_in (N, T), target (N, T)),
    padded with 0 after each sentence. target_in is BOS then the target without its last
    token, so its real steps are exactly the target's."""
    S = max_src or max(len(s) for s in src)
    T = max_tgt or max(len(t) for t in tgt)
    x = np.zeros((len(src), S), np.int32)
    y = np.zeros((len(tgt), T), np.int32)
    for i, (a, b) in enumerate(zip(src, tgt)):
        x[i, :len(a)] = a
        y[i, :len(b)] = b
    y_in = np.zeros_like(y)
    y_in[:, 0] = BOS
    y_in[:, 1:] = y[:, :-1]
    y_in[y == PAD] = PAD
    return x, y_in, y


class GraphDecoder:
    """encode / start / step over a trained graph's layers (no dropout: inference),
    in seq2seq/search.py's protocol: step(enc, state, prev) -> (logits (N, V),
    attention weights (N, S) or None, state); state = ([per layer (h, c) or (h,)], None)."""

    def __init__(self, model):
        self.model = model
        info = describe(model)
        self.n_layers, self.attention_score = info["layers"], info["attention"]
        get = model.get_layer
        self.src_embedding, self.tgt_embedding = get("src_embedding"), get("tgt_embedding")
        self.encoder = [get(f"encoder{i}") for i in range(self.n_layers)]
        self.decoder = [get(f"decoder{i}") for i in range(self.n_layers)]
        self.attention = get("attention") if self.attention_score else None
        self.combine = get("combine") if self.attention_score else None
        self.query_proj = get("query_proj") if self.attention_score == "additive" else None
        self.key_proj = get("key_proj") if self.attention_score == "additive" else None
        self.output = get("output")
        self.dtype = self.output.params["W"].dtype

    def encode(self, src):
        src = np.asarray(src)
        mask = src != PAD                                                        # (B, S)
        x = self.src_embedding.forward(src)                                      # (B, S, E)
        states = []
        for layer in self.encoder:
            outs = layer.forward(x, training=False, mask=mask)
            x, st = outs[0], outs[1:]
            if hasattr(layer, "forward_layer"):                                  # join [fwd; bwd]
                n = len(st) // 2
                st = [np.concatenate([f, b], axis=-1) for f, b in zip(st[:n], st[n:])]
            states.append(tuple(np.ascontiguousarray(s, self.dtype) for s in st))
        keys = None if self.key_proj is None else self.key_proj.forward(x)       # (B, S, A)
        return Encoded(x, keys, mask, states)

    def start(self, enc):
        return [tuple(s.copy() for s in st) for st in enc.states], None

    def step(self, enc, state, prev):
        states, _ = state
        x = np.take(self.tgt_embedding.params["embeddings"], np.asarray(prev), axis=0)   # (N, E)
        new = []
        for layer, st in zip(self.decoder, states):
            x, st = layer.step(np.ascontiguousarray(x), st)                      # (N, H), compiled kernel
            new.append(st)
        weights = None
        if self.attention is not None:
            h = x[:, None]                                                       # (N, 1, H)
            if self.query_proj is not None:
                ins = [self.query_proj.forward(h), enc.memory, enc.keys]
            else:
                ins = [h, enc.memory]
            ctx, w = self.attention.forward(ins, mask=[None, enc.mask], return_attention_scores=True)
            x = self.combine.forward(np.concatenate([ctx, h], axis=-1))[:, 0]   # h~ (N, H)
            weights = w[:, 0]
        logits = output_logits(self.output, x, enc)     # (N, V), the softmax left to the search
        logits[:, PAD] = -np.inf                      # never a target, so never written
        logits[:, BOS] = -np.inf
        return logits, weights, (new, None)


def decoder_for(model):
    """What search.greedy / beam_search decode with: the graph's step decoder, or a
    Seq2Seq container (input feeding) itself."""
    return GraphDecoder(model) if is_graph(model) else model
