"""Decoding: greedy and beam search over the decoder's step function.

Both run a batch of source sentences (or images: apps/caption_model.py's
CaptionDecoder speaks the same protocol) at once and call `model.step(enc, state,
prev) -> (logits (N, V), attention (N, S), state)` once per output position,
N rows at a time (the compiled step kernels of the recurrent layers do the
recurrence).

Beam search keeps, for every sentence, the `beam` likeliest prefixes by their
summed log-probability. Each step every live prefix is extended by every
token and the best `beam` of the beam x V candidates survive; a prefix that
emitted EOS stays in the beam, finished, with its score frozen (it can only be
"extended" by padding at no cost). The search stops when every prefix of every
sentence is finished or at max_len tokens. The finished prefixes are then
ranked by their score divided by the length penalty of GNMT (Wu et al. 2016),

    lp(Y) = ((5 + |Y|) / 6) ** alpha          alpha = 0: the raw log-probability,

so that longer translations are not penalised just for having more factors
below 1.

Each step's selection (log-softmax of every row, the best `beam` of beam x V
candidates per sentence) is one compiled pass over the logits (topk.py): in
NumPy it was five passes and a float64 copy of the (N, V) array, a large part
of a step at batch 1.
"""
import numpy as np

from ..data.subwords import BOS, EOS, PAD
from .topk import select


def _max_len(src, max_len):
    return max_len if max_len is not None else int(2 * src.shape[1] + 10)


def greedy(model, src, max_len=None, return_attention=False):
    """src (B, S) ids -> list of B token lists (EOS removed); with return_attention
    also a list of (T_i, S) weight arrays."""
    src = np.asarray(src)
    B = src.shape[0]
    enc = model.encode(src)
    state = model.start(enc)
    prev = np.full(B, BOS, np.int64)
    done = np.zeros(B, bool)
    out, attn = [[] for _ in range(B)], [[] for _ in range(B)]
    for _ in range(_max_len(src, max_len)):
        logits, weights, state = model.step(enc, state, prev)
        prev = logits.argmax(axis=-1)
        for b in np.flatnonzero(~done):
            if prev[b] == EOS:
                done[b] = True
            else:
                out[b].append(int(prev[b]))
            if return_attention and weights is not None:
                attn[b].append(weights[b])
        if done.all():
            break
    if return_attention:
        return out, [np.array(a) if a else None for a in attn]
    return out


def length_penalty(length, alpha):
    return ((5.0 + length) / 6.0) ** alpha


