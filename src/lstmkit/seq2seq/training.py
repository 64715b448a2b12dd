"""Training an encoder-decoder: batches of similar length, teacher forcing,
the per-token loss, clipping, validation loss per epoch and early stopping.

Sentences are lists of token ids; a target list ends with EOS. A batch pads
its sentences (id 0, after the sentence) to its own longest, so sorting
sentences of similar length into one batch ("bucketing") saves most of the
padding: the pairs are shuffled, cut into pools of 32 batches, each pool sorted
by length and cut into batches, and the batches shuffled again.
"""
import math
import sys
import time

import numpy as np
from tqdm.auto import tqdm

from ..data.subwords import PAD
from .loss import token_cross_entropy
from .model import shift_right


def pad(seqs, dtype=np.int64):
    """Lists of ids -> (B, longest) array, padding 0 after each."""
    T = max(len(s) for s in seqs)
    out = np.zeros((len(seqs), T), dtype)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = s
    return out


def make_batches(src, tgt, batch_size, rng=None, pool=32):
    """Index arrays, one per batch; rng None keeps the order (sorted by length, for evaluation)."""
    n = len(src)
    if rng is None:
        order = np.array(sorted(range(n), key=lambda i: (len(src[i]), len(tgt[i]))), np.int64)
        return [order[k:k + batch_size] for k in range(0, n, batch_size)]
    order = rng.permutation(n)
    batches = []
    size = batch_size * pool
    for k in range(0, n, size):
        chunk = order[k:k + size]
        chunk = chunk[np.argsort([len(src[i]) for i in chunk], kind="stable")]
        batches += [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def batch_arrays(src, tgt, idx):
    """(src (B, S), tgt_in (B, T), tgt_out (B, T)) for the pairs idx."""
    s = pad([src[i] for i in idx])
    tgt_out = pad([tgt[i] for i in idx])
    return s, shift_right(tgt_out), tgt_out


def train_batch(model, src, tgt_in, tgt_out, optimizer, label_smoothing=0.0):
    """One update. Returns (smoothed loss, NLL per token, real target tokens)."""
    out = model.forward(src, tgt_in, training=True)                             # (B, T, H)
    real = tgt_out != PAD                                                       # (B, T)
    logits = model.output_layer.forward_rows(out, real)                         # (N, V), real tokens only
    loss, nll, dlogits = token_cross_entropy(logits, tgt_out[real], label_smoothing)
    dout = model.output_layer.backward_logits(dlogits)                          # (B, T, H), 0 at padding
    model.backward(dout)
    optimizer.apply(model.params, model.grads)
    return loss, nll, int(real.sum())


def evaluate_loss(model, src, tgt, batch_size=64):
    """NLL per real target token (nats) over all pairs, no dropout."""
    total, count = 0.0, 0
    for idx in make_batches(src, tgt, batch_size):
        s, tin, tout = batch_arrays(src, tgt, idx)
        out = model.forward(s, tin, training=False)
        real = tout != PAD
        _, nll, _ = token_cross_entropy(model.output_layer.forward(out[real]), tout[real], 0.0, need_grad=False)
        n = int(real.sum())
        total += nll * n
        count += n
    return total / max(count, 1)


def fit(model, train, val, optimizer, epochs=10, batch_size=64, label_smoothing=0.0, patience=None,
        seed=0, verbose=1, log=print, on_epoch=None):
    """train, val: (src lists, tgt lists). Returns the history {"loss", "val_loss",
    "tokens_per_s", "epoch_seconds"}; with patience, stops after that many epochs
    without a better validation loss and restores the best epoch's weights."""
    rng = np.random.default_rng(seed)
    model.dropout_rng = np.random.default_rng([seed, 1])
    src, tgt = train
    hist = {"loss": [], "train_nll": [], "val_loss": [], "tokens_per_s": [], "epoch_seconds": []}
    best, best_weights, waited = math.inf, None, 0
    for epoch in range(epochs):
        batches = make_batches(src, tgt, batch_size, rng)
        bar = tqdm(batches, desc=f"Epoch {epoch + 1}/{epochs}", file=sys.stderr, disable=verbose != 1,
                   unit="batch", dynamic_ncols=True, leave=True)
        t0, loss_sum, nll_sum, tokens = time.perf_counter(), 0.0, 0.0, 0
        for b, idx in enumerate(bar):
            loss, nll, n = train_batch(model, *batch_arrays(src, tgt, idx), optimizer, label_smoothing)
            if not np.isfinite(loss):
                bar.close()
                raise FloatingPointError(f"the loss became {loss} at epoch {epoch + 1}, batch {b + 1} of "
                                         f"{len(batches)}; try a lower learning rate or clipping")
            loss_sum += loss * n
            nll_sum += nll * n
            tokens += n
            bar.set_postfix(loss=f"{loss_sum / tokens:.4f}", refresh=False)
        seconds = time.perf_counter() - t0
        bar.close()
        val_loss = evaluate_loss(model, *val, batch_size=batch_size) if val is not None else math.nan
        hist["loss"].append(loss_sum / tokens)
        hist["train_nll"].append(nll_sum / tokens)
        hist["val_loss"].append(val_loss)
        hist["tokens_per_s"].append(tokens / seconds)
        hist["epoch_seconds"].append(seconds)
        if verbose:
            log(f"epoch {epoch + 1}/{epochs}: loss {loss_sum / tokens:.4f}, val_loss {val_loss:.4f} "
                f"(perplexity {math.exp(min(val_loss, 50)):.1f}), {tokens / seconds:.0f} target tokens/s")
        if on_epoch is not None:
            on_epoch(epoch, hist)
        if patience and val is not None:
            if val_loss < best:
                best, waited = val_loss, 0
                best_weights = {k: v.copy() for k, v in model.params.items()}
            else:
                waited += 1
                if waited >= patience:
                    log(f"early stop: no better validation loss for {patience} epochs")
                    break
    if best_weights is not None and hist["val_loss"][-1] > best:
        model.set_weights(best_weights)
        hist["restored_epoch"] = int(np.argmin(hist["val_loss"])) + 1
    return hist
