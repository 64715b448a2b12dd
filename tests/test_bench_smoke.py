"""The benchmark harness runs end to end on miniature shapes and writes valid
results; every framework runs the same model (no timing assertions)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "benchmarks")

def test_harness_writes_valid_results(tmp_path):
    p = subprocess.run([sys.executable, os.path.join(BENCH, "run.py"), "--tiny", "--repeats", "1",
                        "--only", "A-lstm-b32,C,D", "--wait-quiet", "0", "--settle", "0", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    results = json.loads((tmp_path / "latest.json").read_text())
    ids = [c["id"] for c in results["cases"]]
    assert ids == ["A-lstm-b32-train", "A-lstm-b32-infer", "A-lstm-b32-infer-fresh", "C-lstm-step",
                   "D-lstm-train"]
    for case in results["cases"]:
        assert "median" in case["frameworks"]["torch_default"], case
        assert "median" in case["frameworks"]["lstmkit"], case
        assert case["ratio"] is not None
    assert results["sgemm"]["gflops"] > 0
    assert results["fma"]["one_core"]["gflops"] > 0 and results["fma"]["all_threads"]["threads"] == 2
    for case in results["cases"]:                               # every case: work counted, harness recorded
        assert case["gflops"]["lstmkit"] > 0 and case["warmup_calls"] >= 1 and case["repeats"] == 1
        assert case["percent_of_fma_peak"]["lstmkit"] > 0
    assert results["meta"]["git_commit"]
    mem = {m["case"]: m for m in results["memory"]}
    assert "train_peak_mb" in mem["A-lstm-b32-train"]["frameworks"]["torch"]
    md = (tmp_path / "latest.md").read_text()
    assert "| A-lstm-b32-train |" in md
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp-")]


def _first_output(fn):
    out = fn[0]() if isinstance(fn, tuple) else fn()
    out = out[0] if isinstance(out, (tuple, list)) else out
    return np.asarray(out.detach() if hasattr(out, "detach") else out, dtype=np.float64).ravel()


@pytest.mark.parametrize("case_id", ["A-lstm-b32-infer", "A-gru-b32-infer", "A-rnn-b32-infer",
                                     "C-lstm-step"])
def test_frameworks_compute_the_same_model(case_id):
    sys.path.insert(0, BENCH)
    import envsetup
    envsetup.apply()
    import data
    import peer_lstmkit
    import peer_onnx
    import peer_torch
    import weights
    import workloads
    case = workloads.tiny(next(c for c in workloads.CASES if c.id == case_id))
    w = weights.make(case.net)
    x, y = data.make(case)
    ref = _first_output(peer_torch.runner(case, w, x, y))
    assert peer_onnx.available()                        # onnxruntime is a test dependency
    np.testing.assert_allclose(_first_output(peer_onnx.runner(case, w, x, y)), ref, atol=1e-5)
    mine = peer_lstmkit.runner(case, w, x, y)
    np.testing.assert_allclose(_first_output(mine), ref, atol=1e-5)


@pytest.mark.parametrize("case_id", ["A-lstm-b32-train", "D-lstm-train"])
def test_training_steps_agree(case_id):
    """Same loss on the first step, and close on the second (after one Adam
    update; Keras's and PyTorch's Adam place epsilon slightly differently)."""
    sys.path.insert(0, BENCH)
    import envsetup
    envsetup.apply()
    import data
    import peer_lstmkit
    import peer_torch
    import weights
    import workloads
    case = workloads.tiny(next(c for c in workloads.CASES if c.id == case_id))
    w = weights.make(case.net)
    x, y = data.make(case)
    theirs = peer_torch.runner(case, w, x, y)
    mine = peer_lstmkit.runner(case, w, x, y)[0]
    np.testing.assert_allclose(float(mine()), float(theirs()), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(mine()), float(theirs()), rtol=2e-3)


def test_readme_tables_come_from_latest_json():
    """README.md's Performance table and benchmarks/README.md's are generated
    from benchmarks/results/latest.json (report.py): one "latest" everywhere."""
    sys.path.insert(0, BENCH)
    import report
    with open(report.LATEST) as f:
        results = json.load(f)
    assert report.update_docs(results, check=True) == []


def test_work_counted_as_done():
    """lstmkit's kept folded table does no input product; a fresh one folds once."""
    sys.path.insert(0, BENCH)
    import peak
    import workloads
    cases = {c.id: c for c in workloads.CASES}
    kept, fresh = cases["A-lstm-b32-infer"], cases["A-lstm-b32-infer-fresh"]
    B, T, E, H, V = 32, 500, 32, 32, 10000
    recurrent, head = 2 * B * T * H * 4 * H, 2 * B * H
    assert peak.work_flops(kept, "lstmkit") == recurrent + head
    assert peak.work_flops(fresh, "lstmkit") == 2 * V * E * 4 * H + recurrent + head
    assert peak.work_flops(kept, "peer") == 2 * B * T * E * 4 * H + recurrent + head
    train = cases["A-lstm-b32-train"]
    assert peak.work_flops(train, "lstmkit") == peak.work_flops(train, "peer") == 3 * (
        2 * B * T * E * 4 * H + recurrent + head)


def test_cold_start_child_is_timed_from_process_start(tmp_path):
    sys.path.insert(0, BENCH)
    import cold_start
    code = ("import time, json\nt0 = time.time()\nprint(json.dumps(dict(start=t0, end=time.time(), "
            "import_s=0, build_s=0, fit_s=0, predict_s=0, cpu_s=0, helper_cpu_s=0, helpers=0, finite=True)))")
    rec = cold_start.run_child(code, str(tmp_path))
    assert 0 < rec["wall_s"] < 60 and rec["end"] >= rec["start"] and 0 <= rec["others_cpu"] <= 1


def test_cold_start_measures_lstmkit_with_its_bytecode_written():
    """As an install has it: every lstmkit module's .pyc, current with its source."""
    import importlib.util
    sys.path.insert(0, BENCH)
    import cold_start
    cold_start.compile_bytecode()
    package = os.path.join(cold_start.SRC, "lstmkit")
    for folder, _, files in os.walk(package):
        for name in files:
            if name.endswith(".py"):
                source = os.path.join(folder, name)
                pyc = importlib.util.cache_from_source(source)
                assert os.path.exists(pyc) and os.path.getmtime(pyc) >= os.path.getmtime(source), source


@pytest.mark.slow
def test_translation_workload_runs(tmp_path):
    """Workload E (seq2seq_bench.py) on miniature shapes: both frameworks time the same model."""
    p = subprocess.run([sys.executable, os.path.join(BENCH, "run.py"), "--tiny", "--repeats", "1", "--only", "E",
                        "--wait-quiet", "0", "--settle", "0", "--no-memory", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    cases = {c["id"]: c for c in json.loads((tmp_path / "latest.json").read_text())["cases"]}
    assert set(cases) == {"E-seq2seq-train", "E-seq2seq-beam"}
    for case in cases.values():
        for fw in ("lstmkit", "torch_default"):
            assert "median" in case["frameworks"][fw], case
        assert case["throughput"]["lstmkit"] > 0 and case["ratio"] is not None
    assert cases["E-seq2seq-train"]["seq2seq"]["target_tokens_per_batch"] > 0
    assert cases["E-seq2seq-beam"]["seq2seq"]["sentences"] == 4
