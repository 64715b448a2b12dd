"""fit / evaluate / predict: History keys, validation, weights, callbacks,
reproducibility from a seed, and the errors a user meets first."""
import csv

import numpy as np
import pytest

import lstmkit as lk


def small_task(n=64, T=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, T, 2)).astype(np.float32)
    y = (x[:, :, 0].sum(1) > 0).astype(np.float32)               # sign of a sum: easy to learn
    return x, y


def small_model(seed=0, **kw):
    model = lk.Sequential([lk.LSTM(4, **kw), lk.Dense(1, activation="sigmoid")], seed=seed)
    model.compile(optimizer=lk.Adam(0.02), loss="binary_crossentropy", metrics=["accuracy"])
    return model


def test_fit_history_evaluate_predict(capsys):
    x, y = small_task()
    model = small_model()
    history = model.fit(x, y, epochs=4, batch_size=16, validation_split=0.25, verbose=1)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 4 for v in history.history.values()) and history.epoch == [0, 1, 2, 3]
    assert history.history["loss"][-1] < history.history["loss"][0]
    err = capsys.readouterr().err
    assert "Epoch 4/4" in err and "loss=" in err and "accuracy=" in err   # tqdm bar on stderr
    loss, acc = model.evaluate(x[48:], y[48:])
    # validation_split holds out the last 25 %, unshuffled: evaluate on them gives val_* of the last epoch
    assert loss == pytest.approx(history.history["val_loss"][-1], rel=1e-6)
    assert acc == pytest.approx(history.history["val_accuracy"][-1])
    p = model.predict(x, batch_size=7)
    assert p.shape == (64, 1) and np.all((p > 0) & (p < 1))
    assert acc == pytest.approx(((p[48:, 0] > 0.5) == y[48:]).mean())
    model.fit(x, y, epochs=1, verbose=0)
    assert capsys.readouterr().err == ""                             # verbose=0 is silent


def test_seed_makes_runs_identical():
    x, y = small_task()
    runs = []
    for _ in range(2):
        model = lk.Sequential([lk.Embedding(5, 3), lk.LSTM(4, dropout=0.2, recurrent_dropout=0.2), lk.Dropout(0.3),
                               lk.Dense(1, activation="sigmoid")], seed=7)
        model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
        ids = (np.abs(x[:, :, 0]) * 2).astype(int) % 5
        h = model.fit(ids, y, epochs=2, batch_size=8, verbose=0, seed=3)
        runs.append((model.get_weights(), h.history))
    (w1, h1), (w2, h2) = runs
    assert h1 == h2
    assert [np.array_equal(w1[k1], w2[k2]) for k1, k2 in zip(w1, w2)] == [True] * len(w1)
    other = lk.Sequential([lk.Embedding(5, 3), lk.LSTM(4), lk.Dense(1)], seed=8)
    assert not np.array_equal(list(other.get_weights().values())[1], list(w1.values())[1])


def test_class_weight_scales_the_loss():
    x, y = small_task(32)
    model = small_model()
    base = model.evaluate(x, y)[0]
    p = model.predict(x)[:, 0]
    per = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    w = np.where(y == 1, 3.0, 0.5)
    assert model.evaluate(x, y, sample_weight=w)[0] == pytest.approx((w * per).mean(), rel=1e-5)
    assert base == pytest.approx(per.mean(), rel=1e-5)
    # class_weight in fit is the same as these sample weights: one full-batch SGD step each
    steps = []
    for kw in ({"class_weight": {0: 0.5, 1: 3.0}}, {"sample_weight": w}):
        m = small_model()
        m.compile(optimizer=lk.SGD(0.1), loss="binary_crossentropy")
        h = m.fit(x, y, epochs=1, batch_size=32, verbose=0, shuffle=False, **kw)
        steps.append((h.history["loss"][0], m.get_weights()))
    assert steps[0][0] == pytest.approx((w * per).mean(), rel=1e-5)
    for a, b in zip(steps[0][1].values(), steps[1][1].values()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"class_weight has no weight for classes \[1\]"):
        small_model().fit(x, y, class_weight={0: 1.0}, verbose=0)


