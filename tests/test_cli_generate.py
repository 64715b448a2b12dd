"""`lstmkit generate` end to end: a tiny character model, word level, Tang
format with the constrained sampler, the fallback when the poems are missing."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"
TINY = ["--seq-len", 16, "--units", 16, "--embed-dim", 8, "--epochs", 1, "--quiet", "--samples", 2]


def run_cli(*args, stdin=None):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.run([sys.executable, "-m", "lstmkit", *map(str, args)], input=stdin,
                          capture_output=True, text=True, env=env, timeout=300)


def one_line_error(r, *words):
    assert r.returncode != 0 and "Traceback" not in r.stderr
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    assert all(w in lines[0] for w in words), lines[0]


POEMS = [("静夜思", "李白", ["床前明月光，疑是地上霜。", "举头望明月，低头思故乡。"]),
         ("登鹳雀楼", "王之涣", ["白日依山尽，黄河入海流。", "欲穷千里目，更上一层楼。"]),
         ("春晓", "孟浩然", ["春眠不觉晓，处处闻啼鸟。", "夜来风雨声，花落知多少。"])]


@pytest.fixture(scope="module")
def tang_file(tmp_path_factory):
    recs = [f"\x1b[32m《{t}》\x1b[m\n\x1b[33m作者：{a}\x1b[m\n" + "\n".join(lines) + "\n"
            for t, a, lines in POEMS * 6]
    path = tmp_path_factory.mktemp("tang") / "tang300"
    path.write_text("%\n".join(recs) + "%\n", encoding="utf-8")
    return path


def test_char_model_on_text(tmp_path):
    text = "the quick brown fox jumps over the lazy dog.\n" * 60
    (tmp_path / "t.txt").write_text(text, encoding="utf-8")
    r = run_cli("generate", "train", tmp_path / "t.txt", "--out", tmp_path / "run", "--length", 40, *TINY)
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert 0 < m["bits_per_character"] < m["uniform_bits"] + 1
    assert m["vocab"] == len(set(text)) + 2
    assert (tmp_path / "run" / "history.png").read_bytes()[:8] == PNG
    assert (tmp_path / "run" / "samples.txt").read_text(encoding="utf-8").strip()
    bpc = float(re.search(r"bits_per_character: ([0-9.]+)", r.stdout).group(1))
    assert bpc == pytest.approx(m["bits_per_character"], abs=1e-3)

    r = run_cli("generate", "sample", "--model", tmp_path / "run", "--prime", "the ", "--length", 30,
                "--temperature", 0.5, "--top-k", 5, "--samples", 1, "--out", tmp_path / "s")
    assert r.returncode == 0, r.stderr
    sample = (tmp_path / "s" / "samples.txt").read_text(encoding="utf-8")
    assert sample.startswith("the ") and len(sample.strip()) >= 20


def test_word_level(tmp_path):
    (tmp_path / "w.txt").write_text("def f(x):\n    return x + 1\n\n" * 40, encoding="utf-8")
    r = run_cli("generate", "train", tmp_path / "w.txt", "--level", "word", "--out", tmp_path / "run",
                "--length", 10, *TINY)
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["level"] == "word" and m["bits_per_word"] > 0


def test_tang_poems_have_five_or_seven_characters_per_half_line(tang_file, tmp_path):
    r = run_cli("generate", "train", "--corpus", "tang", "--tang-path", tang_file, "--out", tmp_path / "run",
                *TINY)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["corpus"] == "tang"
    for n in (5, 7):
        r = run_cli("generate", "sample", "--model", tmp_path / "run", "--line-chars", n, "--verses", 4,
                    "--prime", "春", "--samples", 2, "--out", tmp_path / f"s{n}")
        assert r.returncode == 0, r.stderr
        poems = (tmp_path / f"s{n}" / "samples.txt").read_text(encoding="utf-8").strip().split("\n\n")
        assert len(poems) == 2
        for poem in poems:
            assert poem.startswith("春")
            lines = poem.split("\n")
            assert len(lines) == 2
            for line in lines:
                assert re.fullmatch(rf"[^，。\s]{{{n}}}，[^，。\s]{{{n}}}。", line), line


def test_missing_tang_falls_back_to_stdlib(tmp_path):
    r = run_cli("generate", "train", "--corpus", "tang", "--tang-path", tmp_path / "absent", "--max-chars", 3000,
                "--out", tmp_path / "run", "--length", 20, *TINY)
    assert r.returncode == 0, r.stderr
    assert "lstmkit data fetch fortunes-zh" in r.stdout and "standard-library" in r.stdout
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["corpus"] == "stdlib"


def test_bad_inputs(tmp_path):
    one_line_error(run_cli("generate", "train", tmp_path / "nope.txt"), "nope.txt", "no such")
    (tmp_path / "latin1.txt").write_bytes("café au lait\n".encode("latin-1") * 50)
    one_line_error(run_cli("generate", "train", tmp_path / "latin1.txt"), "latin1.txt", "line 1", "UTF-8")
    (tmp_path / "empty.txt").write_text("  \n")
    one_line_error(run_cli("generate", "train", tmp_path / "empty.txt"), "empty.txt", "empty")
    (tmp_path / "short.txt").write_text("abc")
    one_line_error(run_cli("generate", "train", tmp_path / "short.txt"), "too little text")
    one_line_error(run_cli("generate", "sample", "--model", tmp_path, "--temperature", "-1"), "--temperature")
