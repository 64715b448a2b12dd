"""The baseline a character language model has to beat: an interpolated
Kneser-Ney n-gram model from nltk.lm, on the same token ids as the network.

nltk's ``KneserNeyInterpolated`` recomputes each continuation count by a scan
over every n-gram of the next order, at every call: scoring a 180,000-character
held-out text would take days. ``CachedKneserNey`` keeps nltk's formulas and
its counts, and only computes those sums once (``_continuation_counts``, and
the number of distinct followers of a context). tests/test_ngram.py checks that
its scores equal stock nltk's and that they sum to one over the vocabulary.

Orders and the discount are chosen on the validation text; the test text is
scored once with the choice.
"""
import math
from collections import defaultdict

import numpy as np
from tqdm.auto import tqdm

from ..data.errors import DataError


def _nltk():
    try:
        import nltk.lm
        from nltk.lm.smoothing import KneserNey
    except ImportError:
        raise DataError("the n-gram baseline needs nltk: pip install nltk") from None
    return nltk.lm, KneserNey


class _Tables:
    """What nltk's KneserNey sums at every call, summed once for one counter.

    cont[k][(context, word)]: distinct u with (u, *context, word) counted,
    context of length k; total[k][context]: the sum over u of the distinct
    followers of (u, *context); nplus[context]: distinct followers of context."""

    def __init__(self, counts, order):
        self.cont, self.total = [], []
        for k in range(order - 1):                  # contexts of length k, from (k+2)-grams
            cont, total = defaultdict(int), defaultdict(int)
            for prefix, dist in counts[k + 2].items():
                ctx = prefix[1:]
                for word, c in dist.items():
                    if c > 0:
                        cont[ctx, word] += 1
                        total[ctx] += 1
            self.cont.append(dict(cont))
            self.total.append(dict(total))
        self.nplus = {}


def cached_kneser_ney_class():
    lm, KneserNey = _nltk()

    class CachedKneserNey(KneserNey):
        """nltk.lm.smoothing.KneserNey with its sums looked up, not recomputed."""

        tables = None

        def _continuation_counts(self, word, context=tuple()):
            k = len(context)
            return self.tables.cont[k].get((context, word), 0), self.tables.total[k].get(context, 0)

        def alpha_gamma(self, word, context):
            prefix_counts = self.counts[context]
            if len(context) + 1 == self._order:
                count, total = prefix_counts[word], prefix_counts.N()
            else:
                count, total = self._continuation_counts(word, context)
            if total == 0:
                # a context seen only at the very start of the text: nltk would divide
                # by zero here; treat it as unseen (alpha 0, gamma 1), as nltk does those
                return 0.0, 1.0
            nplus = self.tables.nplus.get(context)
            if nplus is None:
                nplus = self.tables.nplus[context] = sum(1 for c in prefix_counts.values() if c > 0)
            return max(count - self.discount, 0.0) / total, self.discount * nplus / total

    class Model(lm.models.InterpolatedLanguageModel):
        def __init__(self, order, discount, vocabulary, counter, tables):
            super().__init__(CachedKneserNey, order, vocabulary=vocabulary, counter=counter,
                             params={"discount": discount, "order": order})
            self.estimator.tables = tables

    return Model


class KneserNeyBaseline:
    """Counts n-grams of token ids once (up to max_order), then scores texts
    with interpolated Kneser-Ney of any order up to it and any discount."""

    def __init__(self, train_ids, max_order=4, log=None, verbose=1):
        lm, _ = _nltk()
        if max_order < 2:
            raise DataError(f"the n-gram order must be at least 2; got {max_order}")
        self.max_order = max_order
        ids = _keys(train_ids)
        self.vocab = lm.Vocabulary(ids, unk_cutoff=1)
        # nltk refuses to count past MAX_NGRAMS distinct n-grams (10 million), a
        # guard against unbounded memory; a few MB of text up to order 7 needs
        # more, about 250 bytes each (the counter's own advice is to raise it)
        import nltk.lm.counter
        nltk.lm.counter.MAX_NGRAMS = max(nltk.lm.counter.MAX_NGRAMS, 60_000_000)
        self.counter = lm.NgramCounter()
        N, step = len(ids), 100_000                    # counted in slices, for the progress bar
        for a in tqdm(range(0, N, step), disable=verbose != 1, desc=f"counting 1..{max_order}-grams",
                      unit="slice"):
            # the n-grams (n = 1..max_order) that start in this slice: nltk's everygrams, in pieces
            self.counter.update([(tuple(ids[i:i + n]) for i in range(a, min(a + step, N))
                                  for n in range(1, max_order + 1) if i + n <= N)])
        self._tables = {}
        self._model_cls = cached_kneser_ney_class()
        if log:
            log(f"n-gram counts: " + ", ".join(f"{n}-grams {self.counter[n].N() if n > 1 else self.counter.unigrams.N():,}"
                                                for n in range(1, max_order + 1)))

    def model(self, order, discount):
        if not 2 <= order <= self.max_order:
            raise DataError(f"order must be in 2..{self.max_order}; got {order}")
        if order not in self._tables:
            self._tables[order] = _Tables(self.counter, order)
        return self._model_cls(order, discount, self.vocab, self.counter, self._tables[order])

    def bits(self, ids, order, discount, verbose=0, desc="scoring"):
        """Mean bits per token of ids[1:] under the model, each token given the
        order-1 before it (fewer at the start): the tokens stream_bits scores."""
        m = self.model(order, discount)
        ids = _keys(ids)
        score = m.unmasked_score
        look = self.vocab.lookup
        total = 0.0
        for t in tqdm(range(1, len(ids)), disable=verbose != 1, desc=desc, unit="tok", mininterval=1.0):
            ctx = tuple(look(ids[max(0, t - order + 1):t]))
            p = score(look(ids[t]), ctx or None)
            if p <= 0:
                raise DataError(f"the {order}-gram model gives token {ids[t]} probability 0 "
                                f"(it never followed anything in the training text)")
            total -= math.log2(p)
        return total / (len(ids) - 1)


def _keys(ids):
    """Token ids as the strings nltk's Vocabulary looks up (it takes no ints)."""
    return [str(int(i)) for i in ids]


def choose_and_score(train_ids, val_ids, test_ids=None, orders=(2, 3, 4), discounts=(0.6, 0.75, 0.9, 1.0),
                     tune_tokens=40_000, log=print, verbose=1):
    """Fit counts on train_ids, pick (order, discount) by the bits per token of
    (the first tune_tokens of) val_ids, and score val_ids (and test_ids) with it.
    Returns a dict for metrics.json."""
    base = KneserNeyBaseline(train_ids, max(orders), log=log, verbose=verbose)
    tune = val_ids[:tune_tokens]
    grid = {}
    for order in orders:
        for d in discounts:
            grid[f"{order}/{d}"] = base.bits(tune, order, d)
    best = min(grid, key=grid.get)
    order, discount = int(best.split("/")[0]), float(best.split("/")[1])
    log(f"Kneser-Ney: order {order}, discount {discount} chosen on {len(tune):,} validation tokens "
        f"({grid[best]:.3f} bits)")
    out = {"library": "nltk.lm (KneserNeyInterpolated formulas, sums cached)", "order": order,
           "discount": discount, "grid_bits": grid, "tuned_on_tokens": len(tune),
           "val_bits": base.bits(val_ids, order, discount, verbose, "scoring validation")}
    if test_ids is not None:
        out["test_bits"] = base.bits(test_ids, order, discount, verbose, "scoring test")
    return out
