"""PNG plots for the applications (matplotlib, Agg backend: no display needed).

Every figure is written atomically (temporary file, then rename).

Chinese (and Japanese, Korean) text: matplotlib's own font, DejaVu Sans, has no
CJK glyphs, and draws boxes with a "Glyph ... missing" warning. use_cjk_font()
registers a CJK font -- Debian's fonts-wqy-microhei (WenQuanYi Micro Hei,
1.6 MB) through the data cache, or one installed on the system -- and puts it
after DejaVu Sans in the font family list, so matplotlib draws Latin text with
DejaVu Sans and falls back to the CJK font for the rest (matplotlib >= 3.6).
Plots call it without fetching (a font already in the cache or on the system
is used); the applications that plot Chinese fetch it. Characters that no
registered font can draw are replaced by '?' (drawable), so a plot never shows
boxes.
"""
import functools
import os

import numpy as np

from .io import atomic_path

_CJK_HINTS = ("CJK", "WenQuanYi", "Noto Sans SC", "Noto Serif SC", "SimHei", "Source Han", "AR PL",
              "Droid Sans Fallback", "Microsoft YaHei")
CJK_FONT_DATASET = "fonts-wqy-microhei"
CJK_FONT_FILE = "wqy-microhei.ttc"
BASE_FONT = "DejaVu Sans"
_families = [BASE_FONT]                    # what figures draw with, first choice first


def _plt():
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    if len(_families) == 1:
        use_cjk_font(fetch=False)          # a CJK font already on this machine, if any
    return plt


def _cached_font_file(fetch, log):
    """The font file of the data set fonts-wqy-microhei, or None."""
    try:
        from . import datasets
    except ImportError:
        return None
    try:
        root = datasets.fetch(CJK_FONT_DATASET, log=log) if fetch else datasets.path(CJK_FONT_DATASET)
    except Exception as e:               # not fetched yet, or no registry reachable
        if fetch and log:
            log(f"note: no CJK font for the plots ({' '.join(str(e).split())}); Chinese shows as '?'")
        return None
    # the source names the font's path inside its root; never search the root: for an installed
    # package the root is / and a recursive search walks the whole file system
    file = os.path.join(os.fspath(root), datasets.SOURCES[CJK_FONT_DATASET].files["font"])
    return file if os.path.isfile(file) else None


def use_cjk_font(fetch=False, log=None):
    """Make figures draw Chinese: register a CJK font (see the module
    docstring) and return its family name, or None when there is none
    (fetch=True fetches fonts-wqy-microhei into the data cache first)."""
    import matplotlib
    from matplotlib import font_manager
    if len(_families) > 1:
        return _families[1]
    name = None
    path = _cached_font_file(False, log) or (None if not fetch else _cached_font_file(True, log))
    if path:
        font_manager.fontManager.addfont(path)
        name = font_manager.FontProperties(fname=path).get_name()
    else:
        for f in font_manager.fontManager.ttflist:
            if any(h.lower() in f.name.lower() for h in _CJK_HINTS):
                name = f.name
                break
    if name is None:
        return None
    _families.append(name)
    # a list of concrete families (not "sans-serif"): matplotlib falls back along it glyph by glyph
    matplotlib.rcParams["font.family"] = list(_families)
    _charmap.cache_clear()
    return name


@functools.lru_cache(maxsize=None)
def _charmap():
    """The code points some font of the family list can draw."""
    from matplotlib import font_manager, ft2font
    chars = set()
    for family in _families:
        path = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
        chars |= set(ft2font.FT2Font(path).get_charmap())
    return frozenset(chars)


def drawable(label):
    """The label with every character no registered font can draw replaced by '?'."""
    chars = _charmap()
    return "".join(c if ord(c) in chars or c.isspace() else "?" for c in label)


def save(fig, path):
    plt = _plt()
    with atomic_path(path) as tmp:
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
    fig.suptitle(drawable(title))
    return save(fig, path)


