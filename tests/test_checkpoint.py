"""Checkpoints and resume (models/checkpoint.py, fit(checkpoint_dir=..., resume=True)).

A run stopped in the middle (here: an exception from a callback, in this process; the SIGKILL
test in test_checkpoint_kill.py does it to a real process) and resumed from its newest
checkpoint ends with the very weights, optimizer moments and History of a run never
stopped: float64 on the reference engine, float32 on the fast one. Also: checkpoints change
nothing, keep-last-K, a damaged newest file is refused in words and the one before it used,
early stopping's state survives, a folder of another run is refused."""
import json

import numpy as np
import pytest

import lstmkit as lk
from lstmkit.models import checkpoint as ckpt


class Stop(Exception):
    """Stands for the process dying at that batch."""


class StopAt(lk.callbacks.Callback):
    def __init__(self, at):
        self.at, self.count = at, 0

    def on_batch_end(self, batch, logs=None):
        self.count += 1
        if self.count == self.at:
            raise Stop()


def data(seed=0, n=44):
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 20, size=(n, 7))
    y = (x[:, :2].sum(1) > 20).astype(float)
    return x, y


def make(engine, functional=False):
    dtype = "float64" if engine == "reference" else "float32"
    kw = dict(dtype=dtype)
    emb = lk.Embedding(20, 6, input_length=7, name="emb", seed=1, **kw)     # functional models take
    rnn = lk.LSTM(8, engine=engine, dropout=0.2, name="rnn", seed=2, **kw)  # their layers' seeds as given
    drop = lk.Dropout(0.3, name="drop", seed=3, **kw)
    dense = lk.Dense(1, activation="sigmoid", name="out", seed=5, **kw)
    if functional:
        inp = lk.Input(shape=(7,), name="ids")
        m = lk.Model(inp, dense(drop(rnn(emb(inp)))), seed=4)
    else:
        m = lk.Sequential([emb, rnn, drop, dense], seed=4)
    m.compile(optimizer=lk.Adam(0.02), loss="binary_crossentropy", metrics=["accuracy"])
    return m


def state(m, history):
    opt = {f"{k}/{s}": a.copy() for k, slots in m.optimizer.state.items() for s, a in slots.items()}
    return m.get_weights(), opt, m.optimizer.iterations, history.history


def assert_same(a, b):
    (wa, oa, ia, ha), (wb, ob, ib, hb) = a, b
    assert sorted(wa) == sorted(wb) and sorted(oa) == sorted(ob) and ia == ib
    for k in wa:
        assert wa[k].dtype == wb[k].dtype and wa[k].tobytes() == wb[k].tobytes(), f"weight {k} differs"
    for k in oa:
        assert oa[k].tobytes() == ob[k].tobytes(), f"optimizer state {k} differs"
    assert ha == hb                                             # exact floats, same keys


FIT = dict(epochs=3, batch_size=8, verbose=0, validation_split=0.2)


@pytest.mark.parametrize("functional", [False, True], ids=["sequential", "functional"])
@pytest.mark.parametrize("engine", ["reference", "fast"])
def test_stopped_and_resumed_twice_equals_uninterrupted(tmp_path, engine, functional):
    x, y = data()
    m = make(engine, functional)
    plain = state(m, m.fit(x, y, **FIT))                         # no checkpoints at all
    m = make(engine, functional)
    with_ckpt = state(m, m.fit(x, y, checkpoint_dir=tmp_path / "a", checkpoint_every=2, **FIT))
    assert_same(plain, with_ckpt)                                # writing checkpoints changes nothing

    d = tmp_path / "b"                       # 5 batches an epoch: stop in epoch 1 (batch 3), then epoch 3 (batch 2)
    m = make(engine, functional)
    with pytest.raises(Stop):
        m.fit(x, y, checkpoint_dir=d, checkpoint_every=2, callbacks=[StopAt(3)], **FIT)
    m = make(engine, functional)
    with pytest.raises(Stop):
        m.fit(x, y, checkpoint_dir=d, checkpoint_every=2, callbacks=[StopAt(8)], resume=True, **FIT)
    m = make(engine, functional)
    resumed = state(m, m.fit(x, y, checkpoint_dir=d, checkpoint_every=2, resume=True, **FIT))
    assert_same(plain, resumed)


