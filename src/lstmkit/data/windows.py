"""Sliding windows over sequences: forecasting inputs/targets and
language-model training windows (truncated BPTT)."""
import numpy as np


def forecast_windows(values, target, window, horizon=1):
    """values (N, F) inputs, target (N,) -> X (M, window, F), Y (M, horizon).

    Window i reads steps i .. i+window-1 and predicts the target at steps
    i+window .. i+window+horizon-1; M = N - window - horizon + 1.
    """
    values = np.asarray(values)
    target = np.asarray(target)
    if values.ndim == 1:
        values = values[:, None]                                            # (N, 1)
    N = len(values)
    if window < 1 or horizon < 1:
        raise ValueError(f"window and horizon must be at least 1; got window={window}, horizon={horizon}")
    M = N - window - horizon + 1
    if M < 1:
        raise ValueError(f"a series of {N} steps is too short for window={window} and "
                         f"horizon={horizon}; it needs at least {window + horizon} steps")
    idx = np.arange(M)[:, None]
    X = values[idx + np.arange(window)]                                     # (M, window, F)
    Y = target[idx + window + np.arange(horizon)]                           # (M, horizon)
    return X, Y


def lm_windows(ids, seq_len, stride=None):
    """ids (N,) -> X (M, seq_len), Y (M, seq_len) with Y the next token of X.

    Non-overlapping by default (stride = seq_len): each window is one
    truncated-BPTT segment; gradients do not flow between windows.
    """
    ids = np.asarray(ids)
    stride = seq_len if stride is None else stride
    if seq_len < 1 or stride < 1:
        raise ValueError(f"seq_len and stride must be at least 1; got {seq_len}, {stride}")
    M = (len(ids) - 1 - seq_len) // stride + 1
    if M < 1:
        raise ValueError(f"a text of {len(ids)} tokens is too short for windows of {seq_len}; "
                         f"it needs at least {seq_len + 1}")
    starts = np.arange(M)[:, None] * stride
    X = ids[starts + np.arange(seq_len)]                                    # (M, T)
    Y = ids[starts + np.arange(seq_len) + 1]                                # (M, T)
    return X, Y


def chronological_split(n, test_fraction):
    """Index where the test part of n ordered items starts (the last test_fraction)."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test fraction must be in (0, 1); got {test_fraction}")
    cut = int(round(n * (1 - test_fraction)))
    return min(max(cut, 1), n - 1)
