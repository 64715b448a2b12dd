"""Drawing the next token: temperature, top-k, and a constrained sampler that
lays out Tang poems in lines of 5 or 7 characters."""
import numpy as np

from ..data.errors import DataError
from ..data.tang import PUNCT
from ..data.tokenizer import OOV, PAD


def draw(p, rng, temperature=1.0, top_k=None, allowed=None):
    """One id from probabilities p (V,). temperature < 1 sharpens, > 1 flattens;
    top_k keeps the k likeliest; allowed (V,) bool restricts the choice."""
    logp = np.log(np.maximum(np.asarray(p, np.float64), 1e-30)) / temperature      # (V,)
    logp[[PAD, OOV]] = -np.inf                       # never emit padding or "unknown"
    if allowed is not None:
        logp[~allowed] = -np.inf
    if top_k:
        k = min(top_k, np.isfinite(logp).sum())
        cut = np.partition(logp, -k)[-k]
        logp[logp < cut] = -np.inf
    if not np.isfinite(logp).any():
        raise DataError("nothing left to sample from (every token excluded)")
    q = np.exp(logp - logp[np.isfinite(logp)].max())
    return int(rng.choice(len(q), p=q / q.sum()))


def encode_prime(tok, prime):
    ids = tok.encode(prime)
    return [i for i in ids if i != PAD]


def sample_text(stepper, tok, rng, prime="\n", length=300, temperature=1.0, top_k=None):
    stepper.reset()
    prime_ids = encode_prime(tok, prime) or [tok.index.get("\n", OOV)]
    p = stepper.feed_many(prime_ids)
    out = []
    for _ in range(length):
        i = draw(p, rng, temperature, top_k)
        out.append(i)
        p = stepper.feed([i])[0]
    return prime + tok.decode(out)


def hanzi_mask(tok):
    """True for tokens that are single characters other than punctuation and whitespace."""
    return np.array([len(t) == 1 and t not in PUNCT and not t.isspace() and i > OOV
                     for i, t in enumerate(tok.vocab)])


def sample_poem(stepper, tok, rng, line_chars=5, verses=4, prime="", temperature=0.8, top_k=None):
    """A poem of `verses` half-lines of `line_chars` characters: the model picks
    the characters, the sampler puts '，' after odd and '。' after even half-lines,
    and a line break after each '。', as in the corpus."""
    for mark in ("，", "。", "\n"):
        if mark not in tok.index:
            raise DataError(f"the model's vocabulary has no {mark!r}; it was not trained on Tang poems")
    allowed = hanzi_mask(tok)
    prime = "".join(c for c in prime if c in tok.index and allowed[tok.index[c]])[:line_chars]
    stepper.reset()
    p = stepper.feed_many([tok.index["\n"], tok.index["\n"]])    # poems follow a blank line
    text = []
    for v in range(verses):
        for c in range(line_chars):
            if v == 0 and c < len(prime):
                i = tok.index[prime[c]]
            else:
                i = draw(p, rng, temperature, top_k, allowed)
            text.append(tok.vocab[i])
            p = stepper.feed([i])[0]
        marks = "，" if v % 2 == 0 else ("。\n" if v < verses - 1 else "。")
        for m in marks:
            text.append(m)
            p = stepper.feed([tok.index[m]])[0]
    return "".join(text)
