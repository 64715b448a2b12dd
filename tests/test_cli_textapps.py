"""End to end on fixtures: `generate train --corpus tang-full|linux` with the
held-out bits beside the Kneser-Ney baseline, the form check and the curve;
`generate sample --form ... --acrostic ...`."""
import json
import re

import pytest

from test_cli_generate import PNG, one_line_error, run_cli
from poetry_fixture import write_poetry_folder

TINY = ["--seq-len", 8, "--units", 16, "--embed-dim", 8, "--epochs", 1, "--quiet", "--samples", 2,
        "--val-fraction", 0.2, "--test-fraction", 0.2, "--kn-orders", "2,3", "--batch-size", 8]


@pytest.fixture(scope="module")
def tang_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("tangfull")
    folder = write_poetry_folder(base / "quantangshi")
    r = run_cli("generate", "train", "--corpus", "tang-full", "--corpus-dir", folder, "--out", base / "run",
                "--form-check", 10, "--min-count", 1, *TINY)
    assert r.returncode == 0, r.stderr
    return base, r


@pytest.mark.slow
def test_tang_full_reports_lstm_beside_kneser_ney(tang_run):
    base, r = tang_run
    m = json.loads((base / "run" / "metrics.json").read_text(encoding="utf-8"))
    assert m["corpus"] == "tang-full" and m["corpus_info"]["poems"]["test"] >= 1
    kn = m["baseline_kneser_ney"]
    assert kn["order"] in (2, 3) and kn["val_bits"] > 0 and kn["test_bits"] > 0
    assert set(m["heldout_bits"]) == {"val", "test"}
    assert m["training"]["characters_per_second"] > 0 and m["training"]["tokens_trained"] > 0
    assert m["form_check"]["constrained"] == 1.0 and 0 <= m["form_check"]["free"] <= 1
    assert re.search(r"test: 1x16 LSTM \d+\.\d+\s+Kneser-Ney [23]-gram \d+\.\d+", r.stdout)
    for f in ("curve.png", "history.png"):
        assert (base / "run" / f).read_bytes()[:8] == PNG
    assert (base / "run" / "curve.csv").read_text().startswith("train_seconds,tokens,train_bits")


@pytest.mark.slow
@pytest.mark.parametrize("form,n_chars", [("jueju5", 5), ("jueju7", 7), ("lushi5", 5), ("lushi7", 7)])
def test_sample_forms(tang_run, tmp_path, form, n_chars):
    base, _ = tang_run
    heads = "春夏秋冬" if form.startswith("jueju") else "春夏秋冬春夏秋冬"
    r = run_cli("generate", "sample", "--model", base / "run", "--form", form, "--acrostic", heads,
                "--samples", 3, "--out", tmp_path / "s")
    assert r.returncode == 0, r.stderr
    poems = (tmp_path / "s" / "samples.txt").read_text(encoding="utf-8").strip().split("\n\n")
    assert len(poems) == 3
    for poem in poems:
        rows = poem.split("\n")
        assert len(rows) == len(heads) // 2
        for k, row in enumerate(rows):
            assert re.fullmatch(rf"[^，。\s]{{{n_chars}}}，[^，。\s]{{{n_chars}}}。", row), row
            assert row[0] == heads[2 * k] and row[n_chars + 1] == heads[2 * k + 1]
    stats = json.loads((tmp_path / "s" / "form.json").read_text(encoding="utf-8"))
    assert stats["share"] == 1.0 and stats["acrostic_share"] == 1.0
    assert "3 of 3 poems have" in r.stdout


@pytest.mark.slow
def test_sample_errors(tang_run, tmp_path):
    base, _ = tang_run
    one_line_error(run_cli("generate", "sample", "--model", base / "run", "--acrostic", "春夏秋",
                           "--out", tmp_path / "e1"), "acrostic", "3 characters")
    one_line_error(run_cli("generate", "sample", "--model", base / "run", "--form", "jueju5", "--acrostic",
                           "龘夏秋冬", "--out", tmp_path / "e2"), "not in the model's vocabulary")
    one_line_error(run_cli("generate", "train", "--corpus", "tang-full", "--corpus-dir", tmp_path / "none",
                           "--out", tmp_path / "e3", "--quiet"), "no such file or folder")


@pytest.mark.slow
def test_linux_corpus_from_a_folder(tmp_path):
    folder = tmp_path / "src" / "kernel"
    folder.mkdir(parents=True)
    for k in range(12):
        (folder / f"f{k}.c").write_text(f"static int f{k}(int a)\n{{\n\treturn a * {k};\n}}\n" * 4,
                                        encoding="utf-8")
    r = run_cli("generate", "train", "--corpus", "linux", "--corpus-dir", tmp_path / "src", "--out",
                tmp_path / "run", "--length", 40, *TINY)
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    assert m["corpus"] == "linux" and m["corpus_info"]["files"] == {"train": 8, "val": 2, "test": 2}
    assert m["baseline_kneser_ney"]["test_bits"] > 0 and m["heldout_bits"]["test"] > 0
    assert (tmp_path / "run" / "samples.txt").read_text(encoding="utf-8").strip()


@pytest.mark.slow
def test_init_from_goes_on_training(tang_run, tmp_path):
    base, _ = tang_run
    folder = base / "quantangshi"
    r = run_cli("generate", "train", "--corpus", "tang-full", "--corpus-dir", folder, "--out", tmp_path / "more",
                "--init-from", base / "run", "--form-check", 0, "--no-baseline", *TINY)
    assert r.returncode == 0, r.stderr
    assert "going on training the model of" in r.stdout
    before = json.loads((base / "run" / "metrics.json").read_text(encoding="utf-8"))
    after = json.loads((tmp_path / "more" / "metrics.json").read_text(encoding="utf-8"))
    assert after["vocab"] == before["vocab"] and after["init_from"].endswith("run")
    assert after["history"]["loss"][0] < before["history"]["loss"][0]       # it starts where the first stopped
    one_line_error(run_cli("generate", "train", "--corpus", "stdlib", "--max-chars", 3000, "--init-from",
                           base / "run", "--out", tmp_path / "bad", "--quiet"), "this run is char on 'stdlib'")
