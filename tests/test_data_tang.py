from lstmkit.data.tang import corpus_text, is_regular, load_tang, parse_tang
from lstmkit.data.errors import DataError

import pytest

SAMPLE = (
    "\x1b[32m《静夜思》\x1b[m\n\x1b[33m作者：李白\x1b[m\n床前明月光，疑是地上霜。\n举头望明月，低头思故乡。\n%\n"
    "\x1b[32m《登鹳雀楼》\x1b[m\n\x1b[33m作者：王之涣\x1b[m\n白日依山尽，黄河入海流。\n%\n"
    "\x1b[32m《七言》\x1b[m\n\x1b[33m作者：某\x1b[m\n两个黄鹂鸣翠柳，一行白鹭上青天。\n%\n"
)


def test_parse_strips_colour_codes_titles_and_authors(tmp_path):
    f = tmp_path / "tang300"
    f.write_text(SAMPLE, encoding="utf-8")
    poems = load_tang(str(f))
    assert [p.title for p in poems] == ["静夜思", "登鹳雀楼", "七言"]
    assert poems[0].author == "李白"
    assert poems[0].lines == ["床前明月光，疑是地上霜。", "举头望明月，低头思故乡。"]
    text = corpus_text(poems)
    assert "\x1b" not in text and "作者" not in text and "《" not in text
    assert text.count("\n\n") == 2


def test_regular_poems_by_line_length():
    poems = parse_tang(SAMPLE)
    assert is_regular(poems[0], 5) and not is_regular(poems[0], 7)
    assert is_regular(poems[2], 7)


def test_missing_file_says_how_to_install(tmp_path):
    with pytest.raises(DataError, match="lstmkit data fetch fortunes-zh"):
        load_tang(str(tmp_path / "nope"))
