"""Parallel text for translation: the Ding reader, the user's TSV/CSV, splits
by source sentence, and the tokenizers (subword, word, char) with their files."""
import os

import numpy as np
import pytest

from lstmkit.data import parallel, subwords
from lstmkit.data.errors import DataError

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
PAIRS = os.path.join(HERE, "pairs_de_en.tsv")
DING = os.path.join(HERE, "ding_sample.txt")


def test_ding_keeps_aligned_whole_sentences():
    with open(DING, encoding="utf-8") as f:
        pairs = parallel.parse_ding(f.read())
    assert pairs == [
        ("Das Haus ist alt.", "The house is old."),
        ("Es regnet heute sehr stark.", "It is raining very hard today."),     # first alternative, tags gone
        ("Der Zug kommt um neun Uhr an.", "The train arrives at nine o'clock."),
        ("Wir nehmen den Zug.", "We take the train."),
        ("Mach bitte die Tür zu!", "Please close the door!"),
        ("Hat der Hund Hunger?", "Is the dog hungry?"),                        # once, though listed twice
    ]
    # parts that do not line up (Buch: 2 vs 3), a slash variant (Fenster), optional words
    # (Garten) and a side that is no sentence (Katze: lower case) are left out
    with open(DING, encoding="utf-8") as f:
        variants = parallel.parse_ding(f.read(), keep_variants=True)
    assert ("Das Fenster ist offen/auf.", "The window is open.") in variants
    assert len(variants) == len(pairs) + 2


def test_ding_path_errors(tmp_path):
    with pytest.raises(DataError, match="trans-de-en"):
        parallel.load_ding(tmp_path / "missing")
    root = tmp_path / "pkg" / "usr" / "share" / "trans"
    root.mkdir(parents=True)
    (root / "de-en").write_text("# nothing\nHaus {n} :: house\n", encoding="utf-8")
    with pytest.raises(DataError, match="no sentence pairs"):
        parallel.load_ding(tmp_path / "pkg")


def test_tatoeba_layout_and_direction():
    p = parallel.read_pairs(PAIRS)
    assert len(p) == 300 and p.src[0] == "You look for the dog today." and p.tgt[0] == "Du suchst den Hund heute."
    r = parallel.read_pairs(PAIRS, src_col=1, tgt_col=0)
    assert r.src[0] == p.tgt[0] and r.tgt[0] == p.src[0]


def test_named_columns_csv_any_script(tmp_path):
    f = tmp_path / "zh.csv"
    f.write_text('id,english,chinese\n1,"Hello, world.",你好，世界。\n2,I am here.,我在这里。\n', encoding="utf-8")
    p = parallel.read_pairs(f, src_col="chinese", tgt_col="english")
    assert p.src == ["你好，世界。", "我在这里。"] and p.tgt == ["Hello, world.", "I am here."]
    assert (p.src_lang, p.tgt_lang) == ("chinese", "english")
    with pytest.raises(DataError, match=r"line 1: no column 'french'; the header has \['id', 'english', 'chinese'\]"):
        parallel.read_pairs(f, src_col="french", tgt_col="english")


@pytest.mark.parametrize("text, message", [
    ("only one column\nanother line\n", r"line 1: 1 column; expected at least 2"),
    ("a\tb\n\tthe target\n", r"line 2: the source sentence is empty"),
    ("a\tb\nc\t \n", r"line 2: the target sentence is empty"),
    ("", r"file is empty"),
])
def test_bad_pair_files(tmp_path, text, message):
    f = tmp_path / "bad.tsv"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        parallel.read_pairs(f)


def test_splits_by_source_seeded():
    p = parallel.read_pairs(PAIRS, 1, 0)
    p = parallel.Pairs(p.src + p.src[:20], p.tgt + [t.upper() for t in p.tgt[:20]], "x")   # 20 sources twice
    a = parallel.split_pairs(p, 0.1, 0.1, seed=3)
    b = parallel.split_pairs(p, 0.1, 0.1, seed=3)
    c = parallel.split_pairs(p, 0.1, 0.1, seed=4)
    assert a["test"].src == b["test"].src and a["test"].src != c["test"].src
    assert sum(len(v) for v in a.values()) == len(p)
    train = set(a["train"].src)
    assert not train & set(a["test"].src) and not train & set(a["val"].src)
    assert not set(a["val"].src) & set(a["test"].src)


def test_split_files_roundtrip(tmp_path):
    p = parallel.read_pairs(PAIRS, 1, 0)
    parallel.write_split(tmp_path / "s.tsv", p)
    q = parallel.read_split(tmp_path / "s.tsv")
    assert q.src == p.src and q.tgt == p.tgt


@pytest.mark.parametrize("kind", subwords.KINDS)
def test_codecs_roundtrip_and_files(tmp_path, kind):
    p = parallel.read_pairs(PAIRS, 1, 0)
    codec = subwords.fit_codec(kind, p.src, vocab_size=60)
    text = p.src[5]
    ids = codec.encode(text)
    assert ids and min(ids) > subwords.EOS or subwords.UNK in ids
    assert codec.decode(ids + [subwords.EOS, subwords.PAD]) == text
    spec = codec.save(str(tmp_path), "src")
    assert os.path.exists(tmp_path / spec["file"])
    again = subwords.load_codec(str(tmp_path), spec)
    assert again.encode(text) == ids and again.vocab_size == codec.vocab_size
    assert len(codec.pieces(text)) == len(ids)


def test_chinese_by_characters_and_subwords():
    texts = ["我们在这里。", "你好，世界。", "我爱北京。", "这是一本书。"] * 5
    char = subwords.fit_codec("char", texts)
    assert char.pieces("我们") == ["我", "们"] and char.decode(char.encode("我爱书。")) == "我爱书。"
    sub = subwords.fit_codec("subword", texts, vocab_size=30)
    assert sub.decode(sub.encode("我爱北京。")) == "我爱北京。"


def test_unknown_script_and_empty_line():
    codec = subwords.fit_codec("word", parallel.read_pairs(PAIRS, 1, 0).src)
    codec.check_text("Ich kaufe ein Auto.")                       # unknown words are fine
    with pytest.raises(DataError, match=r"line 3: 4 of 4 characters are unknown .*script CYRILLIC.*LATIN"):
        codec.check_text("Мама", where="line 3")
    with pytest.raises(DataError, match="line 2: empty line"):
        codec.check_text("  ", where="line 2")


def test_bad_tokenizer_files(tmp_path):
    (tmp_path / "src.vocab.json").write_text('{"vocab": ["a", "b"]}', encoding="utf-8")
    with pytest.raises(DataError, match="not a vocabulary file"):
        subwords.load_codec(str(tmp_path), {"kind": "word", "file": "src.vocab.json"})
    with pytest.raises(DataError, match="tokenizer file missing"):
        subwords.load_codec(str(tmp_path), {"kind": "subword", "file": "src.spm.model"})
    (tmp_path / "x.model").write_bytes(b"\x80\x04 not a model")
    with pytest.raises(DataError, match="not a SentencePiece model"):
        subwords.load_codec(str(tmp_path), {"kind": "subword", "file": "x.model"})
