"""Captioning models on the functional API, their vocabulary, and the step
function that greedy and beam search (seq2seq/search.py) decode with.

Three designs (`arch`):

    show-tell   Show and Tell (Vinyals et al. 2015), the source articles' design:
                x_{-1} = W_i v + b_i          the image vector, as the LSTM's first input
                x_t    = E[w_t]                then the caption's words
                h_t    = LSTM(x_t, h_{t-1})    from zero state
                p(w_{t+1} | v, w_<=t) = softmax(W_o h_t + b_o)
                As in the paper, BOS follows the image: the LSTM reads v, BOS, w_1, ..., w_n
                and predicts w_1, ..., w_n, EOS from the steps after the image (the image
                step's own output is trained to give BOS, a constant that decoding skips).
    init        the image as the LSTM's initial state: h_0 = tanh(W_h v), c_0 = tanh(W_c v);
                the LSTM reads BOS, w_1, ..., w_n and predicts w_1, ..., w_n, EOS.
    attention   attention over L places (Show, Attend and Tell, Xu et al. 2015), given
                features (N, L, D): keys/values m_l = tanh(W_m a_l); the state starts from
                the mean place as in `init`; after each LSTM step the context
                c_t = sum_l softmax_l(h_t W m_l) m_l (Luong's "general" score) and
                p(w_{t+1}) = softmax(W_o tanh(W_z [h_t; c_t])). The context is combined
                after the LSTM step (Luong et al. 2015) rather than fed into its input as
                in Xu et al.: the whole caption then runs through the fused LSTM kernels
                in training.

Training is teacher forcing on the functional model (one graph). Decoding runs the
same layers one step at a time: Embedding, the LSTM's compiled step kernel
(RNNLayer.step), attention and Dense -- the Dropout layers are left out (identity
at inference).

Ids: 0 padding, 1 unknown, 2 BOS, 3 EOS, then tokens (the layout of
data/subwords.py, which the search shares).
"""
import re
from collections import Counter

import numpy as np

from ..data.errors import DataError

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]
ARCHS = ("show-tell", "init", "attention")
WORD_RE = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]", re.UNICODE)


# ---- vocabulary ---------------------------------------------------------------------------

class CaptionVocab:
    """Word tokens (lower-cased words and punctuation marks) or character tokens
    (any script; what Chinese captions use)."""

    def __init__(self, tokens="word", vocab=None):
        if tokens not in ("word", "char"):
            raise DataError(f"tokens must be 'word' or 'char'; got {tokens!r}")
        self.tokens = tokens
        self.vocab = list(vocab) if vocab is not None else None
        self.index = None if vocab is None else {t: i for i, t in enumerate(self.vocab)}

    def split(self, text):
        if self.tokens == "char":
            return [c for c in text.strip() if not c.isspace()]
        return WORD_RE.findall(text.lower())

    def join(self, toks):
        if self.tokens == "char":
            return "".join(toks)
        text = " ".join(toks)
        text = re.sub(r" ([.,!?;:)\]%])", r"\1", text)
        text = re.sub(r"([(\[$]) ", r"\1", text)
        return re.sub(r" ?([’']) ?", r"\1", text)

    def fit(self, texts, min_count=1, max_tokens=None):
        counts = Counter(t for text in texts for t in self.split(text))
        ranked = sorted((kv for kv in counts.items() if kv[1] >= min_count), key=lambda kv: (-kv[1], kv[0]))
        if max_tokens:
            ranked = ranked[:max_tokens - len(SPECIALS)]
        self.vocab = SPECIALS + [t for t, _ in ranked]
        self.index = {t: i for i, t in enumerate(self.vocab)}
        return self

    def __len__(self):
        return len(self.vocab)

    def encode(self, text):
        return [self.index.get(t, UNK) for t in self.split(text)]

    def decode(self, ids):
        return self.join(self.vocab[i] for i in ids if i > EOS or i == UNK)

    def to_dict(self):
        return {"tokens": self.tokens, "vocab": self.vocab}

    @classmethod
    def from_dict(cls, d):
        return cls(d["tokens"], d["vocab"])


