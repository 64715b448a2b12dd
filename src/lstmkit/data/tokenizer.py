"""Tokenizers: text -> integer ids and back, saved as JSON beside a model.

Id 0 is padding and id 1 stands for any token outside the vocabulary (OOV),
so an Embedding with mask_zero can skip padding and unseen words still count.
The vocabulary cap counts those two ids: ``max_tokens=10000`` gives ids 0..9999.
"""
import re
from collections import Counter

import numpy as np

PAD, OOV = 0, 1
PAD_TOKEN, OOV_TOKEN = "<pad>", "<oov>"

# words (letters, digits, apostrophes inside words) or single punctuation marks;
# \w is Unicode-aware, so accented words and mojibake split without errors
WORD_RE = re.compile(r"\w+(?:'\w+)*|[^\w\s]", re.UNICODE)
# like WORD_RE, but newlines are tokens too: a word-level language model needs
# them to lay out lines
WORD_LM_RE = re.compile(r"\w+(?:'\w+)*|[^\w\s]|\n", re.UNICODE)


class Tokenizer:
    """Base: a vocabulary list (index = id) and the reverse dict."""

    kind = None

    def __init__(self, vocab=None, max_tokens=None):
        if max_tokens is not None and max_tokens < 3:
            raise ValueError(f"max_tokens must be at least 3 (padding, OOV and one token); got {max_tokens}")
        self.max_tokens = max_tokens
        self.vocab = list(vocab) if vocab is not None else None
        self.index = None if vocab is None else {t: i for i, t in enumerate(self.vocab)}

    def split(self, text):
        raise NotImplementedError

    def join(self, tokens):
        raise NotImplementedError

    @property
    def vocab_size(self):
        return len(self.vocab)

    def fit(self, texts):
        counts = Counter()
        for text in texts:
            counts.update(self.split(text))
        # most frequent first; ties broken by the token so a fit is reproducible
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        keep = ranked if self.max_tokens is None else ranked[: self.max_tokens - 2]
        self.vocab = [PAD_TOKEN, OOV_TOKEN] + [t for t, _ in keep]
        self.index = {t: i for i, t in enumerate(self.vocab)}
        return self

    def _check_fitted(self):
        if self.vocab is None:
            raise RuntimeError("tokenizer is not fitted; call fit(texts) first")

    def encode(self, text):
        self._check_fitted()
        get = self.index.get
        return [get(t, OOV) for t in self.split(text)]

    def decode(self, ids):
        self._check_fitted()
        return self.join(self.vocab[i] if 0 <= i < len(self.vocab) else OOV_TOKEN
                         for i in ids if i != PAD)

    def to_dict(self):
        self._check_fitted()
        return {"kind": self.kind, "max_tokens": self.max_tokens, "vocab": self.vocab}

    @staticmethod
    def from_dict(d):
        cls = TOKENIZERS.get(d.get("kind"))
        if cls is None:
            raise ValueError(f"unknown tokenizer kind {d.get('kind')!r}; expected one of {sorted(TOKENIZERS)}")
        return cls(vocab=d["vocab"], max_tokens=d.get("max_tokens"))


class WordTokenizer(Tokenizer):
    """Lower-cased words and punctuation marks, as the seeds' IMDB model."""

    kind = "word"

    def __init__(self, vocab=None, max_tokens=10000, lower=True):
        super().__init__(vocab, max_tokens)
        self.lower = lower

    def split(self, text):
        return WORD_RE.findall(text.lower() if self.lower else text)

    def join(self, tokens):
        return " ".join(tokens)


class WordLMTokenizer(WordTokenizer):
    """Words for a language model: case kept, newlines kept as tokens."""

    kind = "word_lm"

    def __init__(self, vocab=None, max_tokens=10000):
        super().__init__(vocab, max_tokens, lower=False)

    def split(self, text):
        return WORD_LM_RE.findall(text)

    def join(self, tokens):
        out = []
        for t in tokens:
            if out and t != "\n" and out[-1] != "\n" and (t[0].isalnum() or t[0] == "_"):
                out.append(" ")
            out.append(t)
        return "".join(out)


class CharTokenizer(Tokenizer):
    """One id per character (Chinese characters included)."""

    kind = "char"

    def __init__(self, vocab=None, max_tokens=None):
        super().__init__(vocab, max_tokens)

    def split(self, text):
        return list(text)

    def join(self, tokens):
        return "".join(tokens)


TOKENIZERS = {c.kind: c for c in (WordTokenizer, WordLMTokenizer, CharTokenizer)}


def pad_sequences(seqs, maxlen, padding="pre", truncating="pre", value=PAD, dtype=np.int64):
    """Lists of ids -> (N, maxlen) array.

    truncating="pre" drops the start of a long sequence (keeps its end, which a
    last-state classifier reads last); padding="pre" puts the padding first.
    """
    for name, v in (("padding", padding), ("truncating", truncating)):
        if v not in ("pre", "post"):
            raise ValueError(f"{name} must be 'pre' or 'post'; got {v!r}")
    if maxlen < 1:
        raise ValueError(f"maxlen must be at least 1; got {maxlen}")
    out = np.full((len(seqs), maxlen), value, dtype=dtype)                       # (N, maxlen)
    for row, s in enumerate(seqs):
        s = list(s)
        if len(s) > maxlen:
            s = s[-maxlen:] if truncating == "pre" else s[:maxlen]
        if not s:
            continue
        if padding == "pre":
            out[row, maxlen - len(s):] = s
        else:
            out[row, : len(s)] = s
    return out