def test_what_a_checkpoint_holds_and_keep_last_k(tmp_path):
    x, y = data()
    m = make("reference")
    m.fit(x, y, checkpoint_dir=tmp_path, checkpoint_every=1, keep_checkpoints=2, **FIT)
    files = ckpt.listing(tmp_path)
    assert [(e, b) for e, b, _ in files] == [(2, 4), (3, 0)]      # 5 batches an epoch; the last two kept
    assert not list(tmp_path.glob(".tmp-*"))
    tensors, st = ckpt.read(files[-1][2])
    assert st["epoch"] == 3 and st["batch"] == 0 and st["iterations"] == 15
    assert {"emb/embeddings", "rnn/b_x", "out/W"} <= set(tensors)
    assert any(k.startswith("__optimizer__/m/") for k in tensors)          # Adam's moments
    assert st["generators"] and all("state" in g for g in st["generators"].values())   # dropout generators
    assert st["rng"]["bit_generator"] == "PCG64"                             # the shuffling generator
    assert len(ckpt.decode(st["callbacks"][0][1], tensors)["history"]["loss"]) == 3
    raw = files[-1][2].read_bytes()
    assert b"pickle" not in raw and b"\x80\x04" not in raw[:2]


def test_damaged_newest_checkpoint_refused_previous_used(tmp_path, capsys):
    x, y = data()
    m = make("reference")
    plain = state(m, m.fit(x, y, **FIT))
    m = make("reference")
    with pytest.raises(Stop):
        m.fit(x, y, checkpoint_dir=tmp_path, checkpoint_every=1, callbacks=[StopAt(7)], **FIT)
    files = ckpt.listing(tmp_path)
    newest, before = files[-1][2], files[-2][2]
    newest.write_bytes(newest.read_bytes()[:-100])                            # truncated
    m = make("reference")
    resumed = state(m, m.fit(x, y, checkpoint_dir=tmp_path, checkpoint_every=1, resume=True, **FIT))
    err = capsys.readouterr().err
    assert f"refusing checkpoint {newest.name}" in err and "truncated" in err
    assert f"resuming from {before.name}" in err
    assert_same(plain, resumed)


def test_tampered_and_foreign_files_are_refused_in_words(tmp_path):
    x, y = data()
    m = make("reference")
    m.fit(x, y, checkpoint_dir=tmp_path, epochs=1, batch_size=8, verbose=0)
    path = ckpt.listing(tmp_path)[-1][2]
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 1                                                              # one bit of a weight
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="SHA-256"):
        ckpt.read(path)
    path.write_bytes(b"\x80\x04\x95" + b"\x00" * 40)                          # a pickle
    with pytest.raises(ValueError, match="pickle"):
        ckpt.read(path)
    m.save(tmp_path / "model.safetensors")                                    # a model file, not a checkpoint
    with pytest.raises(ValueError, match="not a lstmkit checkpoint"):
        ckpt.read(tmp_path / "model.safetensors")
    with pytest.raises(ckpt.CheckpointError, match="none of the 1 checkpoints"):
        make("reference").fit(x, y, checkpoint_dir=tmp_path, epochs=1, batch_size=8, verbose=0, resume=True)


def test_early_stopping_state_survives_a_resume(tmp_path):
    x, y = data(n=40)

    def run(d, stop=None, resume=False):
        m = make("reference")
        es = lk.callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=10.0, restore_best_weights=True)
        cbs = [es] + ([StopAt(stop)] if stop else [])
        h = m.fit(x, y, epochs=6, batch_size=8, verbose=0, callbacks=cbs, checkpoint_dir=d, resume=resume)
        return m, es, h
    m, es, h = run(None)
    assert es.stopped_epoch == 2                          # min_delta=10: never better after epoch 1
    d = tmp_path / "c"
    with pytest.raises(Stop):
        run(d, stop=8)                                    # 5 batches an epoch: in epoch 2, with wait=1
    m2, es2, h2 = run(d, resume=True)
    assert es2.stopped_epoch == 2 and es2.best_epoch == es.best_epoch and h2.history == h.history
    for k, v in m.get_weights().items():
        assert v.tobytes() == m2.get_weights()[k].tobytes()
    m3, es3, h3 = run(d, resume=True)                     # that run had stopped: nothing more is trained
    assert h3.history == h.history