# ---- the training graph -------------------------------------------------------------------

def build_model(arch, feature_shape, vocab_size, embed_dim=128, units=256, dropout=0.3,
                attention_dim=None, seed=0, engine="auto"):
    """The teacher-forcing graph. Inputs: `image` (D,) -- for attention `places` (L, D)
    and `image` (D,) the mean place -- and `words` (T,) ids. Output `next`: (T', V)
    probabilities (T' = T + 1 for show-tell, T otherwise)."""
    import lstmkit as lk
    if arch not in ARCHS:
        raise DataError(f"arch must be one of {ARCHS}; got {arch!r}")
    if arch == "attention" and len(feature_shape) != 2:
        raise DataError(f"the attention model needs places, features shaped (N, L, D); these are "
                        f"(N, {feature_shape[0]}): use an encoder that gives a grid (onnx with a "
                        f"convolution's output, features:FILE.npy of (N, L, D)) or --arch show-tell")
    D = feature_shape[-1]
    s = iter(range(seed, seed + 100))
    words = lk.Input(shape=(None,), dtype="int32", name="words")
    image = lk.Input(shape=(D,), name="image")
    emb = lk.Embedding(vocab_size, embed_dim, mask_zero=True, name="word_embed", seed=next(s))(words)
    if dropout:
        emb = lk.Dropout(dropout, name="embed_dropout", seed=next(s))(emb)
    lstm = lk.LSTM(units, return_sequences=True, return_state=True, name="decoder", engine=engine,
                   seed=next(s))
    inputs = [image, words]
    if arch == "show-tell":
        first = lk.Dense(embed_dim, name="image_embed", seed=next(s))(image)          # (B, E)
        first = lk.RepeatVector(1, name="image_step")(first)                          # (B, 1, E)
        seq, _, _ = lstm(lk.Concatenate(axis=1, name="image_then_words")([first, emb]))
    else:
        h0 = lk.Dense(units, activation="tanh", name="init_h", seed=next(s))(image)
        c0 = lk.Dense(units, activation="tanh", name="init_c", seed=next(s))(image)
        seq, _, _ = lstm(emb, initial_state=[h0, c0])
    if arch == "attention":
        places = lk.Input(shape=(feature_shape[0], D), name="places")
        inputs = [places, image, words]
        A = attention_dim or units
        memory = lk.Dense(A, activation="tanh", name="place_proj", seed=next(s))(places)   # (B, L, A)
        if A != units:
            query = lk.Dense(A, name="query_proj", use_bias=False, seed=next(s))(seq)
        else:
            query = seq
        ctx = lk.Attention(score_mode="general", name="attention", seed=next(s))([query, memory])
        seq = lk.Dense(units, activation="tanh", name="combine", seed=next(s))(
            lk.Concatenate(name="state_and_context")([seq, ctx]))
    if dropout:
        seq = lk.Dropout(dropout, name="out_dropout", seed=next(s))(seq)
    probs = lk.Dense(vocab_size, activation="softmax", name="next", seed=next(s))(seq)
    return lk.Model(inputs, probs, name=f"caption_{arch.replace('-', '_')}")


def arch_of(model):
    names = {layer.name for layer in model.layers}
    if "attention" in names:
        return "attention"
    return "show-tell" if "image_embed" in names else "init"


def teacher_forcing(arch, seqs, max_len):
    """Id lists (no specials) -> (words (N, T), targets (N, T')) for the graph (T' = T + 1
    for show-tell: the image step comes first); captions
    longer than max_len tokens are cut (EOS still follows)."""
    seqs = [s[:max_len] for s in seqs]
    T = max(len(s) for s in seqs) + 1
    words = np.zeros((len(seqs), T), np.int32)
    target = np.zeros((len(seqs), T), np.int32)
    for i, s in enumerate(seqs):
        n = len(s)
        words[i, :n + 1] = [BOS] + s
        target[i, :n + 1] = s + [EOS]
    if arch == "show-tell":                               # the image is step 0; its output
        target = np.concatenate([np.full((len(seqs), 1), BOS, np.int32), target], axis=1)  # "predicts" BOS
    return words, target


