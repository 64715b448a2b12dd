"""summary() prints Keras's table and parameter counts."""
import re

import pytest

import lstmkit as lk


def summary_rows(model, capsys):
    model.summary()
    text = capsys.readouterr().out
    rows = {}
    for line in text.splitlines():
        m = re.match(r"(\S+) \((\w+)\)\s+(\(.*?\))\s+([\d,]+)$", line)
        if m:
            rows[m.group(2)] = (m.group(3), m.group(4))
    total = re.search(r"^Total params: ([\d,]+)$", text, re.M).group(1)
    return rows, total, text


def test_seed_model_summary_matches_keras(capsys):
    model = lk.Sequential([
        lk.Embedding(10000, 32, input_length=500),
        lk.LSTM(32, return_sequences=False),
        lk.Dense(1, activation="sigmoid"),
    ])
    rows, total, text = summary_rows(model, capsys)
    assert rows["Embedding"] == ("(None, 500, 32)", "320,000")
    assert rows["LSTM"] == ("(None, 32)", "8,320")
    assert rows["Dense"] == ("(None, 1)", "33")
    assert total == "328,353"
    assert "Trainable params: 328,353" in text and "Non-trainable params: 0" in text
    assert "Layer (type)" in text and "Output Shape" in text and "Param #" in text


@pytest.mark.parametrize("make_layer, name, count", [
    (lambda: lk.GRU(32), "GRU", "6,336"),                 # reset_after=True: two biases, as Keras
    (lambda: lk.SimpleRNN(32), "SimpleRNN", "2,080"),
    (lambda: lk.Bidirectional(lk.LSTM(32)), "Bidirectional", "16,640"),
])
def test_recurrent_counts(capsys, make_layer, name, count):
    model = lk.Sequential([lk.Embedding(100, 32, input_length=20), make_layer(), lk.Dense(1)])
    rows, _, _ = summary_rows(model, capsys)
    assert rows[name][1] == count
    width = 64 if name == "Bidirectional" else 32
    assert rows[name][0] == f"(None, {width})"


def test_stacked_lstms_and_lazy_build(capsys):
    model = lk.Sequential()
    model.add(lk.LSTM(32, return_sequences=True, input_shape=(None, 32)))
    model.add(lk.LSTM(16))
    model.add(lk.Dense(10, activation="softmax"))
    rows, total, _ = summary_rows(model, capsys)
    # LSTM(16) on 32 inputs: 4 * (32*16 + 16*16 + 16) = 3,136; Dense: 16*10 + 10 = 170
    assert total == f"{8320 + 3136 + 170:,}"
    lazy = lk.Sequential([lk.LSTM(8), lk.Dense(1)])
    with pytest.raises(ValueError, match="not built"):
        lazy.summary()
    import numpy as np
    lazy.predict(np.zeros((2, 5, 3), np.float32))           # builds from the first input
    rows, total, _ = summary_rows(lazy, capsys)
    assert rows["LSTM"] == ("(None, 8)", "384") and total == "393"


def test_frozen_layer_counts_and_stays_put(capsys):
    import numpy as np
    model = lk.Sequential([lk.Embedding(10000, 32, input_length=5, trainable=False), lk.LSTM(32),
                           lk.Dense(1, activation="sigmoid")], seed=0)
    _, total, text = summary_rows(model, capsys)
    assert "Trainable params: 8,353" in text and "Non-trainable params: 320,000" in text
    before = model.layers[0].params["embeddings"].copy()
    lstm_before = model.layers[1].params["W_x"].copy()
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(np.ones((8, 5), int), np.ones(8), epochs=1, verbose=0)
    np.testing.assert_array_equal(model.layers[0].params["embeddings"], before)
    assert not np.array_equal(model.layers[1].params["W_x"], lstm_before)
