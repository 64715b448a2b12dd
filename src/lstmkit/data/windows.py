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


def stateful_windows(ids, batch_size, seq_len):
    """A long token stream laid out for stateful training, as char-rnn does:
    ids (N,) -> X, Y (M * batch_size, seq_len), Y the next token of X.

    The stream is cut into batch_size contiguous streams of L = (N - 1) //
    batch_size tokens; stream b is ids[b*L : (b+1)*L]. Batch i (rows
    i*batch_size .. i*batch_size + batch_size - 1, which is how fit takes them
    with shuffle=False) holds window i of every stream, so row b of batch i+1
    continues row b of batch i: a stateful layer carries each row's state
    from one window to the next, and BPTT is truncated at the window
    boundaries. M = L // seq_len windows per stream; the tail of each stream
    that does not fill a window is left out.
    """
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f"ids must be one token stream (N,); got shape {ids.shape}")
    for name, v in (("batch_size", batch_size), ("seq_len", seq_len)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer; got {v!r}")
    L = (len(ids) - 1) // batch_size                                        # tokens per stream
    M = L // seq_len                                                        # windows per stream
    if M < 1:
        raise ValueError(f"a text of {len(ids)} tokens is too short for {batch_size} streams of windows "
                         f"of {seq_len}; it needs at least {batch_size * seq_len + 1}")
    streams_x = ids[:batch_size * L].reshape(batch_size, L)[:, :M * seq_len]            # (B, M*T)
    streams_y = ids[1:batch_size * L + 1].reshape(batch_size, L)[:, :M * seq_len]       # next tokens
    # (B, M, T) -> (M, B, T): window i of every stream, one batch after the other
    X = streams_x.reshape(batch_size, M, seq_len).transpose(1, 0, 2).reshape(M * batch_size, seq_len)
    Y = streams_y.reshape(batch_size, M, seq_len).transpose(1, 0, 2).reshape(M * batch_size, seq_len)
    return X, Y


def chronological_split(n, test_fraction):
    """Index where the test part of n ordered items starts (the last test_fraction)."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test fraction must be in (0, 1); got {test_fraction}")
    cut = int(round(n * (1 - test_fraction)))
    return min(max(cut, 1), n - 1)