def model_inputs(arch, features, words=None):
    """The graph's inputs in order, from features (N, D) or (N, L, D)."""
    vec = features.mean(axis=1) if features.ndim == 3 else features
    head = [features, vec] if arch == "attention" else [vec]
    return head if words is None else head + [words]


# ---- decoding -----------------------------------------------------------------------------

class Encoded:
    """The images' side of decoding for a batch of rows (beam search repeats rows)."""
    __slots__ = ("vector", "memory")

    def __init__(self, vector, memory):
        self.vector, self.memory = vector, memory

    def take(self, rows):
        return Encoded(self.vector[rows], None if self.memory is None else self.memory[rows])


class CaptionDecoder:
    """encode / start / step over a trained captioning model's layers, in the protocol
    of seq2seq/search.py: step(enc, state, prev) -> (log-probabilities (N, V),
    attention weights (N, L) or None, new state); state = ([(h, c)], None)."""

    def __init__(self, model):
        self.model = model
        self.arch = arch_of(model)
        get = model.get_layer
        self.embed, self.lstm, self.out = get("word_embed"), get("decoder"), get("next")
        if self.arch == "show-tell":
            self.image_embed = get("image_embed")
        else:
            self.init_h, self.init_c = get("init_h"), get("init_c")
        if self.arch == "attention":
            self.place_proj, self.attention, self.combine = get("place_proj"), get("attention"), get("combine")
            names = {layer.name for layer in model.layers}
            self.query_proj = get("query_proj") if "query_proj" in names else None

    def encode(self, features):
        features = np.asarray(features, np.float32)
        vec = features.mean(axis=1) if features.ndim == 3 else features
        memory = None
        if self.arch == "attention":
            memory = self.place_proj.forward(features)                            # (B, L, A)
        return Encoded(vec, memory)

    def start(self, enc):
        B = len(enc.vector)
        H = self.lstm.units
        if self.arch == "show-tell":
            zero = (np.zeros((B, H), np.float32), np.zeros((B, H), np.float32))
            x0 = self.image_embed.forward(enc.vector)                               # (B, E)
            _, state = self.lstm.step(np.ascontiguousarray(x0, np.float32), zero)
        else:
            state = (self.init_h.forward(enc.vector), self.init_c.forward(enc.vector))
        state = tuple(np.ascontiguousarray(s, np.float32) for s in state)
        return [state], None

    def step(self, enc, state, prev):
        (hc,), _ = state
        x = self.embed.forward(np.asarray(prev, np.int64)[:, None])[:, 0]           # (B, E)
        h, hc = self.lstm.step(np.ascontiguousarray(x, np.float32), hc)              # (B, H)
        weights = None
        z = h
        if self.arch == "attention":
            q = h[:, None]
            if self.query_proj is not None:
                q = self.query_proj.forward(q)
            ctx, w = self.attention.forward([q, enc.memory], return_attention_scores=True)
            z = self.combine.forward(np.concatenate([h[:, None], ctx], axis=-1))[:, 0]
            weights = w[:, 0]
        p = self.out.forward(z)                                                      # (B, V) softmax
        logp = np.log(np.maximum(p, 1e-30))
        logp[:, [PAD, UNK, BOS]] = -np.inf                # never written: padding, unknown, start
        return logp, weights, ([hc], None)


def describe_ids(model, features, beam=3, max_len=30, alpha=0.0, batch_size=64, return_attention=False):
    """Features (N, D) or (N, L, D) -> N id lists (EOS left out)."""
    from ..seq2seq import search
    dec = CaptionDecoder(model)
    out, maps = [], []
    for k in range(0, len(features), batch_size):
        chunk = features[k:k + batch_size]
        if beam and beam > 1:
            res = search.beam_search(dec, chunk, beam=beam, alpha=alpha, max_len=max_len,
                                     return_attention=return_attention)
        else:
            res = search.greedy(dec, chunk, max_len=max_len, return_attention=return_attention)
        ids, att = res if return_attention else (res, [None] * len(chunk))
        out.extend(ids)
        maps.extend(att)
    return (out, maps) if return_attention else out
