"""The chinese-poetry reader: layout, cleaning, de-duplication, the split by
poem, simplified script, and errors that name the file."""
import json

import pytest

from lstmkit.data.chinese_poetry import clean_lines, find_tang_folder, load_poems, split_poems, to_simplified
from lstmkit.data.errors import DataError

from poetry_fixture import POEMS, write_poetry_folder


def test_reads_cleans_and_deduplicates(tmp_path):
    logged = []
    poems = load_poems(write_poetry_folder(tmp_path / "quantangshi"), log=logged.append)
    texts = ["".join(p.lines) for p in poems]
    assert texts[:len(POEMS)] == ["".join(p) for _, _, p in POEMS]          # poet.tang.0 before .1000
    assert poems[len(POEMS)].lines == ["秦川雄帝宅，函谷壯皇居。", "綺殿千尋起，離宮百雉餘。"]
    assert poems[-1].lines == ["青山橫北郭，白水遶東城。"]                    # the note and its '。' gone
    assert not any("□" in t or "（" in t or "〖" in t for t in texts)
    assert len(poems) == len(POEMS) + 2 and texts.count("".join(POEMS[0][2])) == 1
    assert "16 poems read from 2 file(s); 1 left out" in logged[0] and "1 repeats" in logged[0]


def test_clean_lines_rules():
    assert clean_lines(["白日（一作「月」（注））依山盡，黃河入海流。"]) == ["白日依山盡，黃河入海流。"]
    assert clean_lines(["{艹/尔}山，水。"]) is None
    assert clean_lines(["abc，def。"]) is None


def test_split_by_poem_is_disjoint_repeatable_and_shares_no_line(tmp_path):
    poems = load_poems(write_poetry_folder(tmp_path / "q"))
    tr, va, te = split_poems(poems, 0.2, 0.2, seed=3)
    assert len(tr) + len(va) + len(te) == len(poems) and va and te
    key = lambda ps: {"".join(p.lines) for p in ps}
    assert not (key(tr) & key(va)) and not (key(tr) & key(te)) and not (key(va) & key(te))
    assert [p.lines for p in split_poems(poems, 0.2, 0.2, seed=3)[1]] == [p.lines for p in va]
    # a held-out poem that repeats a training line moves to training
    dup = type(poems[0])("x", "y", [poems[0].lines[0], "新句新句新，新句新句新。"])
    for seed in range(8):
        tr, va, te = split_poems(poems + [dup], 0.3, 0.3, seed=seed)
        seen = {l for p in tr for l in p.lines}
        assert not any(l in seen for p in va + te for l in p.lines)


def test_simplified_script_through_opencc():
    from lstmkit.data.tang import Poem
    out = to_simplified([Poem("登鸛雀樓", "王之渙", ["白日依山盡，黃河入海流。"])])
    assert out[0].lines == ["白日依山尽，黄河入海流。"] and out[0].title == "登鹳雀楼"


def test_errors_name_the_file(tmp_path):
    bad = tmp_path / "poet.tang.0.json"
    bad.write_text('[{"paragraphs": ["a"]},\n {"paragraphs": ]', encoding="utf-8")
    with pytest.raises(DataError, match=r"poet\.tang\.0\.json, line 2, column \d+: not valid JSON"):
        load_poems(tmp_path)
    bad.write_text(json.dumps([{"title": "x"}]), encoding="utf-8")
    with pytest.raises(DataError, match="poem 0 has no 'paragraphs'"):
        load_poems(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no poet.tang.N.json files"):
        load_poems(tmp_path / "empty")
    with pytest.raises(DataError, match="no such file or folder"):
        load_poems(tmp_path / "absent")
    with pytest.raises(DataError, match="no poet.tang.0.json below"):
        find_tang_folder(tmp_path / "empty")
