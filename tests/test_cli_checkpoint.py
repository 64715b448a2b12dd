"""The training commands' --checkpoint-dir / --checkpoint-every / --resume: a run cut after its first
epoch and resumed with --resume ends with the model file (weights and optimizer state) of a run never
cut, bit for bit; the options' mistakes are one line."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.numpy import load_file

from lstmkit.models import checkpoint as ckpt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_cli_classify import make_csv  # noqa: E402


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), NUMBA_NUM_THREADS="2")
    return subprocess.run([sys.executable, "-m", "lstmkit", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=600)


def same_file_tensors(a, b):
    ta, tb = load_file(str(a)), load_file(str(b))
    assert sorted(ta) == sorted(tb)
    for k in ta:
        assert ta[k].tobytes() == tb[k].tobytes(), f"{k} differs"
    return len(ta)


CASES = {
    "classify": lambda d: (["classify", "train", make_csv(d / "data.csv", n=120), "--maxlen", 10, "--units", 8,
                            "--embed-dim", 8, "--lr", 0.03, "--batch-size", 16], "model.safetensors"),
    "generate": lambda d: (["generate", "train", _text(d), "--seq-len", 16, "--units", 16, "--embed-dim", 8,
                            "--samples", 1, "--length", 20, "--dropout", 0.1, "--no-baseline"], "model.safetensors"),
    "translate": lambda d: (["translate", "train", REPO / "tests" / "data" / "pairs_de_en.tsv", "--tokens", "word",
                             "--embed-dim", 8, "--units", 8, "--batch-size", 32, "--dropout", 0.1, "--beam", 1,
                             "--eval-limit", 5], "model.safetensors"),
}


def _text(d):
    path = d / "t.txt"
    path.write_text("the quick brown fox jumps over the lazy dog.\n" * 40, encoding="utf-8")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(CASES))
def test_cut_after_one_epoch_and_resumed_equals_uncut(tmp_path, command):
    args, model_file = CASES[command](tmp_path)
    r = run_cli(*args, "--epochs", 2, "--out", tmp_path / "plain", "--quiet")
    assert r.returncode == 0, r.stderr
    ck = tmp_path / "ck"
    r = run_cli(*args, "--epochs", 1, "--out", tmp_path / "cut", "--quiet", "--checkpoint-dir", ck,
                "--checkpoint-every", 2)
    assert r.returncode == 0, r.stderr
    assert ckpt.listing(ck)[-1][:2] == (1, 0)                              # the end of epoch 1
    r = run_cli(*args, "--epochs", 2, "--out", tmp_path / "resumed", "--quiet", "--checkpoint-dir", ck,
                "--checkpoint-every", 2, "--resume")
    assert r.returncode == 0, r.stderr
    assert "resuming from ckpt-00001-000000.safetensors" in r.stderr
    assert same_file_tensors(tmp_path / "plain" / model_file, tmp_path / "resumed" / model_file) > 3

    r = run_cli(*args, "--epochs", 2, "--out", tmp_path / "again", "--quiet", "--checkpoint-dir", ck)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode != 0 and len(lines) == 1 and "already holds checkpoints" in lines[0] \
        and "--resume" in lines[0], r.stderr


def test_resume_needs_a_checkpoint_dir_and_every_training_command_has_the_options(tmp_path):
    r = run_cli("classify", "train", make_csv(tmp_path / "d.csv", n=20), "--resume", "--quiet")
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode != 0 and len(lines) == 1 and "--resume needs --checkpoint-dir" in lines[0], r.stderr
    for command in ("classify", "generate", "forecast", "caption", "translate"):
        r = run_cli(command, "train", "--help")
        assert r.returncode == 0 and all(o in r.stdout for o in ("--checkpoint-dir", "--checkpoint-every",
                                                                 "--resume", "--keep-checkpoints")), command
