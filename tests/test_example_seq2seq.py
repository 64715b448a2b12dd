"""examples/seq2seq/seq2seq.py runs end to end -- training model, save, load,
inference encoder and decoder from the loaded model's layers, greedy decoding,
scores beside the retrieval baseline -- with and without attention. Generated
pairs stand in for the Ding dictionary (unit tests use no downloaded data)."""
import json

import numpy as np
import pytest

from example_scripts import load_example as _load


def load_example():
    return _load("seq2seq/seq2seq.py", "seq2seq_example")


def fake_pairs(max_chars):
    rng = np.random.default_rng(0)
    words = ["Er", "sie", "geht", "kommt", "nach", "Hause", "heute", "bald"]
    english = {"Er": "He", "sie": "she", "geht": "goes", "kommt": "comes", "nach": "to",
               "Hause": "home", "heute": "today", "bald": "soon"}
    pairs = []
    for _ in range(80):
        ws = [words[0]] + list(rng.choice(words[2:], 3))
        pairs.append((" ".join(ws) + ".", " ".join(english[w] for w in ws) + "."))
    return pairs


@pytest.mark.parametrize("attention", [False, True])
def test_seq2seq_example_end_to_end(tmp_path, monkeypatch, attention):
    example = load_example()
    monkeypatch.setattr(example, "ding_pairs", fake_pairs)
    args = ["--pairs", "80", "--epochs", "2", "--latent", "8", "--batch", "16", "--eval", "5",
            "--out", str(tmp_path)] + (["--attention"] if attention else [])
    result = example.main(args)
    assert result["held_out_scored"] == 5 and result["epochs"] == 2
    assert 0 <= result["seq2seq"]["char_error_rate"] and 0 <= result["retrieval_baseline"]["exact"] <= 1
    assert json.loads((tmp_path / "results.json").read_text())["attention"] == attention
    names = {p.name for p in tmp_path.iterdir()}
    assert {"history.png", "samples.txt", "s2s_model.lstmkit"} <= names
    assert ("attention.png" in names) == attention


def test_edit_distance_and_scores():
    example = load_example()
    assert example.edit_distance("kitten", "sitting") == 3
    s = example.scores(["abc", "xyz"], ["abc", "xya"])
    assert s == {"char_error_rate": 1 / 6, "exact": 0.5}
