"""The Kneser-Ney baseline: nltk.lm's formulas with its sums cached must give
nltk's own probabilities, and a distribution over the vocabulary."""
import math

import numpy as np
import pytest

from lstmkit.apps.ngram import KneserNeyBaseline, choose_and_score

TEXT = ("床前明月光，疑是地上霜。\n舉頭望明月，低頭思故鄉。\n\n白日依山盡，黃河入海流。\n"
        "欲窮千里目，更上一層樓。\n\n") * 3


def _ids(text):
    table = {c: i + 2 for i, c in enumerate(sorted(set(text)))}
    return [table[c] for c in text], table


@pytest.mark.parametrize("order", [2, 3, 4])
def test_same_scores_as_stock_nltk_and_normalised(order):
    from nltk.lm import KneserNeyInterpolated
    ids, table = _ids(TEXT)
    base = KneserNeyBaseline(ids, max_order=4, verbose=0)
    ours = base.model(order, 0.75)
    keys = [str(i) for i in ids]
    stock = KneserNeyInterpolated(order, discount=0.75)
    stock.fit([[tuple(keys[i:i + n]) for i in range(len(keys)) for n in range(1, order + 1)
                if i + n <= len(keys)]], keys)
    vocab = sorted(set(keys))
    contexts = [(), tuple(keys[3:3 + order - 1]), tuple(keys[10:10 + order - 1]),
                (str(table["月"]),) * (order - 1), (str(table["黃"]), str(table["樓"]), str(table["光"]))[:order - 1]]
    for ctx in contexts:
        got = [ours.unmasked_score(w, ctx or None) for w in vocab]
        want = [stock.unmasked_score(w, ctx or None) for w in vocab]
        assert got == pytest.approx(want, rel=1e-12, abs=1e-15)
        assert sum(got) == pytest.approx(1.0, abs=1e-9)


def test_bits_fall_with_the_order_on_repeated_text():
    ids, _ = _ids(TEXT)
    base = KneserNeyBaseline(ids, max_order=4, verbose=0)
    held = ids[: len(ids) // 3]                           # seen text: longer contexts must help
    bits = [base.bits(held, k, 0.75) for k in (2, 3, 4)]
    assert bits[0] > bits[1] > bits[2] > 0
    uniform = math.log2(len(set(ids)))
    assert bits[0] < uniform


def test_choice_on_validation_then_test():
    ids, _ = _ids(TEXT)
    out = choose_and_score(ids, ids[:60], ids[60:120], orders=(2, 3), discounts=(0.5, 0.9), log=lambda s: None,
                           verbose=0)
    assert set(out["grid_bits"]) == {"2/0.5", "2/0.9", "3/0.5", "3/0.9"}
    assert out["grid_bits"][f"{out['order']}/{out['discount']}"] == min(out["grid_bits"].values())
    assert 0 < out["test_bits"] < 8 and out["val_bits"] == pytest.approx(
        out["grid_bits"][f"{out['order']}/{out['discount']}"])
