"""Classification scores: confusion matrix, per-class precision and recall."""
import numpy as np


def confusion_matrix(y_true, y_pred, n_classes):
    m = np.zeros((n_classes, n_classes), np.int64)                           # rows: true, cols: predicted
    np.add.at(m, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return m


def per_class(m, labels):
    """{label: {precision, recall, f1, support}} from a confusion matrix."""
    out = {}
    for k, label in enumerate(labels):
        tp = int(m[k, k])
        predicted, actual = int(m[:, k].sum()), int(m[k].sum())
        p = tp / predicted if predicted else 0.0
        r = tp / actual if actual else 0.0
        out[str(label)] = {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0,
                           "support": actual}
    return out


def format_report(m, labels, scores):
    width = max(8, max(len(str(l)) for l in labels) + 2)
    lines = [f"{'class':<{width}}{'precision':>10}{'recall':>10}{'f1':>8}{'support':>9}"]
    for label in labels:
        s = scores[str(label)]
        lines.append(f"{str(label):<{width}}{s['precision']:>10.3f}{s['recall']:>10.3f}{s['f1']:>8.3f}"
                     f"{s['support']:>9d}")
    lines.append("")
    lines.append("confusion matrix (rows: true, columns: predicted)")
    lines.append(" " * width + "".join(f"{str(l)[:9]:>10}" for l in labels))
    for label, row in zip(labels, m):
        lines.append(f"{str(label):<{width}}" + "".join(f"{v:>10d}" for v in row))
    return "\n".join(lines)
