"""Scoring captions: BLEU-1..4 (sacrebleu, corpus level, every reference of an
image), the share of images whose caption names the right object, and the two
baselines every model is reported beside:

- most frequent: the training set's most frequent caption, for every image;
- nearest neighbour: the caption of the training image nearest in feature space
  (cosine similarity of the standardised features; places averaged).

"Names the right object" compares head nouns: the last word of a caption's first
noun phrase (the words after a leading article or possessive, up to the first
punctuation mark, preposition, conjunction or verb-like linking word), lower-cased,
a plural "s" dropped: "A great blue heron." -> heron, "A pair of pliers." -> pair,
"The letter Q." -> q, "baby bottle" -> bottle. Without a part-of-speech tagger
(NLTK's needs a download) this rule stands in for "the caption's nouns"; it is
applied the same way to the model and the baselines. A caption counts when its
head noun equals the head noun of any reference. English only (None otherwise).

CIDEr is not computed: the package that has it (pycocoevalcap 1.2, 104 MB with a
Java tokenizer) has had no release since 2020.
"""
import re

import numpy as np

from ..data.errors import DataError

ARTICLES = {"a", "an", "the", "this", "that", "these", "those", "our", "my", "your", "his", "her",
            "its", "their", "some", "two", "three", "one"}
STOPS = {"of", "in", "on", "with", "for", "from", "to", "at", "by", "as", "and", "or", "but",
         "called", "made", "used", "that", "which", "who", "is", "are", "was", "it", "can",
         "like", "into", "over", "under", "near", "without", "about", "while", "when"}
TOKEN_RE = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]", re.UNICODE)


def _sacrebleu():
    try:
        import sacrebleu
    except ImportError:
        raise DataError("BLEU needs the sacrebleu package: pip install 'lstmkit[caption]'") from None
    return sacrebleu


def head_noun(caption):
    """The head noun of the caption's first noun phrase (see the module docstring), or ''."""
    toks = [t for t in TOKEN_RE.findall(caption.lower())]
    i = 0
    while i < len(toks) and toks[i] in ARTICLES:
        i += 1
    phrase = []
    for t in toks[i:]:
        if not t[0].isalnum() or t in STOPS:
            break
        phrase.append(t)
    if not phrase:
        return ""
    w = phrase[-1]
    if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        w = w[:-1]
    return w


def object_share(hyps, refs):
    """Share of images whose hypothesis' head noun is the head noun of one of its references."""
    hits = 0
    for h, rs in zip(hyps, refs):
        noun = head_noun(h)
        hits += bool(noun) and noun in {head_noun(r) for r in rs}
    return hits / max(len(hyps), 1)


def bleu(hyps, refs, lang="en"):
    """{'bleu1'..'bleu4'}: corpus BLEU on lower-cased text (sacrebleu's 13a tokenizer;
    'zh' for Chinese), every reference of each image used."""
    _sacrebleu()
    from sacrebleu.metrics import BLEU
    n_ref = max(len(r) for r in refs)
    streams = [[r[k] if k < len(r) else r[0] for r in refs] for k in range(n_ref)]
    out = {}
    for n in range(1, 5):
        metric = BLEU(max_ngram_order=n, lowercase=True, tokenize="zh" if lang == "zh" else "13a")
        out[f"bleu{n}"] = round(float(metric.corpus_score(list(hyps), streams).score), 2)
    return out


def scores(hyps, refs, lang="en"):
    s = bleu(hyps, refs, lang)
    s["object_share"] = round(object_share(hyps, refs), 4) if lang == "en" else None
    s["median_words"] = float(np.median([len(h.split()) if lang != "zh" else len(h) for h in hyps]))
    return s


def most_frequent_caption(train_caps):
    """The most frequent training caption (compared lower-cased, without surrounding
    spaces); ties go to the one seen first."""
    counts, first = {}, {}
    for caps in train_caps:
        for c in caps:
            k = " ".join(c.lower().split())
            counts[k] = counts.get(k, 0) + 1
            first.setdefault(k, c)
    best = max(counts, key=lambda k: (counts[k], -list(first).index(k)))
    return first[best], counts[best]


def _unit_rows(f):
    f = f.mean(axis=1) if f.ndim == 3 else f
    return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)


def nearest_captions(train_feats, train_caps, test_feats):
    """For each test image, the first caption of the nearest training image (cosine)."""
    sim = _unit_rows(test_feats) @ _unit_rows(train_feats).T                  # (N_test, N_train)
    nn = sim.argmax(axis=1)
    return [train_caps[j][0] for j in nn]