def test_early_stopping_restores_best_weights():
    x, y = small_task()
    model = small_model()
    seen = []

    class Record(lk.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append((logs["val_loss"], self.model.get_weights()))

    # a huge learning rate makes validation loss bounce, so patience runs out
    model.compile(optimizer=lk.SGD(50.0), loss="binary_crossentropy")
    stop = lk.EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    h = model.fit(x, y, epochs=30, batch_size=8, validation_split=0.25, verbose=0, callbacks=[stop, Record()])
    assert stop.stopped_epoch is not None and len(h.history["loss"]) == stop.stopped_epoch + 1 < 30
    best = int(np.argmin(h.history["val_loss"]))
    assert best == stop.best_epoch and len(h.history["loss"]) == best + 3   # patience 1: stop 2 epochs after
    for k, v in model.get_weights().items():
        np.testing.assert_array_equal(v, seen[best][1][k])


def test_checkpoint_csv_and_lr_scheduler(tmp_path):
    x, y = small_task()
    model = small_model()
    rates = []

    class Rate(lk.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            rates.append(self.model.optimizer.current_learning_rate)

    ckpt = lk.ModelCheckpoint(str(tmp_path / "best.lstmkit"), monitor="val_loss", save_best_only=True)
    every = lk.ModelCheckpoint(str(tmp_path / "e{epoch}.lstmkit"), monitor="val_loss")
    sched = lk.LearningRateScheduler(lambda epoch, lr: 0.02 * 0.5 ** epoch)
    h = model.fit(x, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0,
                  callbacks=[ckpt, every, sched, Rate(), lk.CSVLogger(tmp_path / "log.csv")])
    assert rates == [0.02, 0.01, 0.005]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.lstmkit", "e1.lstmkit", "e2.lstmkit",
                                                          "e3.lstmkit", "log.csv"]
    best = int(np.argmin(h.history["val_loss"]))
    xv = x[48:]
    np.testing.assert_allclose(lk.load_model(tmp_path / "best.lstmkit").predict(xv),
                               lk.load_model(tmp_path / f"e{best + 1}.lstmkit").predict(xv))
    rows = list(csv.DictReader(open(tmp_path / "log.csv")))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert float(rows[2]["val_loss"]) == pytest.approx(h.history["val_loss"][2])


def test_clear_errors():
    x, y = small_task(10)
    model = lk.Sequential([lk.LSTM(3), lk.Dense(1)])
    with pytest.raises(RuntimeError, match="must be compiled before training"):
        model.fit(x, y)
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match=r"same number of samples; got len\(x\)=10 and len\(y\)=9"):
        model.fit(x, y[:9])
    with pytest.raises(ValueError, match="validation_split must be in"):
        model.fit(x, y, validation_split=1.5)
    with pytest.raises(ValueError, match="batch_size must be a positive integer; got 0"):
        model.fit(x, y, batch_size=0)
    with pytest.raises(ValueError, match="compile needs a loss"):
        model.compile(optimizer="adam")
    emb = lk.Sequential([lk.Embedding(20, 3), lk.LSTM(2), lk.Dense(1)])
    emb.compile(optimizer="adam", loss="mse")
    with pytest.raises(TypeError, match="expects integer token ids"):
        emb.fit(x[:, :, 0], y, verbose=0)                            # real-valued features, not ids
    with pytest.raises(ValueError, match=r"token id 25 is out of range.*input_dim=20"):
        emb.fit(np.full((10, 4), 25), y, verbose=0)
    with pytest.raises(ValueError, match="used twice"):
        layer = lk.Dense(2)
        lk.Sequential([layer, layer])


def test_nan_loss_stops_with_epoch_and_batch():
    x, y = small_task(32)
    model = lk.Sequential([lk.LSTM(3), lk.Dense(1)], seed=0)
    model.compile(optimizer=lk.SGD(1e6), loss="mse")
    with pytest.raises(FloatingPointError, match=r"at epoch \d+, batch \d+ of 4"):
        with np.errstate(all="ignore"):
            model.fit(x, y * 1e3, epochs=20, batch_size=8, verbose=0)


def test_per_step_targets_with_padding():
    rng = np.random.default_rng(0)
    x = rng.integers(1, 6, size=(64, 8))
    lengths = rng.integers(3, 9, size=64)
    x[np.arange(8)[None, :] >= lengths[:, None]] = 0                 # pad the tails with id 0
    y = (x + 1) % 6                                                   # per step: the next id
    model = lk.Sequential([lk.Embedding(6, 8, mask_zero=True), lk.LSTM(16, return_sequences=True),
                           lk.Dense(6, activation="softmax")], seed=0)
    model.compile(optimizer=lk.Adam(0.05), loss=lk.SparseCategoricalCrossentropy(reduction="sum_over_time"),
                  metrics=["accuracy"])
    model.fit(x, y, epochs=15, batch_size=16, verbose=0)
    loss, acc = model.evaluate(x, y)
    p = model.predict(x)
    real = x != 0
    assert acc == pytest.approx((p.argmax(-1) == y)[real].mean())   # padded steps do not count
    assert acc > 0.95


def test_train_on_batch_and_predict_on_batch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 5, 3)).astype(np.float32)
    y = (x[:, 0, 0] > 0).astype(np.float32)
    model = lk.Sequential([lk.LSTM(8, input_shape=(5, 3)), lk.Dense(1, activation="sigmoid")], seed=0)
    model.compile(optimizer=lk.optimizers.Adam(0.05), loss="binary_crossentropy")
    losses_seen = [model.train_on_batch(x, y) for _ in range(30)]
    assert losses_seen[-1] < 0.5 * losses_seen[0]                    # it learns
    np.testing.assert_allclose(model.predict_on_batch(x), model.predict(x, batch_size=4), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="len\\(x\\)=16 and len\\(y\\)=3"):
        model.train_on_batch(x, y[:3])
