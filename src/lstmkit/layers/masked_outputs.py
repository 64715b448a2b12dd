"""What a recurrent layer returns at a masked step of its output sequence.

At a masked step the state is carried unchanged; the question is what goes in
the output sequence there. Two conventions (Keras's ``zero_output_for_mask``):

    zero_output_for_mask=False (Keras's default): repeat the previous output,
        y_t = y_{s(t)}, s(t) = the last real step at or before t in the order
        the layer reads the sequence; 0 while no real step has been read yet.
    zero_output_for_mask=True: y_t = 0 (PyTorch's packed sequences: padded
        outputs are zeros, h_n is the last real step's state).

"Before" is reading order: with go_backwards the returned sequence is in
reading order too (reversed, as Keras returns it), so the repetition runs
forwards through it. The leading zeros follow Keras's TensorFlow and PyTorch
backends (the previous output starts at zeros); its JAX and NumPy backends
repeat the initial state h_0 there instead -- the same numbers unless
initial_state is non-zero and the first steps read are masked.

The engines write 0 at masked steps; these helpers turn that into the
repeated form (forward) and send each repeated step's gradient to the real
step it copies (backward). Both work on (B, T, H) in reading order.
"""
import numpy as np


def source_steps(mask):
    """mask (B, T) in reading order -> s (B, T) int: the last real step at or
    before t, -1 where there is none yet."""
    T = mask.shape[1]
    idx = np.where(mask, np.arange(T), -1)                                   # (B, T)
    return np.maximum.accumulate(idx, axis=1)


def repeat_last_output(out, mask):
    """out (B, T, H) with anything at masked steps -> y_t = out_{s(t)}, 0 where s(t) = -1."""
    B, T, H = out.shape
    masked = ~np.asarray(mask, bool)
    if not masked.any():
        return out
    s = source_steps(mask)                                                    # (B, T)
    y = np.array(out, order="C")                                              # (B, T, H) a copy
    rows = y.reshape(B * T, H)
    src = (np.arange(B)[:, None] * T + s)[masked]                            # flat source row per masked step
    dst = np.flatnonzero(masked.ravel())
    copy = s[masked] >= 0                                                     # a real step was read before
    rows[dst[copy]] = rows[src[copy]]                                         # repeat the real step
    rows[dst[~copy]] = 0                                                      # nothing read yet
    return y


def route_repeated_grads(dout, mask):
    """Backward of repeat_last_output: dout (B, T, H) -> the gradient of out,
    d out_t = dout_t plus the dout of the masked steps that copy t (those after
    it up to the next real step); 0 at masked steps. The gradient of leading
    masked steps (constant zeros) is dropped."""
    B, T, H = dout.shape
    mask = np.asarray(mask, bool)
    grad = np.where(mask[..., None], dout, 0).astype(dout.dtype, copy=False)   # real steps: their own
    s = source_steps(mask)
    copies = (~mask) & (s >= 0)                                               # masked steps that repeat one
    if copies.any():
        flat = np.flatnonzero(copies.ravel())
        # the copies of one real step are consecutive (a run never crosses a row: a row's
        # first step is real or copies nothing): sum each run at once, in order
        run_starts = np.concatenate([[0], np.flatnonzero(np.diff(flat) != 1) + 1])
        sums = np.add.reduceat(dout.reshape(B * T, H)[flat], run_starts, axis=0)   # (runs, H)
        src = (np.arange(B)[:, None] * T + s).ravel()[flat[run_starts]]
        grad.reshape(B * T, H)[src] += sums                                   # sources are distinct
    return grad


def last_output_rows(mask):
    """Rows that have at least one real step: a row with none returns 0 as its
    last output (no output was ever produced)."""
    return np.asarray(mask, bool).any(axis=1)
