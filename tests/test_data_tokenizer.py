import json

import numpy as np
import pytest

from lstmkit.data.tokenizer import (OOV, PAD, CharTokenizer, Tokenizer, WordLMTokenizer,
                                    WordTokenizer, pad_sequences)


def test_vocab_cap_keeps_most_frequent_and_counts_pad_and_oov():
    tok = WordTokenizer(max_tokens=4).fit(["a a a b b c", "a b d"])
    assert tok.vocab == ["<pad>", "<oov>", "a", "b"]
    assert tok.vocab_size == 4
    assert tok.encode("a b c zzz") == [2, 3, OOV, OOV]


def test_word_split_lowercases_and_survives_mojibake():
    tok = WordTokenizer().fit(["Don't PANIC!", "cars_\ufffd_.no thank\u0381 you"])
    assert tok.split("Don't PANIC!") == ["don't", "panic", "!"]
    ids = tok.encode("cars_\ufffd_.no thank\u0381 you")
    assert all(isinstance(i, int) for i in ids) and len(ids) > 3


def test_decode_roundtrip_and_json():
    tok = WordTokenizer(max_tokens=100).fit(["the cat sat", "the dog"])
    back = Tokenizer.from_dict(json.loads(json.dumps(tok.to_dict())))
    assert back.encode("the cat") == tok.encode("the cat")
    assert back.decode(tok.encode("the dog")) == "the dog"


def test_char_tokenizer_chinese():
    tok = CharTokenizer().fit(["床前明月光，", "疑是地上霜。"])
    ids = tok.encode("明月光")
    assert len(ids) == 3 and OOV not in ids
    assert tok.decode(ids) == "明月光"
    assert tok.encode("猫") == [OOV]


def test_word_lm_keeps_newlines():
    tok = WordLMTokenizer().fit(["def f(x):\n    return x\n"])
    assert "\n" in tok.vocab
    assert tok.decode(tok.encode("return x\n")) == "return x\n"


@pytest.mark.parametrize("padding,truncating,expected", [
    ("pre", "pre", [[0, 0, 1, 2], [3, 4, 5, 6]]),
    ("post", "pre", [[1, 2, 0, 0], [3, 4, 5, 6]]),
    ("pre", "post", [[0, 0, 1, 2], [2, 3, 4, 5]]),
    ("post", "post", [[1, 2, 0, 0], [2, 3, 4, 5]]),
])
def test_pad_sequences_both_sides(padding, truncating, expected):
    out = pad_sequences([[1, 2], [2, 3, 4, 5, 6]], 4, padding=padding, truncating=truncating)
    assert out.tolist() == expected
    assert out.dtype == np.int64


def test_pad_sequences_empty_row_and_bad_option():
    assert pad_sequences([[]], 3).tolist() == [[PAD] * 3]
    with pytest.raises(ValueError, match="padding"):
        pad_sequences([[1]], 3, padding="middle")
