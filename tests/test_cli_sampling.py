"""The sampling machinery behind `lstmkit generate sample`: the step-by-step
runner agrees with the whole-sequence forward, and the draw rules hold."""
import numpy as np
import pytest

import lstmkit as lk
from lstmkit.apps.sampling import draw, hanzi_mask, sample_poem
from lstmkit.apps.stepper import Stepper
from lstmkit.data.errors import DataError
from lstmkit.data.tokenizer import CharTokenizer


@pytest.mark.parametrize("cell", ["LSTM", "GRU", "SimpleRNN"])
def test_stepper_matches_whole_sequence_forward(cell):
    model = lk.Sequential([lk.Embedding(12, 5, input_length=7), getattr(lk, cell)(6, return_sequences=True),
                           getattr(lk, cell)(4, return_sequences=True), lk.Dense(12, activation="softmax")],
                          seed=3)
    ids = np.array([[3, 1, 4, 1, 5, 9, 2], [6, 5, 3, 5, 8, 9, 7]])
    whole = model.predict(ids)                                                  # (2, 7, 12)
    stepper = Stepper(model)
    steps = np.stack([stepper.feed(ids[:, t]) for t in range(7)], axis=1)      # (2, 7, 12)
    assert np.allclose(steps, whole, atol=1e-5)
    stepper.reset()
    assert np.allclose(stepper.feed(ids[:, 0]), whole[:, 0], atol=1e-5)


def test_bidirectional_cannot_step():
    model = lk.Sequential([lk.Embedding(5, 2, input_length=3), lk.Bidirectional(lk.LSTM(2)), lk.Dense(5)])
    with pytest.raises(DataError, match="bidirectional"):
        Stepper(model)


def test_draw_respects_top_k_temperature_and_allowed():
    rng = np.random.default_rng(0)
    p = np.array([0.3, 0.3, 0.25, 0.1, 0.05])           # ids 0 (padding) and 1 (OOV) are never drawn
    got = {draw(p, rng, top_k=1) for _ in range(20)}
    assert got == {2}
    got = [draw(p, rng, temperature=0.05) for _ in range(50)]
    assert set(got) == {2}                              # a cold temperature picks the likeliest
    got = {draw(p, rng, temperature=5.0) for _ in range(300)}
    assert got == {2, 3, 4}
    allowed = np.array([True, True, False, False, True])
    assert {draw(p, rng, allowed=allowed) for _ in range(20)} == {4}


def test_poem_layout_from_an_untrained_model():
    tok = CharTokenizer().fit(["床前明月光，疑是地上霜。\n举头望明月，低头思故乡。\n\n"])
    model = lk.Sequential([lk.Embedding(tok.vocab_size, 4, input_length=5), lk.LSTM(4, return_sequences=True),
                           lk.Dense(tok.vocab_size, activation="softmax")], seed=0)
    poem = sample_poem(Stepper(model), tok, np.random.default_rng(0), line_chars=7, verses=4, prime="月")
    lines = poem.split("\n")
    assert len(lines) == 2 and poem.startswith("月")
    for line in lines:
        assert len(line) == 16 and line[7] == "，" and line[15] == "。"
        assert all(hanzi_mask(tok)[tok.index[c]] for c in line[:7] + line[8:15])