def beam_search(model, src, beam=5, alpha=0.6, max_len=None, return_attention=False, n_best=False):
    """src (B, S) ids -> list of B token lists, the best translation of each sentence.

    n_best=True: instead, for each sentence every prefix left in the beam at the
    end, best first: a list of B lists of Hypothesis (tokens, log-probability,
    length-normalised score, finished, attention (len, S) or None)."""
    src = np.asarray(src)
    B, S = src.shape[:2]                 # (B, S) source ids, or (B, L, D) image places (captioning)
    k = int(beam)
    if k < 1:
        raise ValueError(f"beam must be at least 1; got {beam!r}")
    enc = model.encode(src).take(np.repeat(np.arange(B), k))                  # rows b*k .. b*k+k-1
    state = model.start(enc)
    T = _max_len(src, max_len)
    scores = np.full((B, k), -np.inf)
    scores[:, 0] = 0.0                                                        # one live prefix at first
    tokens = np.zeros((B, k, 0), np.int64)
    lengths = np.zeros((B, k), np.int64)
    finished = np.zeros((B, k), bool)
    prev = np.full(B * k, BOS, np.int64)
    attn = np.zeros((B, k, 0, S)) if return_attention else None
    base = (np.arange(B) * k)[:, None]                                         # (B, 1)
    new_scores = np.empty((B, k))
    origin, token = np.empty((B, k), np.int64), np.empty((B, k), np.int64)
    for _ in range(T):
        logits, weights, state = model.step(enc, state, prev)
        # the best k of the k x V extensions of each sentence's prefixes (topk.py, compiled): a
        # finished prefix continues only with padding, at no cost
        select(logits, scores, finished, PAD, new_scores, origin, token)
        scores = new_scores.copy()
        rows = (base + origin).reshape(-1)                                      # (B k,) the rows to keep
        was_finished = finished.reshape(-1)[rows].reshape(B, k)
        finished = was_finished | (token == EOS)
        lengths = lengths.reshape(-1)[rows].reshape(B, k) + ~was_finished
        tokens = np.concatenate([tokens.reshape(B * k, -1)[rows].reshape(B, k, -1), token[..., None]], 2)
        states, feed = state
        state = ([tuple(s[rows] for s in st) for st in states], None if feed is None else feed[rows])
        if attn is not None and weights is not None:
            w = weights.reshape(B, k, S)
            attn = np.concatenate([np.take_along_axis(attn, origin[..., None, None], 1),
                                   np.take_along_axis(w, origin[..., None], 1)[:, :, None]], 2)
        prev = token.reshape(-1)
        if finished.all():
            break
    # rank by the length-normalised score; a prefix cut at max_len counts as it is
    normed = scores / length_penalty(lengths, alpha)                            # (B, k)
    if n_best:
        return [_hypotheses(tokens[b], scores[b], normed[b], lengths[b], finished[b],
                            None if attn is None else attn[b]) for b in range(B)]
    best = np.argmax(normed, axis=1)
    out, maps = [], []
    for b in range(B):
        seq = tokens[b, best[b]]
        n = int(lengths[b, best[b]])
        words = [int(t) for t in seq[:n] if t not in (EOS, PAD)]
        out.append(words)
        if attn is not None:
            maps.append(attn[b, best[b], :len(words)])
    return (out, maps) if return_attention else out


class Hypothesis:
    """One prefix of the beam: tokens (EOS and padding removed), its summed
    log-probability, the length-normalised score it is ranked by, whether it
    ended in EOS, and its attention weights (len(tokens), S) when asked for."""
    __slots__ = ("tokens", "logprob", "score", "finished", "attention")

    def __init__(self, tokens, logprob, score, finished, attention=None):
        self.tokens, self.logprob, self.score = tokens, logprob, score
        self.finished, self.attention = finished, attention


def _hypotheses(tokens, scores, normed, lengths, finished, attn):
    """The live prefixes of one sentence's beam, best first (-inf ones left out)."""
    out = []
    for j in np.argsort(-normed, kind="stable"):
        if not np.isfinite(scores[j]):
            continue                                   # a slot never filled (tiny vocabulary)
        n = int(lengths[j])
        words = [int(t) for t in tokens[j, :n] if t not in (EOS, PAD)]
        out.append(Hypothesis(words, float(scores[j]), float(normed[j]), bool(finished[j]),
                              None if attn is None else attn[j, :len(words)]))
    return out


def translate_ids(model, src_seqs, beam=5, alpha=0.6, batch_size=32, max_len=None, return_attention=False):
    """Lists of source ids -> lists of output ids, in the given order (batched by length)."""
    from .graph import decoder_for
    from .training import pad
    model = decoder_for(model)                # an lk.Model runs through its step decoder
    order = sorted(range(len(src_seqs)), key=lambda i: len(src_seqs[i]))
    out, maps = [None] * len(src_seqs), [None] * len(src_seqs)
    for k in range(0, len(order), batch_size):
        idx = order[k:k + batch_size]
        src = pad([src_seqs[i] for i in idx])
        if beam and beam > 1:
            res = beam_search(model, src, beam, alpha, max_len, return_attention)
        else:
            res = greedy(model, src, max_len, return_attention)
        ids, att = res if return_attention else (res, [None] * len(idx))
        for j, i in enumerate(idx):
            out[i], maps[i] = ids[j], att[j]
    return (out, maps) if return_attention else out