def test_folder_of_an_earlier_run_and_other_setups_are_refused(tmp_path):
    x, y = data()
    make("reference").fit(x, y, checkpoint_dir=tmp_path, epochs=1, batch_size=8, verbose=0)
    with pytest.raises(ckpt.CheckpointError, match="already holds checkpoints.*resume=True"):
        make("reference").fit(x, y, checkpoint_dir=tmp_path, epochs=1, batch_size=8, verbose=0)
    with pytest.raises(ckpt.CheckpointError, match="batch_size"):
        make("reference").fit(x, y, checkpoint_dir=tmp_path, epochs=2, batch_size=4, verbose=0, resume=True)
    with pytest.raises(ValueError, match="needs checkpoint_dir"):
        make("reference").fit(x, y, resume=True, verbose=0)
    with pytest.raises(ValueError, match="checkpoint_every must be a positive integer"):
        make("reference").fit(x, y, checkpoint_dir=tmp_path, checkpoint_every=0, verbose=0)


def test_resume_into_a_model_whose_automatic_names_moved_on(tmp_path):
    """In one process a second model's layers are 'lstm_1', ... : the weights are matched by place."""
    x, y = data()

    def model():
        m = lk.Sequential([lk.Embedding(20, 4, input_length=7), lk.GRU(5, engine="reference"),
                           lk.Dense(1, activation="sigmoid")], seed=2)
        m.compile(optimizer="adam", loss="binary_crossentropy")
        return m
    m = model()
    plain = state(m, m.fit(x, y, epochs=2, batch_size=8, verbose=0))
    m = model()
    with pytest.raises(Stop):
        m.fit(x, y, epochs=2, batch_size=8, verbose=0, checkpoint_dir=tmp_path, checkpoint_every=1,
              callbacks=[StopAt(4)])
    m = model()
    resumed = state(m, m.fit(x, y, epochs=2, batch_size=8, verbose=0, checkpoint_dir=tmp_path, resume=True))
    assert [w.tobytes() for w in plain[0].values()] == [w.tobytes() for w in resumed[0].values()]
    assert plain[3] == resumed[3]


def test_encode_keeps_numpy_scalars_and_arrays_exact():
    tensors = {}
    obj = {"a": np.float32(0.1), "b": [1, None, 2.5], "c": (np.arange(3.0),), "d": float("nan")}
    back = ckpt.decode(json.loads(json.dumps(ckpt.encode(obj, tensors, "__x/"))), tensors)
    assert type(back["a"]) is np.float32 and back["a"] == np.float32(0.1)
    assert back["b"] == [1, None, 2.5] and isinstance(back["c"], tuple) and np.isnan(back["d"])
    assert back["c"][0].tolist() == [0.0, 1.0, 2.0]


@pytest.mark.parametrize("engine", ["reference", "fast"])
def test_stateful_layers_carried_state_is_kept(tmp_path, engine):
    """stateful=True: batch i continues the sequences of batch i-1, so a resume in the middle of an
    epoch needs the carried states; they are in the checkpoint."""
    from lstmkit.data.windows import stateful_windows
    ids = np.random.default_rng(3).integers(0, 12, size=700)
    x, y = stateful_windows(ids, batch_size=4, seq_len=10)         # 17 windows a stream: 17 batches

    def model():
        m = lk.Sequential([lk.Embedding(12, 5, input_length=10, seed=1, name="e"),
                           lk.LSTM(6, stateful=True, return_sequences=True, engine=engine, seed=2, name="s"),
                           lk.Dense(12, activation="softmax", seed=3, name="d")], seed=4)
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        return m
    fit = dict(epochs=2, batch_size=4, shuffle=False, verbose=0)
    m = model()
    plain = state(m, m.fit(x, y, **fit))
    m = model()
    with pytest.raises(Stop):
        m.fit(x, y, checkpoint_dir=tmp_path, checkpoint_every=3, callbacks=[StopAt(11)], **fit)
    st = ckpt.read(ckpt.listing(tmp_path)[-1][2])[1]
    assert (st["epoch"], st["batch"]) == (0, 9) and st["stateful"]["$dict"]      # a carried state is in it
    m = model()
    resumed = state(m, m.fit(x, y, checkpoint_dir=tmp_path, checkpoint_every=3, resume=True, **fit))
    assert_same(plain, resumed)
