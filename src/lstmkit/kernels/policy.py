"""The fast engine's strategy choices, made in one place for every cell.

A call of a recurrent kernel makes two choices, and this module makes them
(the kernels only follow `plan()`):

1. **Fuse the input product or not.** Fused, each training step multiplies
   the row [x_t, h_{t-1}, 1] by the stacked [W_x; W_h; b] (one product gives
   the whole preactivation, and backward gets [dx_t, dh_{t-1}] from one
   product per step). Unfused, x W_x + b for all steps is one product before
   the loop, the step multiplies h_{t-1} W_h alone, and dx is one product
   after the loop.
2. **How many threads.** The batch rows of a time loop are split into
   chunks, one per thread, each chunk running the whole loop; a
   whole-sequence product is split by its output rows.

Every product runs over weights packed once per call (kernels/gemm.py): this
used to be a third choice (BLAS below H = 128), but the packed product is at
least as fast at every size measured, and BLAS would start threads of its own.

The thresholds, and the measurements they come from (docs/kernels.md has
the tables):

* FUSE_INPUT_MAX_HIDDEN = 128. Fused pays when the stacked operand is small:
  at H = 32 the thin whole-sequence products (16000 x 32 by 32 x 32) ran at
  20-40 GFLOP/s in OpenBLAS while the per-step ones ran at about 100, and
  the A-sized LSTM layer went from 15.3 to 9.0-9.3 ms forward+backward. At
  large H one product over all T*B rows reuses each weight T*B times, while
  the fused step re-reads the (D+H+1) x 4H weights every step: B (H = 512)
  and D (H = 256) were 4-6% faster unfused. The GRU is never fused: its
  candidate needs x W_xn and h W_hn apart (r multiplies only the second).
* PARALLEL_MIN_BATCH = 16, PARALLEL_MIN_STATE = 8192, MIN_CHUNK_ROWS = 4.
  A time loop splits from 16 rows on, or earlier when a step's state is
  big (rows x H >= 8192), with at least 4 rows per chunk: at B = 128,
  H = 32 a step took 30-33 us on one thread, 18-21 us split in two, and
  batch 32 split in two took the A-sized layer from 10.6-11.6 to 9.0-9.3 ms;
  below 16 rows each thread's share of a step is too small to pay for it.
* PARALLEL_MIN_WORK = 2^22 multiply-adds (about 20 us of one core): smaller
  whole-sequence products stay on one thread. Counted in multiply-adds, not
  output numbers: a weight gradient has few outputs ((D+H+1) x H) and a
  deep sum (T*B), and counted by its outputs it stayed on one thread -- in
  workload D that was 140 of about 450 ms per step.
* SKIP_PADDING = True. A training loop over trailing padding computes only
  the real rows of each step (skeleton.forward_rows_live). Its extra cost is
  a few copies (the rows put in length order and back, and the weight
  gradients' operands in their original order); it is used whenever the
  batch has any padded step.
* BLAS_MIN_WORK = 2^25 multiply-adds, BLAS_BLOCKS = 2, BLAS_ALIGN = 64.
  NumPy's products outside the engine (Dense, threads.blas_matmul) run as
  2 row blocks from 2^25 multiply-adds on, on two threads when BLAS runs
  one. The blocks are fixed by the shape alone: OpenBLAS's float32 results
  depend on which rows share a call, so a thread-count split would change
  the bits. Measured (2 threads, run at real-time priority on the loaded
  2-core VM, one product of K = N = 256): 2^24 151 us whole against 157 us
  in two blocks (no gain: a hand-off to a sleeping pool thread costs about
  0.15-0.3 ms on this VM, where a sleeping vCPU must be woken), 2^25 280
  against 219, 2^26.3 715 against 473. Workload E's output layer
  (746 x 256 x 4000): forward 7.0 -> 4.2 ms, backward 14.0 -> 8.1 ms.
* LOSS_MIN_ELEMENTS = 2^20 logits: the cross-entropy passes
  (loss_kernels.py) split their rows over the engine's threads from about
  1 ms of work on (E: 746 x 4000 logits). They used numba's prange before,
  whose OpenMP threads spin after each pass and held the second core while
  the engine's pool thread waited to run the next product.
* OPTIM_MIN_ELEMENTS = 2^16: Adam's update (kernels/optim.adam_range) of a
  parameter array with at least 2^16 numbers splits its elements over the
  engine's threads. It streams four arrays and is bound by one core's memory
  bandwidth (about 2.5 ns per float32 element, 11 GB/s); measured on 2
  threads (real-time priority, loaded VM): 2^15 82 -> 76 us, 2^16 161 ->
  114 us, 2^18 648 -> 379 us, 2^20 2.6 -> 1.34 ms. Each element is updated
  alone, so the split changes no number.
* ATTENTION_MIN_WORK = 2^22 multiply-adds per stacked product (B Tq Tv d):
  the Attention layer's dot and general scores, softmax and products with
  the value run in batch-row parts on the engine's threads (NumPy releases
  the GIL inside them), the sums over the whole batch after. The threshold
  is PARALLEL_MIN_WORK's (about 20 us of one core), not tuned apart.
  Workload E (B 64, 20 x 20 steps, 256 features; 2 threads, real-time
  priority, 15 alternating rounds): the training step 66.0 -> 64.0 ms.
These were set on the 2-core development machine from the measurements
above, not tuned on others.
"""
from contextlib import contextmanager
from dataclasses import dataclass

