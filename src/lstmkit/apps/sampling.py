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
    return prime + tok.decode(list(iter_text_ids(stepper, tok, rng, prime, length, temperature, top_k)))


def iter_text_ids(stepper, tok, rng, prime="\n", length=300, temperature=1.0, top_k=None):
    """The ids of sample_text one at a time, as the model writes them (one
    step of the model per id): what a streaming client shows."""
    stepper.reset()
    prime_ids = encode_prime(tok, prime) or [tok.index.get("\n", OOV)]
    p = stepper.feed_many(prime_ids)
    for _ in range(length):
        i = draw(p, rng, temperature, top_k)
        yield i
        p = stepper.feed([i])[0]


def hanzi_mask(tok):
    """True for tokens that are single characters other than punctuation and whitespace."""
    return np.array([len(t) == 1 and t not in PUNCT and not t.isspace() and i > OOV
                     for i, t in enumerate(tok.vocab)])


# form name -> (characters per line, lines); a line (句) ends in '，' or '。',
# and two lines make one written row, as in the corpus
FORMS = {"jueju5": (5, 4), "jueju7": (7, 4), "lushi5": (5, 8), "lushi7": (7, 8)}
FORM_NAMES = {"jueju5": "五言绝句", "jueju7": "七言绝句", "lushi5": "五言律诗", "lushi7": "七言律诗"}
LINE_END = "，。？！；"


def layout(form=None, line_chars=5, verses=4):
    """(characters per line, lines) of a named form, or of line_chars and verses."""
    if form is None:
        return line_chars, verses
    if form not in FORMS:
        raise DataError(f"unknown poem form {form!r}; expected one of {', '.join(FORMS)}")
    return FORMS[form]


def poem_lines(text):
    """The lines of a poem: the runs of text between line-ending marks."""
    parts, cur = [], []
    for ch in text:
        if ch in LINE_END:
            parts.append("".join(cur).strip())
            cur = []
        elif not ch.isspace():
            cur.append(ch)
    if "".join(cur).strip():
        parts.append("".join(cur))
    return [p for p in parts if p]


def has_form(text, line_chars, verses):
    """Whether a poem has `verses` lines of exactly `line_chars` characters."""
    lines = poem_lines(text)
    return len(lines) == verses and all(len(l) == line_chars for l in lines)


def _check_marks(tok):
    for mark in ("，", "。", "\n"):
        if mark not in tok.index:
            raise DataError(f"the model's vocabulary has no {mark!r}; it was not trained on Tang poems")


def check_heads(tok, heads, verses, what="acrostic"):
    """The acrostic's characters, each in the model's vocabulary, one per line."""
    heads = "".join(heads.split())
    if len(heads) != verses:
        raise DataError(f"the {what} {heads!r} has {len(heads)} characters; the poem has {verses} lines "
                        f"(4 for jueju5/jueju7, 8 for lushi5/lushi7)")
    allowed = hanzi_mask(tok)
    missing = [c for c in heads if c not in tok.index or not allowed[tok.index[c]]]
    if missing:
        raise DataError(f"the {what} characters {''.join(missing)!r} are not in the model's vocabulary "
                        f"(a model of traditional script knows no simplified forms, and the other way round)")
    return heads


def sample_poem(stepper, tok, rng, line_chars=5, verses=4, prime="", temperature=0.8, top_k=None,
                acrostic=None):
    """One poem; see sample_poems."""
    return sample_poems(stepper, tok, rng, 1, line_chars, verses, prime, temperature, top_k, acrostic)[0]


def sample_poems(stepper, tok, rng, n, line_chars=5, verses=4, prime="", temperature=0.8, top_k=None,
                 acrostic=None, constrained=True):
    """n poems of `verses` lines of `line_chars` characters, drawn side by side
    (a batch of n through the model).

    constrained=True: the form holds by construction. The model picks every
    character among the Chinese characters of its vocabulary (punctuation
    excluded); the sampler writes '，' after odd and '。' after even lines, and
    a line break after each '。', as the corpus does, and feeds them back.
    constrained=False: the model writes the punctuation and line breaks too;
    the poem ends when it has written `verses` lines or a blank line, so its
    form is what the model learned (has_form measures it).
    acrostic: one character per line that the line must begin with (藏头诗);
    prime: the first characters of the first line."""
    p, prime, heads, allowed = _start_poems(stepper, tok, n, line_chars, verses, prime, acrostic)
    if constrained:
        return _constrained(stepper, tok, rng, n, p, line_chars, verses, prime, heads, allowed,
                            temperature, top_k)
    return _free(stepper, tok, rng, n, p, line_chars, verses, prime, heads, temperature, top_k)


