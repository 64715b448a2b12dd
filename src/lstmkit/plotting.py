"""PNG plots for the applications (matplotlib, Agg backend: no display needed).

Every figure is written atomically (temporary file, then rename). Labels with
characters the available fonts cannot draw (Chinese, without a CJK font
installed) fall back to a CJK font if one is found, else to '?' per glyph.
"""
import functools
import warnings

import numpy as np

from .io import atomic_path

_CJK_HINTS = ("CJK", "WenQuanYi", "Noto Sans SC", "Noto Serif SC", "SimHei", "Source Han", "AR PL",
              "Droid Sans Fallback", "Microsoft YaHei")


def _plt():
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


@functools.lru_cache(maxsize=None)
def _fonts():
    """(font family to use, set of code points it can draw)."""
    from matplotlib import font_manager, ft2font
    for f in font_manager.fontManager.ttflist:
        if any(h.lower() in f.name.lower() for h in _CJK_HINTS):
            try:
                return f.name, frozenset(ft2font.FT2Font(f.fname).get_charmap())
            except Exception:
                continue
    path = font_manager.findfont("DejaVu Sans")
    return "DejaVu Sans", frozenset(ft2font.FT2Font(path).get_charmap())


def drawable(label):
    """The label with every character the font cannot draw replaced by '?'."""
    _, chars = _fonts()
    return "".join(c if ord(c) in chars or c.isspace() else "?" for c in label)


def save(fig, path):
    plt = _plt()
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")              # missing-glyph warnings: labels are already cleaned
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def history(hist, path, title="training"):
    """Loss (and accuracy, if logged) per epoch, training and validation."""
    plt = _plt()
    keys = [k for k in ("loss", "accuracy") if k in hist]
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.5), squeeze=False)
    for ax, k in zip(axes[0], keys):
        epochs = np.arange(1, len(hist[k]) + 1)
        ax.plot(epochs, hist[k], "o-", label="train")
        if "val_" + k in hist:
            ax.plot(epochs, hist["val_" + k], "s-", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(k)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return save(fig, path)


def confusion(matrix, labels, path, title="confusion matrix"):
    plt = _plt()
    m = np.asarray(matrix)                                                   # (K, K) rows: true
    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2.5, 1.2 * len(labels) + 2))
    im = ax.imshow(m, cmap="Blues")
    ticks = [drawable(str(l)) for l in labels]
    ax.set_xticks(range(len(labels)), ticks, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), ticks)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (r, c), v in np.ndenumerate(m):
        ax.text(c, r, str(v), ha="center", va="center",
                color="white" if v > m.max() / 2 else "black")
    fig.colorbar(im, ax=ax)
    ax.set_title(title)
    return save(fig, path)


def forecast(actual, predictions, path, title="forecast", x=None):
    """actual (N,), predictions {name: (N,)}: lines on one axis."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 4))
    x = np.arange(len(actual)) if x is None else x
    ax.plot(x, actual, color="black", lw=1.6, label="actual")
    for name, p in predictions.items():
        ax.plot(x, p, lw=1.1, label=name, alpha=0.85)
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return save(fig, path)


SERIES_STYLE = {"simple_rnn": ("simple RNN  dL/dh", "tab:red"), "gru": ("GRU  dL/dh", "tab:green"),
                "lstm": ("LSTM  dL/dh", "tab:blue"), "lstm_c": ("LSTM  dL/dc", "tab:purple")}


def gradient_flow(result, path):
    """Left: gradient norm against distance from the loss (log scale). Right: the
    distribution of the LSTM's forget gate and of the diagonal of dc_t/dc_{t-1}."""
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    for key, norms in result.norms.items():
        label, color = SERIES_STYLE.get(key, (key, None))
        d = np.arange(1, len(norms))
        a.semilogy(d, np.maximum(norms[1:], 1e-300), label=label, color=color,
                   ls="--" if key == "lstm_c" else "-")
    a.set_xlabel("distance from the loss (steps back)")
    a.set_ylabel("mean gradient norm")
    a.set_title(f"gradient flow through time ({result.units} units)")
    a.legend()
    a.grid(alpha=0.3, which="both")
    if result.forget is not None:
        bins = np.linspace(min(0.0, result.cell_jacobian_diag.min()), max(1.2, result.cell_jacobian_diag.max()), 60)
        b.hist(result.forget, bins=bins, alpha=0.6, density=True, label="forget gate $f_t$")
        b.hist(result.cell_jacobian_diag, bins=bins, alpha=0.6, density=True,
               label="diag $\\partial c_t/\\partial c_{t-1}$")
        b.axvline(1.0, color="black", lw=0.8)
        b.set_title("LSTM: what carries the gradient along c")
        b.set_xlabel("value")
        b.legend()
    else:
        b.axis("off")
    return save(fig, path)


def gate_heatmap(values, tokens, path, title, max_units=64):
    """values (T, H) activations of one gate; tokens, one label per step."""
    plt = _plt()
    v = np.asarray(values)[:, :max_units].T                                  # (units, T)
    T = v.shape[1]
    fig, ax = plt.subplots(figsize=(min(2 + 0.28 * T, 40), 2 + 0.08 * v.shape[0]))
    im = ax.imshow(v, aspect="auto", cmap="viridis", vmin=-1 if v.min() < 0 else 0, vmax=1,
                   interpolation="nearest")
    if T <= 120:
        labels = [drawable(t.replace("\n", "\\n")) for t in tokens]
        ax.set_xticks(range(T), labels, rotation=90, fontsize=7)
    ax.set_xlabel("time step (input token)")
    ax.set_ylabel("unit")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.03)
    return save(fig, path)
