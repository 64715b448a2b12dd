"""Callbacks: hooks the training loop calls at the start and end of training,
of each epoch and of each batch. ``logs`` holds the epoch's numbers under the
History keys (loss, accuracy, val_loss, val_accuracy, ...)."""
import csv
import math
import os


class Callback:
    def set_model(self, model):
        self.model = model

    def on_train_begin(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_batch_end(self, batch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_train_end(self, logs=None): pass

    # what a checkpoint keeps of a callback (fit(checkpoint_dir=...)): the attributes named
    # in STATE, read after on_train_begin and put back on resume
    STATE = ()

    def get_state(self):
        return {k: getattr(self, k, None) for k in self.STATE} if self.STATE else None

    def set_state(self, state):
        for k, v in state.items():
            setattr(self, k, v)


class History(Callback):
    """history.history: {"loss": [...], "val_loss": [...], ...}, one entry per epoch."""
    STATE = ("history", "epoch")

    def __init__(self):
        self.history, self.epoch = {}, []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)


def _better(mode, monitor):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max'; got {mode!r}")
    if mode == "auto":
        mode = "max" if ("acc" in monitor or monitor.endswith("auc")) else "min"
    return (lambda a, b, d=0.0: a > b + d) if mode == "max" else (lambda a, b, d=0.0: a < b - d)


def _monitored(logs, monitor):
    if monitor not in logs:
        raise KeyError(f"monitor={monitor!r} is not among the logged values {sorted(logs)}; "
                       f"(val_* needs validation_split or validation_data)")
    return logs[monitor]


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by min_delta for `patience` epochs;
    restore_best_weights puts back the weights of the best epoch at the end."""
    STATE = ("best", "best_weights", "best_epoch", "wait", "stopped_epoch")

    def __init__(self, monitor="val_loss", patience=0, min_delta=0.0, mode="auto",
                 restore_best_weights=False):
        self.monitor, self.patience, self.min_delta = monitor, int(patience), abs(float(min_delta))
        self.better = _better(mode, monitor)
        self.restore_best_weights = restore_best_weights
        self.stopped_epoch = None

    def on_train_begin(self, logs=None):
        self.best, self.best_weights, self.best_epoch, self.wait = None, None, None, 0

    def on_epoch_end(self, epoch, logs=None):
        value = _monitored(logs, self.monitor)
        if self.best is None or self.better(value, self.best, self.min_delta):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model after each epoch (to filepath, which may hold {epoch} and
    log keys such as {val_loss:.3f}); with save_best_only only when `monitor` improves."""
    rank_zero_only = True               # data-parallel training: only rank 0 writes files
    STATE = ("best",)

    def __init__(self, filepath, monitor="val_loss", save_best_only=False, mode="auto"):
        self.filepath, self.monitor, self.save_best_only = str(filepath), monitor, save_best_only
        self.better = _better(mode, monitor)
        self.best = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            value = _monitored(logs, self.monitor)
            if self.best is not None and not self.better(value, self.best):
                return
            self.best = value
        self.model.save(self.filepath.format(epoch=epoch + 1, **logs))


class CSVLogger(Callback):
    """Write one row per epoch: epoch, then the logged values."""
    rank_zero_only = True

    def __init__(self, filename, separator=",", append=False):
        self.filename, self.separator, self.append = str(filename), separator, append

    def on_train_begin(self, logs=None):
        exists = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._writer, self._header_written = None, exists

    def on_epoch_end(self, epoch, logs=None):
        keys = sorted(logs or {})
        if self._writer is None:
            self._writer = csv.writer(self._file, delimiter=self.separator)
            if not self._header_written:
                self._writer.writerow(["epoch"] + keys)
        self._writer.writerow([epoch] + [logs[k] for k in keys])
        self._file.flush()

    def on_train_end(self, logs=None):
        self._file.close()


class LearningRateScheduler(Callback):
    """At the start of each epoch set the learning rate to schedule(epoch, lr)."""

    def __init__(self, schedule):
        self.schedule = schedule

    def on_epoch_begin(self, epoch, logs=None):
        opt = self.model.optimizer
        lr = float(self.schedule(epoch, opt.current_learning_rate))
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"the schedule returned learning_rate={lr!r} for epoch {epoch}; it must be positive")
        opt.learning_rate = lr

