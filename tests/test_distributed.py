"""Data-parallel training on torch.distributed (gloo, loopback): 2 processes give the
weights of 1 process on the same global batches; a rank that dies stops the other with
a clear error; the CLI under torchrun. Each rank is a real process (tests/dist_worker.py)."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lstmkit as lk
from lstmkit.distributed import DistributedError
from lstmkit.distributed.data_parallel import DataParallel

HERE = Path(__file__).parent
WORKER = HERE / "dist_worker.py"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK",
                                                           "MASTER_ADDR", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1", **extra)
    return env


def run_ranks(world, args, timeout=240, **extra):
    port = str(free_port())
    procs = []
    for r in range(world):
        env = clean_env(RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                        MASTER_PORT=port, **extra)
        procs.append(subprocess.Popen([sys.executable, *args], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    outs = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise AssertionError("a rank hung")
        outs.append((p.returncode, out, err))
    return outs


def load(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("kind", ["sequential", "functional"])
def test_two_ranks_equal_one_process(tmp_path, kind):
    one, two = tmp_path / "one.npz", tmp_path / "two.npz"
    r = subprocess.run([sys.executable, str(WORKER), str(one), kind], env=clean_env(), capture_output=True,
                       text=True, timeout=240)
    assert r.returncode == 0, r.stderr
    results = run_ranks(2, [str(WORKER), str(two), kind])
    for rc, _, err in results:
        assert rc == 0, err
    w1, w2 = load(one), load(two)
    assert w1.keys() == w2.keys()
    worst = max(float(np.abs(w1[k] - w2[k]).max()) for k in w1)
    assert worst < 1e-10, worst
    # training moved the weights (the comparison is not between two untouched models)
    h1 = json.loads(Path(str(one) + ".json").read_text())
    h2 = json.loads(Path(str(two) + ".json").read_text())
    assert h1.keys() == h2.keys()
    for k in h1:                                   # loss, val_loss, metrics: the same per epoch
        np.testing.assert_allclose(h2[k], h1[k], rtol=1e-9, atol=1e-12)
    assert h1["loss"][-1] < h1["loss"][0]


def test_dead_rank_stops_the_other_with_a_clear_error(tmp_path):
    results = run_ranks(2, [str(WORKER), str(tmp_path / "w.npz"), "sequential", "die"], timeout=120,
                        LSTMKIT_DIST_TIMEOUT="20")
    (rc0, _, err0), (rc1, _, _) = results
    assert rc1 == 3                               # the worker that died
    assert rc0 != 0
    assert "DistributedError" in err0 and "another rank stopped" in err0, err0[-2000:]


def test_init_without_torchrun_environment_is_refused(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(DistributedError, match="torchrun"):
        DataParallel()


def test_shard_covers_every_sample_once():
    dp = DataParallel.__new__(DataParallel)
    for world in (1, 2, 3, 5):
        for n in (1, 4, 7, 13):
            idx = np.arange(n) * 3
            parts = []
            for r in range(world):
                dp.rank, dp.world = r, world
                parts.append(dp.shard(idx))
            np.testing.assert_array_equal(np.concatenate(parts), idx)


@pytest.mark.slow
def test_cli_under_torchrun(tmp_path):
    """torchrun --nproc-per-node 2 -m lstmkit classify train: rank 0 writes the run, the other is quiet."""
    rng = np.random.default_rng(0)
    words = ["good", "great", "fine", "bad", "awful", "poor", "the", "a", "film", "plot"]
    lines = ["text,label"]
    for _ in range(60):
        label = int(rng.integers(0, 2))
        pick = rng.choice(words[:3] if label else words[3:6], size=2).tolist() + rng.choice(words[6:], 3).tolist()
        rng.shuffle(pick)
        lines.append(f"{' '.join(pick)},{label}")
    csv = tmp_path / "reviews.csv"
    csv.write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    torchrun = Path(sys.executable).with_name("torchrun")
    env = clean_env()
    del env["NUMBA_NUM_THREADS"]        # as a user runs it (a gloo group left open once kept such a run from exiting)
    r = subprocess.run([str(torchrun), "--nproc-per-node", "2", "--master-addr", "127.0.0.1", "--master-port",
                        str(free_port()), "-m", "lstmkit", "classify", "train", str(csv), "--out", str(out),
                        "--epochs", "2", "--maxlen", "8", "--units", "8", "--embed-dim", "8", "--quiet"],
                       env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (out / "model.safetensors").exists(), list(out.iterdir())
    assert r.stdout.count("outputs in") == 1, r.stdout          # rank 0 speaks, rank 1 is quiet
    model = lk.load_model(out / "model.safetensors")
    assert model.count_params() > 0
