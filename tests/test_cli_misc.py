"""`lstmkit gradients`, `inspect`, `demo --quick`, help texts and python -m lstmkit."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


def run_cli(*args, stdin=None):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.run([sys.executable, "-m", "lstmkit", *map(str, args)], input=stdin,
                          capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.parametrize("cmd", [[], ["classify", "train"], ["classify", "eval"], ["classify", "predict"],
                                 ["generate", "train"], ["generate", "sample"], ["forecast", "train"],
                                 ["forecast", "predict"], ["gradients"], ["inspect"], ["demo"],
                                 ["caption", "train"], ["caption", "eval"]])
def test_help_explains_options_with_defaults(cmd):
    r = run_cli(*cmd, "--help")
    assert r.returncode == 0 and "usage: lstmkit" in r.stdout
    if cmd:
        assert "--out" in r.stdout and "(default:" in r.stdout


def test_unknown_command_is_one_line():
    r = run_cli("frobnicate")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "frobnicate" in r.stderr


def test_gradients_table_and_plot(tmp_path):
    r = run_cli("gradients", "--steps", 60, "--units", 16, "--batch", 4, "--out", tmp_path / "g")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "g" / "metrics.json").read_text())
    row50 = next(row for row in m["table"] if row["distance"] == 50)
    assert row50["simple_rnn"] < 1e-2 * row50["lstm"]
    assert (tmp_path / "g" / "gradient_flow.png").read_bytes()[:8] == PNG
    assert any(line.split()[:1] == ["50"] for line in r.stdout.splitlines())


def test_inspect_writes_one_heat_map_per_gate(tmp_path):
    (tmp_path / "t.txt").write_text("hello world, hello gates.\n" * 40, encoding="utf-8")
    r = run_cli("generate", "train", tmp_path / "t.txt", "--seq-len", 12, "--units", 8, "--embed-dim", 4,
                "--epochs", 1, "--samples", 1, "--length", 5, "--out", tmp_path / "m", "--quiet")
    assert r.returncode == 0, r.stderr
    r = run_cli("inspect", "--model", tmp_path / "m", "--text", "hello gates", "--out", tmp_path / "i")
    assert r.returncode == 0, r.stderr
    for gate in ("input_gate", "forget_gate", "candidate", "output_gate"):
        assert (tmp_path / "i" / f"gate_{gate}.png").read_bytes()[:8] == PNG
    m = json.loads((tmp_path / "i" / "metrics.json").read_text())
    assert 0 < m["gates"]["forget_gate"]["mean"] < 1 and len(m["tokens"]) == len("hello gates")
    r = run_cli("inspect", "--model", tmp_path / "m", "--text", "zzz", "--out", tmp_path / "i2")
    assert r.returncode == 0                       # unseen characters read as out-of-vocabulary


def test_inspect_gru_has_reset_and_update(tmp_path):
    (tmp_path / "t.txt").write_text("abcabcabd\n" * 60, encoding="utf-8")
    r = run_cli("generate", "train", tmp_path / "t.txt", "--cell", "gru", "--seq-len", 8, "--units", 4,
                "--embed-dim", 4, "--epochs", 1, "--samples", 1, "--length", 5, "--out", tmp_path / "m", "--quiet")
    assert r.returncode == 0, r.stderr
    r = run_cli("inspect", "--model", tmp_path / "m", "--text", "abcab", "--out", tmp_path / "i")
    assert r.returncode == 0, r.stderr
    assert {p.name for p in (tmp_path / "i").glob("*.png")} == {"gate_reset_gate.png", "gate_update_gate.png",
                                                                "gate_candidate.png"}


def test_inspect_missing_model_is_one_clear_error(tmp_path):
    r = run_cli("inspect", "--model", tmp_path / "none", "--text", "x")
    assert r.returncode != 0 and "Traceback" not in r.stderr and "none" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_demo_quick_runs_every_step(tmp_path):
    r = run_cli("demo", "--quick", "--quiet", "--out", tmp_path / "d")
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert 0 <= s["sentiment"]["val_accuracy"] <= 1
    assert s["generate"]["bits_per_character"] > 0 and s["generate"]["samples"]
    assert s["translate"]["copy_baseline"]["bleu"] >= 0 and s["translate"]["examples"]
    assert 0 <= s["caption"]["model"]["bleu1"] <= 100 and s["caption"]["nearest_neighbour"]["object_share"] >= 0
    for sub, f in (("sentiment", "confusion.png"), ("tang", "samples.txt"), ("gradients", "gradient_flow.png"),
                   ("translate", "metrics.json"), ("caption", "contact_sheet.png")):
        assert (tmp_path / "d" / sub / f).exists()
    assert f"outputs in {tmp_path / 'd'}" in r.stdout


def test_demo_takes_the_poems_from_the_data_cache_and_installs_nothing(tmp_path, monkeypatch):
    from lstmkit.apps import demo
    from lstmkit.datasets import cache
    monkeypatch.setattr(cache, "SYSTEM_ROOT", tmp_path / "system")
    monkeypatch.setenv("LSTMKIT_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "no-clients"))        # no apt-get: cannot be fetched
    said = []
    assert demo.tang_poems(log=said.append) is None
    assert "note: apt-get is not installed" in said[-2] and "standard-library" in said[-1]
    tang = tmp_path / "system" / "usr/share/games/fortunes/tang300"   # an installed fortunes-zh
    for name in ("tang300", "song100", "chinese"):
        (tang.parent / name).parent.mkdir(parents=True, exist_ok=True)
        (tang.parent / name).write_text("%\n")
    assert demo.tang_poems(log=said.append) == str(tang)