def _start_poems(stepper, tok, n, line_chars, verses, prime, acrostic):
    """Checks the vocabulary and the acrostic, keeps the usable prime, and
    feeds the blank line poems follow. Returns (p (n, V), prime, heads, allowed)."""
    _check_marks(tok)
    allowed = hanzi_mask(tok)
    heads = check_heads(tok, acrostic, verses) if acrostic else None
    prime = "".join(c for c in prime if c in tok.index and allowed[tok.index[c]])[:line_chars]
    if heads:
        prime = heads[0] + prime[1:]
    stepper.reset()
    nl = tok.index["\n"]
    p = stepper.feed([nl] * n)
    p = stepper.feed([nl] * n)                           # (n, V): poems follow a blank line
    return p, prime, heads, allowed


def _forced(v, c, prime, heads):
    """The character the sampler imposes at line v, position c, or None."""
    if c == 0 and heads:
        return heads[v]
    if v == 0 and c < len(prime):
        return prime[c]
    return None


def _constrained(stepper, tok, rng, n, p, line_chars, verses, prime, heads, allowed, temperature, top_k):
    texts = [[] for _ in range(n)]
    for chars in constrained_steps(stepper, tok, rng, n, p, line_chars, verses, prime, heads, allowed,
                                   temperature, top_k):
        for t, ch in zip(texts, chars):
            t.append(ch)
    return ["".join(t) for t in texts]


def constrained_steps(stepper, tok, rng, n, p, line_chars, verses, prime, heads, allowed, temperature,
                      top_k):
    """The constrained sampler one step at a time: yields the n characters
    (one per poem) of each step, punctuation and line breaks included, before
    feeding them to the model."""
    for v in range(verses):
        for c in range(line_chars):
            forced = _forced(v, c, prime, heads)
            ids = [tok.index[forced] if forced else draw(p[r], rng, temperature, top_k, allowed)
                   for r in range(n)]
            yield [tok.vocab[i] for i in ids]
            p = stepper.feed(ids)
        marks = "，" if v % 2 == 0 else ("。\n" if v < verses - 1 else "。")
        for m in marks:
            yield [m] * n
            p = stepper.feed([tok.index[m]] * n)


def iter_poem(stepper, tok, rng, line_chars=5, verses=4, prime="", temperature=0.8, top_k=None,
              acrostic=None):
    """One constrained poem (see sample_poems), yielded character by character
    as the model writes it; "".join() of it is what sample_poem returns for
    the same random state."""
    p, prime, heads, allowed = _start_poems(stepper, tok, 1, line_chars, verses, prime, acrostic)
    for chars in constrained_steps(stepper, tok, rng, 1, p, line_chars, verses, prime, heads, allowed,
                                   temperature, top_k):
        yield chars[0]


def _free(stepper, tok, rng, n, p, line_chars, verses, prime, heads, temperature, top_k):
    """The model writes the layout; forced characters still start the lines."""
    texts = [[] for _ in range(n)]
    line = [0] * n                  # lines finished so far
    col = [0] * n                   # characters written in the current line
    done = [False] * n
    limit = verses * (line_chars + 2) * 2                # a runaway poem stops here
    nl = tok.index["\n"]
    for _ in range(limit):
        ids = []
        for r in range(n):
            if done[r]:
                ids.append(nl)
                continue
            i = draw(p[r], rng, temperature, top_k)
            t = tok.vocab[i]
            forced = _forced(line[r], col[r], prime, heads) if line[r] < verses else None
            if forced and t not in LINE_END and not t.isspace():
                i, t = tok.index[forced], forced
            if t == "\n" and texts[r] and texts[r][-1] == "\n":
                done[r] = True                       # a blank line: the poem is over
            elif t in LINE_END:
                line[r], col[r] = line[r] + 1, 0
                done[r] = line[r] >= verses
            elif not t.isspace():
                col[r] += 1
            texts[r].append(t)
            ids.append(i)
        if all(done):
            break
        p = stepper.feed(ids)
    return ["".join(t).strip() for t in texts]
