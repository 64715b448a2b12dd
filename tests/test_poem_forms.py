"""Poem forms and acrostics: the constrained sampler lays out every form by
construction, the free sampler lets the model do it (and has_form measures
it), and an acrostic's characters start the lines."""
import numpy as np
import pytest

import lstmkit as lk
from lstmkit.apps.sampling import FORMS, has_form, poem_lines, sample_poems
from lstmkit.apps.stepper import Stepper
from lstmkit.data.errors import DataError
from lstmkit.data.tokenizer import CharTokenizer

from poetry_fixture import POEMS

TEXT = "\n\n".join("\n".join(p) for _, _, p in POEMS) + "\n"


@pytest.fixture(scope="module")
def model_tok():
    tok = CharTokenizer().fit([TEXT])
    model = lk.Sequential([lk.Embedding(tok.vocab_size, 8, input_length=4), lk.LSTM(8, return_sequences=True),
                           lk.Dense(tok.vocab_size, activation="softmax")], seed=0)
    return model, tok


def test_line_parsing():
    assert poem_lines("床前明月光，疑是地上霜。\n舉頭望明月，低頭思故鄉。") == ["床前明月光", "疑是地上霜", "舉頭望明月",
                                                                  "低頭思故鄉"]
    assert has_form("床前明月光，疑是地上霜。\n舉頭望明月，低頭思故鄉。", 5, 4)
    assert not has_form("床前明月光，疑是地上霜。\n舉頭望明月，低頭思故。", 5, 4)     # a short line
    assert not has_form("床前明月光，疑是地上霜。", 5, 4)                            # too few lines
    assert not has_form("床前明月光，疑是地上霜。\n舉頭望明月，低頭思故鄉。\n床前明月光，", 5, 4)


@pytest.mark.parametrize("form", sorted(FORMS))
def test_constrained_forms_hold_by_construction(model_tok, form):
    model, tok = model_tok
    n_chars, n_lines = FORMS[form]
    poems = sample_poems(Stepper(model), tok, np.random.default_rng(1), 12, n_chars, n_lines, temperature=1.5)
    assert len(poems) == 12 and len(set(poems)) > 1
    for p in poems:
        assert has_form(p, n_chars, n_lines), p
        rows = p.split("\n")
        assert len(rows) == n_lines // 2
        assert all(r[n_chars] == "，" and r.endswith("。") for r in rows)


def test_acrostic(model_tok):
    model, tok = model_tok
    poems = sample_poems(Stepper(model), tok, np.random.default_rng(2), 5, 5, 4, acrostic="春夏秋冬")
    for p in poems:
        assert [l[0] for l in poem_lines(p)] == list("春夏秋冬") and has_form(p, 5, 4)
    free = sample_poems(Stepper(model), tok, np.random.default_rng(2), 5, 5, 4, acrostic="春夏秋冬",
                        constrained=False)
    for p in free:                                 # the model lays out the lines; each still starts right
        lines = poem_lines(p)
        assert [l[0] for l in lines] == list("春夏秋冬")[:len(lines)]
    with pytest.raises(DataError, match="has 3 characters; the poem has 4 lines"):
        sample_poems(Stepper(model), tok, np.random.default_rng(0), 1, 5, 4, acrostic="春夏秋")
    with pytest.raises(DataError, match="'龘' are not in the model's vocabulary"):
        sample_poems(Stepper(model), tok, np.random.default_rng(0), 1, 5, 4, acrostic="春夏秋龘")


def test_free_sampling_stops_and_is_measured(model_tok):
    model, tok = model_tok
    poems = sample_poems(Stepper(model), tok, np.random.default_rng(3), 20, 5, 4, constrained=False)
    assert len(poems) == 20
    assert all(len(p) <= 4 * (5 + 2) * 2 for p in poems)            # a runaway poem is cut
    share = np.mean([has_form(p, 5, 4) for p in poems])
    assert 0.0 <= share < 1.0                                        # an untrained model rarely keeps the form
