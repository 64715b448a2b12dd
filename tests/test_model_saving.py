"""One-file persistence: round trips, atomic writes, clear errors on foreign files."""
import json
import os
import pickle

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import lstmkit as lk
from lstmkit import io
from lstmkit.models import saving


def test_seed_model_round_trip(tmp_path):
    model = lk.Sequential([lk.Embedding(50, 8, input_length=12, mask_zero=True), lk.LSTM(6),
                           lk.Dense(1, activation="sigmoid")], seed=0)
    model.compile(optimizer=lk.Adam(0.005, clipnorm=1.0), loss="binary_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.integers(0, 50, size=(16, 12))
    model.fit(x, rng.integers(0, 2, 16), epochs=1, verbose=0)
    path = tmp_path / "sentiment.lstmkit"
    model.save(path)
    assert os.listdir(tmp_path) == ["sentiment.lstmkit"]             # one file, no temp left behind
    back = lk.load_model(path)
    np.testing.assert_array_equal(back.predict(x), model.predict(x))
    assert back.get_config() == model.get_config()
    assert back.compile_config() == model.compile_config()
    assert isinstance(back.optimizer, lk.Adam) and back.optimizer.clipnorm == 1.0
    assert back.evaluate(x, np.ones(16))[0] == pytest.approx(model.evaluate(x, np.ones(16))[0])
    # the file is plain safetensors: weights under "<layer name>/<param>", config as JSON metadata
    tensors = load_file(str(path))
    names = [l.name for l in model.layers]
    assert {k for k in tensors if not k.startswith("__optimizer__/")} == {f"{names[0]}/embeddings", f"{names[1]}/W_x", f"{names[1]}/W_h",
                            f"{names[1]}/b_x", f"{names[2]}/W", f"{names[2]}/b"}
    meta = io.read_safetensors_metadata(path)
    assert meta["format"] == "lstmkit" and json.loads(meta["model"])["class_name"] == "Sequential"


def test_training_resumes_from_a_saved_file(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 30, size=(40, 9)), rng.integers(0, 2, 40)

    def fresh():
        m = lk.Sequential([lk.Embedding(30, 4), lk.GRU(5), lk.Dense(1, activation="sigmoid")], seed=3)
        m.compile(optimizer=lk.Adam(0.01), loss="binary_crossentropy")
        return m

    straight = fresh()
    straight.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    first = fresh()
    first.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    first.save(tmp_path / "half.lstmkit")
    resumed = lk.load_model(tmp_path / "half.lstmkit")
    assert resumed.optimizer.iterations == 5                          # Adam's moments and step count came back
    resumed.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    for a, b in zip(straight.get_weights().values(), resumed.get_weights().values()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_bidirectional_and_stack_round_trip(tmp_path):
    model = lk.Sequential([lk.Bidirectional(lk.LSTM(4, return_sequences=True), merge_mode="sum"),
                           lk.Bidirectional(lk.LSTM(3)), lk.Dropout(0.2), lk.Dense(2, activation="softmax")],
                          seed=1)
    x = np.random.default_rng(1).normal(size=(5, 7, 3)).astype(np.float32)
    want = model.predict(x)                                           # built lazily from x
    model.save(tmp_path / "bi.lstmkit")                               # not compiled: saved without compile settings
    back = lk.load_model(tmp_path / "bi.lstmkit")
    np.testing.assert_array_equal(back.predict(x), want)
    assert not back.compiled and back.layers[0].merge_mode == "sum"
    assert back.get_config() == model.get_config()


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "m.lstmkit"
    path.write_bytes(b"old contents")

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    model = lk.Sequential([lk.Dense(2, input_dim=3)])
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == b"old contents"                       # not clobbered
    assert os.listdir(tmp_path) == ["m.lstmkit"]                      # temp file removed
    monkeypatch.undo()
    model.save(path)
    assert lk.load_model(path).layers[0].units == 2


def test_loading_foreign_files_errors_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such model file"):
        lk.load_model(tmp_path / "missing.lstmkit")
    p = tmp_path / "model.pkl"
    p.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ValueError, match="expected a lstmkit model file.*found a Python pickle"):
        lk.load_model(p)
    p = tmp_path / "model.keras"
    p.write_bytes(b"PK\x03\x04" + b"\0" * 64)
    with pytest.raises(ValueError, match="expected a lstmkit model file.*found a zip archive"):
        lk.load_model(p)
    p = tmp_path / "weights.safetensors"
    save_file({"w": np.zeros(3, np.float32)}, str(p))
    with pytest.raises(ValueError, match="safetensors file but not a lstmkit model"):
        lk.load_model(p)
    p = tmp_path / "tiny"
    p.write_bytes(b"abc")
    with pytest.raises(ValueError, match="expected a lstmkit model file.*found only 3 bytes, too short"):
        lk.load_model(p)


def test_config_weight_mismatch(tmp_path):
    model = lk.Sequential([lk.Dense(2, input_dim=3, name="d")])
    path = tmp_path / "m.lstmkit"
    model.save(path)
    meta = io.read_safetensors_metadata(path)
    save_file({"d/W": np.zeros((3, 2), np.float32)}, str(path), metadata=meta)       # bias missing
    with pytest.raises(ValueError, match=r"weights missing from the file: \['d/b'\]"):
        lk.load_model(path)
    save_file({"d/W": np.zeros((4, 2), np.float32), "d/b": np.zeros(2, np.float32)}, str(path), metadata=meta)
    with pytest.raises(ValueError, match=r"d/W is \(4, 2\) in the file but \(3, 2\) in the model"):
        lk.load_model(path)
    with pytest.raises(ValueError, match="not built"):
        lk.Sequential([lk.Dense(2)]).save(tmp_path / "x.lstmkit")


def test_saved_files_get_the_usual_mode(tmp_path):
    # mkstemp creates 0600 files; a saved model must be readable as any file the user writes
    old = os.umask(0o022)
    try:
        path = tmp_path / "m.lstmkit"
        lk.Sequential([lk.Dense(2, input_dim=3)]).save(path)
    finally:
        os.umask(old)
    assert (os.stat(path).st_mode & 0o777) == 0o644
