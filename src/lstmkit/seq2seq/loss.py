"""Per-token cross-entropy over the real target tokens, with label smoothing.

    p = softmax(z)                                  z (N, V): logits at the N real tokens
    q = (1 - eps) onehot(y) + eps / V               the smoothed target (eps = 0: onehot)
    loss = (1/N) sum_n -sum_v q_nv log p_nv         mean over real tokens (PyTorch's
                                                    CrossEntropyLoss(label_smoothing=eps))
    dloss/dz = (p - q) / N

The plain negative log-likelihood (eps = 0) comes back as well: it is what
validation and perplexity report, whatever eps training used. The work runs
on the compiled passes of the library's sparse cross-entropy (lstmkit/loss_kernels.py,
what losses.SparseCategoricalCrossentropy(from_logits=True, label_smoothing=eps)
runs), the gradient written over the logits in the same visit of each row.
"""
import numpy as np

from ..loss_kernels import xent_forward, xent_fused


def token_cross_entropy(logits, targets, label_smoothing=0.0, need_grad=True):
    """logits (N, V) (overwritten by the gradient when need_grad), targets (N,) ->
    (mean smoothed loss, mean NLL, dlogits or None)."""
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1); got {label_smoothing!r}")
    z = np.ascontiguousarray(logits)
    y = np.ascontiguousarray(targets, dtype=np.int64)
    N, V = z.shape
    if y.shape != (N,):
        raise ValueError(f"targets must have shape ({N},); got {y.shape}")
    if N == 0:
        raise ValueError("no real target tokens to score")
    lse, losses, nlls = (np.empty(N, np.float64) for _ in range(3))
    if need_grad:                                                    # loss and (p - q) / N over z itself,
        xent_fused(z, y, float(label_smoothing), np.full(N, 1.0 / N), lse, losses, nlls)  # one pass per row
    else:
        xent_forward(z, y, float(label_smoothing), lse, losses, nlls)
    return float(losses.mean()), float(nlls.mean()), (z if need_grad else None)


def reference_cross_entropy(logits, targets, label_smoothing=0.0):
    """The same in plain NumPy, equation by equation (for tests)."""
    z = np.asarray(logits, np.float64)
    N, V = z.shape
    shifted = z - z.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))     # log softmax
    nll = -logp[np.arange(N), targets]
    smooth = -logp.mean(axis=1)
    loss = (1 - label_smoothing) * nll + label_smoothing * smooth
    q = np.full((N, V), label_smoothing / V)
    q[np.arange(N), targets] += 1 - label_smoothing
    return loss.mean(), nll.mean(), (np.exp(logp) - q) / N
