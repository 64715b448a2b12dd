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
    s = source_steps(mask)                                                    # (B, T)
    y = np.take_along_axis(out, np.maximum(s, 0)[..., None], axis=1)         # (B, T, H) gather
    y[s < 0] = 0
    return y


def route_repeated_grads(dout, mask):
    """Backward of repeat_last_output: dout (B, T, H) -> the gradient of out,
    d out_t = sum of dout_u over the steps u that copy t (t itself and the
    masked steps after it up to the next real one); 0 at masked steps. The
    gradient of leading masked steps (constant zeros) is dropped."""
    B, T, H = dout.shape
    mask = np.asarray(mask, bool)
    grad = np.zeros_like(dout)
    # each run [real step, next real step) copies one out_t: sum each run at
    # once (add.reduceat adds in order, exactly as a loop would); runs start at
    # the real steps and at each row's start, so no run crosses rows
    starts = np.flatnonzero(mask.ravel() | (np.arange(B * T) % T == 0))     # flat (b, t) indices
    sums = np.add.reduceat(dout.reshape(B * T, H), starts, axis=0)          # (runs, H)
    real = mask.ravel()[starts]                                               # runs that start at a real step
    grad.reshape(B * T, H)[starts[real]] = sums[real]
    return grad


def last_output_rows(mask):
    """Rows that have at least one real step: a row with none returns 0 as its
    last output (no output was ever produced)."""
    return np.asarray(mask, bool).any(axis=1)