FUSE_INPUT_MAX_HIDDEN = 128
PARALLEL_MIN_BATCH = 16
PARALLEL_MIN_STATE = 8192
MIN_CHUNK_ROWS = 4
PARALLEL_MIN_WORK = 1 << 22
SKIP_PADDING = True
BLAS_MIN_WORK = 1 << 25
BLAS_BLOCKS = 2
BLAS_ALIGN = 64
LOSS_MIN_ELEMENTS = 1 << 20
OPTIM_MIN_ELEMENTS = 1 << 16
ATTENTION_MIN_WORK = 1 << 22

FUSABLE = {"lstm": True, "simple_rnn": True, "gru": False}

_forced = {}


@dataclass(frozen=True)
class Plan:
    fuse_input: bool          # per step [x_t, h_{t-1}, 1] W_xh (else x W_x before the loop)
    chunks: int               # threads sharing the time loop's batch rows


def fuse_input(cell, H):
    if "fuse_input" in _forced:
        return _forced["fuse_input"] and FUSABLE[cell]
    return FUSABLE[cell] and H < FUSE_INPUT_MAX_HIDDEN


def loop_chunks(B, H, threads):
    """How many threads share a time loop over B rows of hidden size H."""
    if "chunks" in _forced:
        return max(1, min(_forced["chunks"], B))
    if B < PARALLEL_MIN_BATCH and B * H < PARALLEL_MIN_STATE:
        return 1
    return max(1, min(threads, B // MIN_CHUNK_ROWS))


def product_threads(n_rows, work, threads):
    """How many threads share a whole-sequence product with n_rows output
    rows and `work` multiply-adds."""
    if "chunks" in _forced:
        return max(1, min(_forced["chunks"], n_rows))
    if work < PARALLEL_MIN_WORK:
        return 1
    return max(1, min(threads, n_rows // MIN_CHUNK_ROWS))


def blas_blocks(n_rows, work):
    """Row blocks of a NumPy (BLAS) product with n_rows output rows and `work`
    multiply-adds (threads.blas_matmul): fixed by the shape, not the threads,
    because the blocks decide the last bits of float32 results."""
    if "chunks" in _forced:
        return max(1, _forced["chunks"])
    if work < BLAS_MIN_WORK:
        return 1
    return max(1, min(BLAS_BLOCKS, n_rows // BLAS_ALIGN))


def optim_threads(n, threads):
    """How many threads share an optimizer's update of n numbers."""
    if "chunks" in _forced:
        return max(1, min(_forced["chunks"], n))
    if n < OPTIM_MIN_ELEMENTS:
        return 1
    return max(1, threads)


def attention_threads(n_rows, work, threads):
    """How many threads share an attention layer's forward or backward over
    n_rows batch rows (layers/attention.py); `work`: the multiply-adds of one
    of its stacked products."""
    if "chunks" in _forced:
        return max(1, min(_forced["chunks"], n_rows))
    if work < ATTENTION_MIN_WORK:
        return 1
    return max(1, min(threads, n_rows))


def loss_threads(n_rows, n_logits, threads):
    """How many threads share a cross-entropy pass over n_rows rows
    (loss_kernels.py)."""
    if "chunks" in _forced:
        return max(1, min(_forced["chunks"], n_rows))
    if n_logits < LOSS_MIN_ELEMENTS:
        return 1
    return max(1, min(threads, n_rows))


def skip_padding():
    """Whether a training loop over trailing padding runs only the real rows."""
    return _forced.get("skip_padding", SKIP_PADDING)


def plan(cell, B, H, threads):
    return Plan(fuse_input(cell, H), loop_chunks(B, H, threads))


@contextmanager
def forced(**choices):
    """Force choices for every cell inside the block, whatever the sizes:
    fuse_input=True/False (ignored for cells that cannot fuse), chunks=n
    (threads sharing every loop and product), skip_padding=True/False. For
    tests: small shapes reach every path."""
    unknown = set(choices) - {"fuse_input", "chunks", "skip_padding"}
    if unknown:
        raise ValueError(f"policy.forced: unknown choices {sorted(unknown)}")
    saved = dict(_forced)
    _forced.update(choices)
    try:
        yield
    finally:
        _forced.clear()
        _forced.update(saved)
