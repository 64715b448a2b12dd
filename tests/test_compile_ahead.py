"""The compile-ahead helper started at import (kernels/ahead.prestart): only
when the kernel cache folder does not exist yet, given its work at the first
compile, gone when the caller closes the pipe."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")

CHILD = r"""
import json, os, sys, time
from lstmkit.kernels import ahead
from lstmkit.settings import config
waiting = ahead._waiting
out = dict(prestarted=waiting.pid if waiting else None)
action = sys.argv[1]
if action == "off":                                   # turned off before the first compile
    config.set(compile_ahead=False)
    ahead.start_helper("lstm", "float32", "TrainFused")
    out["exit"] = waiting.wait(timeout=60)
elif action == "work":
    ahead.start_helper("lstm", "float32", "TrainFused")
    out["helper"] = ahead.helpers()[("lstm", "float32")].pid
    deadline = time.time() + 120                      # the helper logs that it was given its work
    while time.time() < deadline and "given its work" not in open(os.environ["LSTMKIT_AHEAD_LOG"]).read():
        time.sleep(0.05)
    out["log"] = open(os.environ["LSTMKIT_AHEAD_LOG"]).read()
print(json.dumps(out))
"""


def _run(tmp_path, action, flags=(), stderr=None, **env):
    env = dict({k: v for k, v in os.environ.items() if k != "LSTMKIT_AHEAD_HELPER"}, PYTHONPATH=SRC,
               LSTMKIT_CACHE_DIR=str(tmp_path / "cache"), LSTMKIT_AHEAD_LOG=str(tmp_path / "ahead.log"), **env)
    (tmp_path / "ahead.log").touch()
    p = subprocess.run([sys.executable, *flags, "-c", CHILD, action], capture_output=True, text=True, env=env,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    if stderr is not None:
        stderr.append(p.stderr)
    return json.loads(p.stdout.strip().splitlines()[-1])


def _gone(pid, seconds=60):
    """The process has exited (a zombie counts: its parent has not reaped it)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


def test_prestarted_only_without_a_cache_folder_and_gone_with_its_caller(tmp_path):
    first = _run(tmp_path, "none")
    assert first["prestarted"]
    assert _gone(first["prestarted"])                 # the caller exited: the pipe closed, it ended
    from lstmkit.kernels import cache
    os.makedirs(tmp_path / "cache" / os.path.basename(cache.cache_dir()), exist_ok=True)  # (import made it)
    assert _run(tmp_path, "none")["prestarted"] is None   # the folder is there: nothing started at import


def test_a_caller_ending_without_compiling_reaps_the_helper_without_a_warning(tmp_path):
    """At exit the prestarted helper, never given work, is stopped and
    reaped: Python reports no ResourceWarning (a running child's Popen
    collected at shutdown, or its pipe left open), which it does with
    warnings shown when the helper is left to notice the closed pipe."""
    err = []
    out = _run(tmp_path, "none", flags=("-W", "default"), stderr=err)
    assert out["prestarted"]
    assert "ResourceWarning" not in err[0], err[0][-2000:]
    assert _gone(out["prestarted"], seconds=5)


def test_turned_off_and_done_leaves_no_warning(tmp_path):
    err = []
    out = _run(tmp_path, "off", flags=("-W", "default"), stderr=err)
    assert out["prestarted"] and out["exit"] == 0
    assert "ResourceWarning" not in err[0], err[0][-2000:]


def test_a_helper_starts_no_helper(tmp_path):
    assert _run(tmp_path, "none", LSTMKIT_AHEAD_HELPER="1")["prestarted"] is None


def test_turned_off_before_the_first_compile_it_exits_without_compiling(tmp_path):
    out = _run(tmp_path, "off")
    assert out["prestarted"] and out["exit"] == 0
    assert "compile" not in (tmp_path / "ahead.log").read_text()


def test_the_prestarted_helper_is_given_the_work(tmp_path):
    out = _run(tmp_path, "work")
    try:
        assert out["helper"] == out["prestarted"]         # no second helper started
        assert "helper given its work" in out["log"]
    finally:
        try:
            os.kill(out["helper"], signal.SIGKILL)          # the helper this test started: not its compiles
        except ProcessLookupError:
            pass


def test_the_helpers_list_starts_with_the_small_kernels():
    """The helper's share of a first fit and predict, in its order
    (skeleton.example_kernels, docs/kernels.md's session 8): the caller's
    training forward (claimed by the caller), Adam and the Embedding
    gradient, the one whole-sequence product (every layout of A), the
    inference loop over a folded table -- after the caller has saved the
    per-step product it links -- the backward (the caller's next), then
    inference over projections. Listed without compiling anything."""
    import itertools

    from lstmkit.kernels import ahead, lstm, skeleton
    keys = [key for key, _ in itertools.islice(
        skeleton.example_kernels(lstm.CELL, "float32", "lstm_TrainFused"), ahead.AHEAD)]
    assert [k.split(".")[0] for k in keys] == ["forward_rows", "adam-embedding", "dot_rows", "infer_rows",
                                               "backward_rows", "infer_rows"]
    assert keys[2] == "dot_rows.float32"                      # one product, whatever A's layout
    assert keys[3].endswith(".t2") and keys[5].endswith(".t3")   # the folded table first
    assert ahead.STEAL == 5                                    # the caller steals all but the last


def test_reap_reads_the_exit_status_of_a_finished_helper():
    """A helper given work that has finished is reaped at exit: its Popen then
    has a return code, so Python does not call it "still running" when the
    object is collected."""
    from lstmkit.kernels import ahead
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    key = ("test-cell", "test-dtype")
    ahead._helpers[key] = proc
    try:
        assert _gone(proc.pid)                                   # ended, its status not read yet
        assert proc.returncode is None
        ahead._reap()
        assert proc.returncode == 0
    finally:
        del ahead._helpers[key]
