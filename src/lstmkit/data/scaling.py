"""Standard scaling per column, fitted on the training part only (so no
information from the test period leaks into training)."""
import numpy as np


class StandardScaler:
    def __init__(self, mean=None, std=None):
        self.mean = None if mean is None else np.asarray(mean, np.float64)
        self.std = None if std is None else np.asarray(std, np.float64)

    def fit(self, x):
        x = np.asarray(x, np.float64)                                       # (N, F)
        self.mean = x.mean(axis=0)                                          # (F,)
        std = x.std(axis=0)
        self.std = np.where(std > 0, std, 1.0)   # a constant column stays finite
        return self

    def transform(self, x):
        return (np.asarray(x, np.float64) - self.mean) / self.std

    def inverse_transform(self, x, column=None):
        """Undo the scaling; column=k for values of one column (e.g. the target)."""
        x = np.asarray(x, np.float64)
        if column is None:
            return x * self.std + self.mean
        return x * self.std[column] + self.mean[column]

    def to_dict(self):
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d):
        return cls(d["mean"], d["std"])