def lm_curve(points, path, title, baseline=None):
    """A language model's learning curve: points (seconds, tokens, train bits,
    validation-sample bits); baseline {label: bits}: flat dashed lines."""
    plt = _plt()
    pts = [p for p in points if p[1] > 0]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if pts:
        tokens = np.array([p[1] for p in pts]) / 1e6
        ax.plot(tokens, [p[2] for p in pts], "o-", ms=3, label="training (mean since last point)")
        ax.plot(tokens, [p[3] for p in pts], "s-", ms=3, label="validation sample (windows from a zero state)")
        top = ax.secondary_xaxis("top", functions=(lambda m: m, lambda m: m))
        top.set_xticks(tokens[:: max(1, len(tokens) // 6)],
                       [f"{p[0] / 60:.1f}" for p in pts][:: max(1, len(tokens) // 6)])
        top.set_xlabel("training minutes")
    for k, (label, bits) in enumerate((baseline or {}).items()):
        ax.axhline(bits, ls="--", lw=1.2, color=f"C{k + 2}", label=drawable(f"{label}: {bits:.3f}"))
    ax.set_xlabel("million tokens trained")
    ax.set_ylabel("bits per token")
    ax.set_title(drawable(title))
    ax.grid(alpha=0.3)
    ax.legend()
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
    ax.set_title(drawable(title))
    return save(fig, path)


def forecast(actual, predictions, path, title="forecast", x=None, band=None):
    """actual (N,), predictions {name: (N,)}: lines on one axis; x may hold
    dates (datetime64). band: (lower (N,), upper (N,), label) shaded."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 4))
    x = np.arange(len(actual)) if x is None else x
    if band is not None:
        ax.fill_between(x, band[0], band[1], color="tab:blue", alpha=0.18, lw=0, label=band[2])
    ax.plot(x, actual, color="black", lw=1.6, label="actual")
    for name, p in predictions.items():
        ax.plot(x, p, lw=1.1, label=name, alpha=0.85)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    if np.issubdtype(np.asarray(x).dtype, np.datetime64):
        fig.autofmt_xdate()
    return save(fig, path)


def future(x_past, past, x_future, pred, path, title="forecast", band=None):
    """The end of a series and the forecast after it; band: (x, lower, upper, label)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(x_past, past, color="black", lw=1.4, label="series")
    if band is not None:
        ax.fill_between(band[0], band[1], band[2], color="tab:blue", alpha=0.2, lw=0, label=band[3])
    ax.plot(np.concatenate([x_past[-1:], x_future]), np.concatenate([past[-1:], pred]), "o-", ms=3,
            color="tab:blue", label="forecast")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    if np.issubdtype(np.asarray(x_past).dtype, np.datetime64):
        fig.autofmt_xdate()
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
    ax.set_title(drawable(title))
    fig.colorbar(im, ax=ax, fraction=0.03)
    return save(fig, path)


def attention_map(weights, source_tokens, output_tokens, path, title="attention"):
    """weights (T_out, S): how much each output token (rows) looked at each
    source token (columns) -- a translation's soft alignment."""
    plt = _plt()
    w = np.asarray(weights)                                                  # (T_out, S)
    T, S = w.shape
    fig, ax = plt.subplots(figsize=(min(2 + 0.45 * S, 24), min(1.5 + 0.4 * T, 24)))
    im = ax.imshow(w, cmap="Greys", vmin=0, vmax=max(float(w.max()), 1e-6), aspect="auto",
                   interpolation="nearest")
    ax.set_xticks(range(S), [drawable(t.replace("\u2581", "")) or "_" for t in source_tokens],
                  rotation=60, ha="right", fontsize=9)
    ax.set_yticks(range(T), [drawable(t.replace("\u2581", "")) or "_" for t in output_tokens], fontsize=9)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    ax.set_title(drawable(title), fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.03)
    return save(fig, path)
